import ExactJSON
import Foundation
public import Metering
import SegmentChain

/// The meter store for resellers who outgrow one machine: ClickHouse over its HTTP interface, any
/// number of stateless `usagebox serve` processes in front of it (docs/clickhouse.md).
///
/// Every promise of the SQLite store holds, on ClickHouse's terms:
/// - **Exactly once.** Each account has one writer at a time (the serve process that owns it; the
///   others forward its events), which decides duplicate and conflict against the stored events
///   before it inserts, and inserts a batch as one statement (one part: all or nothing).
/// - **Rollups equal raw without waiting for merges**: a materialized view adds each insert's
///   events to hourly and daily aggregate states inside the insert; reads merge states.
/// - **Segments** are hash-chained per account by the account's writer, with the same hash as
///   SQLite (`SegmentChain`), so verify re-hashes them the same way.
///
/// ```swift
/// let store = try ClickHouseMeterStore(location: ClickHouseLocation(url: "clickhouse://127.0.0.1:8123/usagebox"))
/// try await store.migrate()
/// ```
public final class ClickHouseMeterStore: MeterStore, @unchecked Sendable {
    // Mutable state lives in the `writer` actor; the rest is immutable.
    public let location: ClickHouseLocation
    let client: ClickHouseClient
    let shards: [ClickHouseClient]
    let names: ClickHouseSchema.Names
    let clock: @Sendable () -> Timestamp
    let segmentMaxEvents: Int64
    let segmentMaxAge: Int64
    /// Whether this process writes an account (the serve process that owns it); every account when alone.
    let owns: @Sendable (String) -> Bool
    let writer = ClickHouseWriter()
    let ingestQueue = IngestQueue()

    public init(
        location: ClickHouseLocation, clock: @escaping @Sendable () -> Timestamp = Timestamp.now,
        segmentMaxEvents: Int64 = 100_000, segmentMaxAgeSeconds: Int64 = 3600,
        owns: @escaping @Sendable (String) -> Bool = { _ in true }
    ) throws {
        self.location = location
        shards = location.hosts.map { ClickHouseClient(host: $0, user: location.user, password: location.password) }
        client = shards[0]
        names = ClickHouseSchema.Names(db: location.database, cluster: location.cluster)
        self.clock = clock
        self.segmentMaxEvents = max(segmentMaxEvents, 1)
        self.segmentMaxAge = segmentMaxAgeSeconds * 1_000_000
        self.owns = owns
    }

    func t(_ name: String) -> String { names.table(name) }

    /// A new monotone version for a ReplacingMergeTree row written by this process.
    func nextVersion() async -> UInt64 { await writer.version(after: UInt64(max(clock().microseconds, 0))) }

    // MARK: schema

    /// The schema version the store is at (0 for an empty server).
    public func schemaVersion() async throws -> Int {
        let exists = try await client.rows(
            "SELECT count() FROM system.tables WHERE database = \(ClickHouseClient.quote(names.db)) AND name = 'schema_version'")
        guard exists.rows.first?.first?.chInt == 1 else { return 0 }
        return Int(try await client.rows("SELECT max(version) FROM \(t("schema_version"))").rows.first?.first?.chInt ?? 0)
    }

    /// Creates or upgrades the schema; a store at a newer schema than this binary is refused.
    @discardableResult
    public func migrate() async throws -> (from: Int, to: Int) {
        let current = try await schemaVersion()
        guard current <= ClickHouseSchema.latest else {
            throw UsageBoxError(
                .conflict,
                "the ClickHouse store \(names.db) is at schema \(current), newer than this usagebox knows "
                    + "(\(ClickHouseSchema.latest)); use a newer usagebox")
        }
        for shard in shards { try await shard.command("CREATE DATABASE IF NOT EXISTS \(names.db)") }
        try await client.command("CREATE TABLE IF NOT EXISTS \(t("schema_version")) (version UInt32, applied_at Int64) ENGINE = MergeTree ORDER BY version")
        for migration in ClickHouseSchema.migrations where migration.version > current {
            let step = migration.build(names)
            for shard in (names.cluster == nil ? [client] : shards) {
                for sql in step.everyShard { try await run(shard, sql, migration) }
            }
            for sql in step.firstHost { try await run(client, sql, migration) }
            try await client.command("INSERT INTO \(t("schema_version")) VALUES (\(migration.version), \(clock().microseconds))")
        }
        return (current, ClickHouseSchema.latest)
    }

    private func run(_ shard: ClickHouseClient, _ sql: String, _ m: ClickHouseSchema.Migration) async throws {
        do {
            try await shard.command(sql)
        } catch let e as ClickHouseError {
            throw UsageBoxError(.internal, "migration \(m.version) (\(m.name)) failed on \(shard.host): \(e.message)")
        }
    }

