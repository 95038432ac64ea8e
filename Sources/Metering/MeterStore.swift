/// The metering database behind the CLI, the HTTP API and reconciliation.
///
/// Use an existing backend: `SQLiteMeterStore` (embedded, the default). Implement a custom one by
/// conforming to this protocol and running `MeterStoreConformance` from `UsageBoxTesting` against it.
///
/// **Every method is account-scoped by its arguments; authorization happens before the store.**
///
/// ```swift
/// let store = try SQLiteMeterStore(location: .file("usagebox.db"))
/// let answer = try await store.ingest([.event(event)])          // accepted, duplicate, conflict or rejected
/// let may = try TimeRange(from: "2026-05-01T00:00:00Z", to: "2026-06-01T00:00:00Z")
/// let byModel = try await store.usage(UsageQuery(scope: .accounts(["acct_42"]), range: may, groupBy: [.modelID]))
/// let check = try await store.verify(VerifyRequest(account: "acct_42", range: may))
/// ```
public protocol MeterStore: Sendable {
    /// Stores a batch; every item gets its own outcome (docs/events.md). Accepted events are durable
    /// when this returns.
    func ingest(_ batch: IngestBatch) async throws -> IngestResponse

    /// A grouped read, from rollups when they can answer.
    func usage(_ query: UsageQuery) async throws -> UsageResult

    func verify(_ request: VerifyRequest) async throws -> VerifyReport

    /// Verifies each of `accounts` over `range` (reconciliation's gate before it reads the meter):
    /// one report per account, in the order given, each as `verify(_:)` answers it. A store over
    /// the network checks many accounts in a few statements instead of a few per account.
    func verify(accounts: [String], range: TimeRange, mode: VerifyMode) async throws -> [VerifyReport]

    func explain(account: String, range: TimeRange) async throws -> ExplainReport

    /// The stored events of `account` among `ids` (at most `StoredEventLookup.maxIDs`, each a
    /// valid event id), in no set order; an id not stored is left out. What a write left, read by
    /// id whatever else shares its second: reconciliation's apply and revert read their own
    /// corrections back this way (explain lists only a second's latest `listLimit`).
    func storedEvents(account: String, ids: [String]) async throws -> [UsageEvent]

    /// Closes a calendar month; closing twice returns the first record.
    func closePeriod(account: String, period: String) async throws -> PeriodRecord

    func periods(account: String) async throws -> [PeriodRecord]

    /// Meters seen on the accounts in `scope` (and, for `.all`, every configured meter).
    func meters(scope: AccountScope) async throws -> [MeterInfo]

    /// Sets a meter's unit and rollup dimensions (nil leaves them as they are).
    func setMeter(_ meterID: String, unit: String?, rollupDimensions: [String]?) async throws -> MeterInfo

    /// Runs read-only SQL over the `usage_events` view of the accounts in `scope`.
    func sql(_ query: String, scope: AccountScope, timeLimitSeconds: Double, rowLimit: Int) async throws -> SQLResult

    /// Seals every open segment (at shutdown).
    func sealOpenSegments() async throws

    /// Seals the open segments this process wrote (a CLI command as it ends), leaving those another
    /// process is writing to it; a store that cannot tell seals every open segment.
    func sealSegmentsWrittenHere() async throws

    /// Seals open segments older than the age limit (a server calls this on a timer).
    func sealExpiredSegments() async throws

    /// Gets ready to seal the segments an earlier process left open (a server calls this once as
    /// it starts): a backend that would otherwise re-read such a segment while sealing it, holding
    /// up every write, does that reading now, off the write path. Answers how many it prepared.
    func prepareOpenSegments() async throws -> Int

    /// Re-hashes up to `maxSegments` sealed segments from their stored events, least recently
    /// verified first, remembering which are clean and which corrupt (a server calls this on a
    /// timer); answers where the re-hashing of the whole store stands.
    func scrub(maxSegments: Int) async throws -> ScrubProgress
}

/// The bounds of `MeterStore.storedEvents(account:ids:)`, checked alike by every backend.
public enum StoredEventLookup {
    public static let maxIDs = 1000

    /// Refuses a lookup no store should run: an invalid account or id, or too many ids.
    public static func check(account: String, ids: [String]) throws {
        guard EventDecoder.isValidIdentifier(account) else {
            throw UsageBoxError.invalidArgument("account must be \(EventDecoder.identifierRule)", field: "account_id")
        }
        guard ids.count <= maxIDs else {
            throw UsageBoxError.invalidArgument("at most \(maxIDs) event ids per lookup, got \(ids.count)", field: "event_id")
        }
        if let bad = ids.first(where: { !EventDecoder.isValidIdentifier($0) }) {
            throw UsageBoxError.invalidArgument("event id '\(bad.prefix(80))' is not \(EventDecoder.identifierRule)", field: "event_id")
        }
    }
}

extension MeterStore {
    public func scrub(maxSegments: Int) async throws -> ScrubProgress { ScrubProgress() }

    public func prepareOpenSegments() async throws -> Int { 0 }

    public func sealSegmentsWrittenHere() async throws { try await sealOpenSegments() }

    /// Each account on its own, a few at a time: SQLite's readers do not wait for each other, and
    /// a store over HTTP answers each in one round trip.
    public func verify(accounts: [String], range: TimeRange, mode: VerifyMode) async throws -> [VerifyReport] {
        try await accounts.concurrentMap(atMost: 8) { try await verify(VerifyRequest(account: $0, range: range, mode: mode)) }
    }

    /// Stores items; builds the `IngestBatch` on the caller's task.
    public func ingest(_ items: [IngestItem]) async throws -> IngestResponse {
        try await ingest(IngestBatch(items))
    }
}
