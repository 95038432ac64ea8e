/// A store that forwards everything to `inner` and replaces what it must: the cluster's store
/// routing writes to their owner, a test's fake (a slow read, a drifting verify).
///
/// `verify(accounts:range:mode:)` is not forwarded: it runs `verify(_:)` per account, so a store
/// that replaces `verify(_:)` is checked through its replacement; one that leaves verify alone
/// forwards the batch to `inner` itself (`OwnedWritesStore`).
public protocol ForwardingStore: MeterStore {
    var inner: any MeterStore { get }
}

extension ForwardingStore {
    public func ingest(_ batch: IngestBatch) async throws -> IngestResponse { try await inner.ingest(batch) }
    public func usage(_ query: UsageQuery) async throws -> UsageResult { try await inner.usage(query) }
    public func verify(_ request: VerifyRequest) async throws -> VerifyReport { try await inner.verify(request) }
    public func explain(account: String, range: TimeRange) async throws -> ExplainReport {
        try await inner.explain(account: account, range: range)
    }
    public func storedEvents(account: String, ids: [String]) async throws -> [UsageEvent] {
        try await inner.storedEvents(account: account, ids: ids)
    }
    public func closePeriod(account: String, period: String) async throws -> PeriodRecord {
        try await inner.closePeriod(account: account, period: period)
    }
    public func periods(account: String) async throws -> [PeriodRecord] { try await inner.periods(account: account) }
    public func meters(scope: AccountScope) async throws -> [MeterInfo] { try await inner.meters(scope: scope) }
    public func setMeter(_ meterID: String, unit: String?, rollupDimensions: [String]?) async throws -> MeterInfo {
        try await inner.setMeter(meterID, unit: unit, rollupDimensions: rollupDimensions)
    }
    public func sql(_ query: String, scope: AccountScope, timeLimitSeconds: Double, rowLimit: Int) async throws -> SQLResult {
        try await inner.sql(query, scope: scope, timeLimitSeconds: timeLimitSeconds, rowLimit: rowLimit)
    }
    public func sealOpenSegments() async throws { try await inner.sealOpenSegments() }
    public func sealExpiredSegments() async throws { try await inner.sealExpiredSegments() }
    public func prepareOpenSegments() async throws -> Int { try await inner.prepareOpenSegments() }
    public func sealSegmentsWrittenHere() async throws { try await inner.sealSegmentsWrittenHere() }
    public func scrub(maxSegments: Int) async throws -> ScrubProgress { try await inner.scrub(maxSegments: maxSegments) }
}