    /// Refuses to work on a store whose schema this binary does not know, or has not been created.
    public func checkSchema() async throws {
        let version = try await schemaVersion()
        guard version == ClickHouseSchema.latest else {
            if version > ClickHouseSchema.latest {
                throw UsageBoxError(
                    .conflict,
                    "the ClickHouse store \(names.db) is at schema \(version), newer than this usagebox knows "
                        + "(\(ClickHouseSchema.latest)); use a newer usagebox")
            }
            throw UsageBoxError(
                .conflict,
                "the ClickHouse store \(names.db) is at schema \(version), this usagebox needs "
                    + "\(ClickHouseSchema.latest): run usagebox migrate --store \(location.hosts[0])…")
        }
    }

    /// Runs a query, turning ClickHouse's own errors into the store's.
    func rows(_ sql: String, settings: [String: String] = [:]) async throws -> [[JSONValue]] {
        do {
            return try await client.rows(sql, settings: ["max_query_size": "67108864"].merging(settings) { $1 }).rows
        } catch let e as ClickHouseError {
            throw UsageBoxError(.internal, "ClickHouse: \(e.message)")
        }
    }

    func insert(_ table: String, _ rows: [JSONValue]) async throws {
        do {
            try await client.insert(into: t(table), rows, settings: names.cluster == nil ? [:] : ["insert_distributed_sync": "1"])
        } catch let e as ClickHouseError {
            throw UsageBoxError(.internal, "ClickHouse: \(e.message)")
        }
    }

    /// `account_id IN (…)`, or nothing for every account.
    static func accountClause(_ scope: AccountScope, column: String = "account_id") -> String {
        switch scope {
        case .all: return "1"
        case let .accounts(list): return list.isEmpty ? "0" : "\(column) IN (\(ClickHouseClient.list(Array(list).sorted())))"
        }
    }
}

/// The one writer of a process: ingest, sealing and period closes run one at a time, and what it
/// knows of each account it writes (its open segment, its chain head) lives here.
actor ClickHouseWriter {
    var accounts: [String: ClickHouseAccountState] = [:]
    private var lastVersion: UInt64 = 0
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func version(after clock: UInt64) -> UInt64 {
        lastVersion = max(lastVersion + 1, clock)
        return lastVersion
    }

    /// Runs `body` alone among this process's writes.
    func exclusive<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        while busy { await withCheckedContinuation { waiting.append($0) } }
        busy = true
        defer {
            busy = false
            if !waiting.isEmpty { waiting.removeFirst().resume() }
        }
        return try await body()
    }

    /// Meters' units as ingest last read them, and when.
    private var meterCache: (units: [String: String?], readAt: ContinuousClock.Instant)?

    func meterUnits(maxAge: Duration) -> [String: String?]? {
        guard let meterCache, ContinuousClock.now - meterCache.readAt < maxAge else { return nil }
        return meterCache.units
    }
    func setMeterUnits(_ units: [String: String?]?) { meterCache = units.map { ($0, .now) } }
    /// Meters this process just recorded, added to the copy without making it any fresher.
    func addMeterUnits(_ units: [String: String?]) { meterCache?.units.merge(units) { $1 } }

    func state(_ account: String) -> ClickHouseAccountState? { accounts[account] }
    func set(_ account: String, _ state: ClickHouseAccountState?) { accounts[account] = state }
    func knownAccounts() -> [String: ClickHouseAccountState] { accounts }
}

/// What an account's writer knows: its open segment and the hash of its last sealed one.
struct ClickHouseAccountState: Sendable {
    var chainHead: String?
    var lastSegmentID: UInt64
    var open: OpenSegmentState?
    /// Σ|quantity| of the account so far (as a Double: only to know when no sum can come near 2^63).
    var magnitude: Double
    /// The hashes of every event id stored for the account (8 bytes each), so that a new id needs no lookup.
    var ids: EventIDSet
    /// The account's closed periods (`YYYY-MM`), and when they were read (`catalogMaxAge`).
    var closed: Set<String>
    var closedReadAt: ContinuousClock.Instant
}

/// A set of 64-bit hashes of event ids, shared by reference (it grows with every accepted event;
/// only the account's writer, one batch at a time, touches it).
final class EventIDSet: @unchecked Sendable {
    private var hashes = Set<UInt64>()

    static func hash(_ id: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        return h
    }

    func contains(_ h: UInt64) -> Bool { hashes.contains(h) }
    func insert(_ h: UInt64) { hashes.insert(h) }
}

struct OpenSegmentState: Sendable {
    var id: UInt64
    var openedAt: Int64
    var count: UInt64
    var sum: Int64
    var firstTs: Int64?
    var lastTs: Int64?
    var running: MultisetHash
}

extension ClickHouseMeterStore {
    /// Drops the store's database on every host (tests; never called by the product).
    public func dropDatabase() async throws {
        for shard in shards { try await shard.command("DROP DATABASE IF EXISTS \(names.db)") }
    }

    /// Runs a statement as the store's user (tests and tools).
    public func command(_ sql: String) async throws {
        do {
            try await client.command(sql, settings: ["max_query_size": "67108864"])
        } catch let e as ClickHouseError {
            throw UsageBoxError(.internal, "ClickHouse: \(e.message)")
        }
    }
}
