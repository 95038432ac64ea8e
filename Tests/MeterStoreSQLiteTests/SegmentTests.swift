import Foundation
import MeterStoreSQLite
import Metering
import Synchronization
import Testing
import UsageBoxTesting

@Suite struct SegmentTests {
    @Test func segmentsSealAtTheirEventLimitAndChain() async throws {
        let store = try SQLiteMeterStore(location: .newMemory(), segmentMaxEvents: 4)
        _ = try await store.ingest((0..<10).map { Fixture.event("e\($0)", quantity: 1) })
        let explain = try await store.explain(account: "acct_1", range: Fixture.may)
        #expect(explain.segments.map(\.events) == [4, 4, 2])
        #expect(explain.segments.map { $0.sealedAt != nil } == [true, true, false])
        #expect(explain.chainHead == explain.segments[1].sha256)
        #expect(try await store.verify(VerifyRequest(account: "acct_1", range: Fixture.may)).ok)
    }

    @Test func segmentsSealAnHourAfterOpening() async throws {
        let now = Mutex(Fixture.ts("2026-05-10T00:00:00Z").microseconds)
        let store = try SQLiteMeterStore(location: .newMemory(), clock: { Timestamp(microseconds: now.withLock { $0 }) })
        _ = try await store.ingest([Fixture.event("a", quantity: 1, at: "2026-05-09T00:00:00Z")])
        now.withLock { $0 += 59 * 60_000_000 }
        _ = try await store.ingest([Fixture.event("b", quantity: 1, at: "2026-05-09T00:00:00Z")])
        now.withLock { $0 += 2 * 60_000_000 }
        _ = try await store.ingest([Fixture.event("c", quantity: 1, at: "2026-05-09T00:00:00Z")])
        var explain = try await store.explain(account: "acct_1", range: Fixture.may)
        #expect(explain.segments.map(\.events) == [2, 1])
        now.withLock { $0 += 3600 * 1_000_000 }
        try await store.sealExpiredSegments()
        explain = try await store.explain(account: "acct_1", range: Fixture.may)
        #expect(explain.segments.allSatisfy { $0.sealedAt != nil })
    }

    @Test func lateEventsLandInTheOpenSegment() async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        _ = try await store.ingest([Fixture.event("new", quantity: 1, at: "2026-05-20T00:00:00Z")])
        _ = try await store.ingest([Fixture.event("late", quantity: 2, at: "2026-05-02T00:00:00Z")])
        let explain = try await store.explain(account: "acct_1", range: Fixture.may)
        #expect(explain.segments.count == 1)
        #expect(explain.segments[0].firstTimestamp == Fixture.ts("2026-05-02T00:00:00Z"))
    }

    @Test func segmentsArePerAccount() async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        _ = try await store.ingest([Fixture.event("1", account: "a", quantity: 1), Fixture.event("1", account: "b", quantity: 2)])
        try await store.sealOpenSegments()
        let a = try await store.explain(account: "a", range: Fixture.may)
        let b = try await store.explain(account: "b", range: Fixture.may)
        #expect(a.segments.count == 1 && b.segments.count == 1 && a.segments[0].segmentID != b.segments[0].segmentID)
        #expect(a.segments[0].sum == 1 && b.segments[0].sum == 2)
    }
}
