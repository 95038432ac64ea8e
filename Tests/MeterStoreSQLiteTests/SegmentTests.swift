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

    /// The same file ingested twice (every event a duplicate the second time) seals no empty
    /// segment: one was sealed, spanning no time, so no verify read it, it stayed pending, and the
    /// chain head named a segment explain did not list.
    @Test func aBatchOfDuplicatesSealsNoEmptySegment() async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        let events = (0..<3).map { Fixture.event("e\($0)", quantity: 1) }
        _ = try await store.ingest(events)
        try await store.sealOpenSegments()
        _ = try await store.ingest(events)
        try await store.sealOpenSegments()
        #expect(try await store.verify(VerifyRequest(account: "acct_1", range: Fixture.may, mode: .deep)).ok)
        let explain = try await store.explain(account: "acct_1", range: Fixture.may)
        #expect(explain.segments.filter { $0.sealedAt != nil }.map(\.events) == [3])
        #expect(explain.chainHead == explain.segments.first?.sha256)
        #expect(explain.integrity?.sealed == 1 && explain.integrity?.pending == 0, "\(String(describing: explain.integrity))")
    }

    /// That empty open segment, an hour old when the account's next new event arrives, takes the
    /// event (reopened) instead of being sealed and replaced: a second open segment broke the
    /// one-open-segment index and every later batch of the account failed (a reviewer's find).
    @Test func anEmptySegmentPastItsAgeTakesTheNextEvents() async throws {
        let clock = Mutex(Timestamp(rfc3339: "2026-05-10T12:00:00Z")!)
        let store = try SQLiteMeterStore(location: .newMemory(), clock: { clock.withLock { $0 } })
        _ = try await store.ingest([Fixture.event("e0", quantity: 1)])
        try await store.sealOpenSegments()
        _ = try await store.ingest([Fixture.event("e0", quantity: 1)])  // a duplicate: an empty open segment
        clock.withLock { $0 = Timestamp(microseconds: $0.microseconds + 2 * Timestamp.microsPerHour) }
        let next = try await store.ingest([Fixture.event("e1", quantity: 2)])
        #expect(next.accepted == 1)
        #expect(try await store.ingest([Fixture.event("e2", quantity: 3)]).accepted == 1)
        try await store.sealOpenSegments()
        #expect(try await store.verify(VerifyRequest(account: "acct_1", range: Fixture.may, mode: .deep)).ok)
    }

    /// A segment's per-key statistics are gathered a run of same-hour events at a time; a batch that
    /// seals segments part-way, with accounts, models and hours interleaved, must still record each
    /// sealed segment's statistics exactly (deep verify re-derives them from the stored events).
    @Test func segmentsSealedMidBatchRecordTheirStatistics() async throws {
        let store = try SQLiteMeterStore(location: .newMemory(), segmentMaxEvents: 5)
        var items: [IngestItem] = []
        for i in 0..<60 {
            let hour = (i / 7) % 24
            items.append(
                Fixture.event(
                    "e\(i)", account: ["a", "b", "c"][i % 3], model: i % 2 == 0 ? "m1" : "m2", quantity: Int64(1 + i),
                    at: "2026-05-03T\(hour < 10 ? "0" : "")\(hour):00:00Z"))
        }
        let answer = try await store.ingest(items)
        #expect(answer.accepted == 60)
        try await store.sealOpenSegments()  // the last segments' statistics are checked too
        for account in ["a", "b", "c"] {
            let report = try await store.verify(VerifyRequest(account: account, range: Fixture.may))
            #expect(report.ok, "\(account): \(report)")
            let explain = try await store.explain(account: account, range: Fixture.may)
            #expect(explain.segments.map(\.events) == [5, 5, 5, 5])
        }
    }

    /// The CLI beside a server: a rollup change made through another connection filed the open
    /// segment's statistics under new keys while the server kept its running digest under the old
    /// ones, and the server's seal recorded the old — a healthy segment read as corrupt for good.
    @Test func aRollupChangeFromAnotherConnectionIsSealedFromTheStoredEvents() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("usagebox-seg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.db").path
        let server = try SQLiteMeterStore(location: .file(path))
        _ = try await server.ingest((0..<10).map { Fixture.event("e\($0)", quantity: Int64($0 + 1), dims: ["token_type": "input", "team": "t\($0 % 2)"]) })
        let cli = try SQLiteMeterStore(location: .file(path))
        _ = try await cli.setMeter("tokens", unit: nil, rollupDimensions: ["token_type"])
        try await server.sealOpenSegments()
        let report = try await server.verify(VerifyRequest(account: "acct_1", range: Fixture.may, mode: .deep))
        #expect(report.ok && report.segmentsCorrupt == 0 && report.rawSum == 55, "\(report)")
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

    /// Raw reads, explain's corrections and a scoped key's SQL find events through their segments'
    /// spans (v7 keeps no per-event time index): late and early events across many small segments
    /// and two accounts, each range read raw must equal the rollups.
    @Test func rawReadsFindEveryEventThroughItsSegmentsSpan() async throws {
        let store = try SQLiteMeterStore(location: .newMemory(), segmentMaxEvents: 3)
        let days = [20, 2, 31, 15, 1, 9, 28, 3, 17, 11, 30, 5, 22, 14]
        var items: [IngestItem] = []
        for (i, day) in days.enumerated() {
            let at = "2026-05-\(day < 10 ? "0" : "")\(day)T\(i % 2 == 0 ? "23:59:59" : "00:00:00")Z"
            items.append(Fixture.event("e\(i)", account: i % 3 == 0 ? "b" : "a", model: i % 2 == 0 ? "m1" : "m2", quantity: Int64(1 + i), at: at))
        }
        items.append(Fixture.event("c1", account: "a", kind: .correction, ref: "e1", quantity: -1, at: "2026-05-02T00:00:00Z"))
        for item in items { _ = try await store.ingest([item]) }  // one batch each: many segments, out of time order
        let events = items.compactMap { item -> UsageEvent? in if case let .event(e) = item { e } else { nil } }
        #expect(events.count == items.count)
        for (from, to) in [("2026-05-01", "2026-06-01"), ("2026-05-02", "2026-05-03"), ("2026-05-03", "2026-05-20"), ("2026-05-31", "2026-06-01")] {
            let range = try TimeRange(from: Fixture.ts(from + "T00:00:00Z"), to: Fixture.ts(to + "T00:00:00Z"))
            for scope in [AccountScope.all, .accounts(["a"]), .accounts(["b"])] {
                let raw = try await store.usage(UsageQuery(scope: scope, range: range, groupBy: [.accountID, .modelID, .day], source: .raw))
                let rollup = try await store.usage(UsageQuery(scope: scope, range: range, groupBy: [.accountID, .modelID, .day], source: .rollup))
                #expect(raw.groups == rollup.groups, "\(from)…\(to) \(scope)")
                let expected = events.filter { e in
                    range.contains(e.timestamp) && { if case let .accounts(l) = scope { l.contains(e.accountID) } else { true } }()
                }
                #expect(raw.groups.reduce(0) { $0 + $1.aggregate.count } == Int64(expected.count), "\(from)…\(to) \(scope)")
            }
        }
        let explain = try await store.explain(account: "a", range: Fixture.may)
        #expect(explain.segments.count > 2)
        #expect(explain.corrections.map(\.event.eventID) == ["c1"])
        let sql = try await store.sql("SELECT COUNT(*), SUM(quantity) FROM usage_events", scope: .accounts(["b"]), timeLimitSeconds: 10, rowLimit: 10)
        let b = events.filter { $0.accountID == "b" }
        #expect(sql.rows == [[.int(Int64(b.count)), .int(b.reduce(0) { $0 + $1.quantity })]])
    }
}

/// Two legal events of the 64-bit maximum make a month no sum can hold: explain answered
/// `field: group_by` (which it does not take) and verify no field at all. Explain names `from`
/// (a shorter range holds one of them); verify reports the sums at the largest, clean, as
/// docs/api.md says (one hour can hold both, and verify compares whole hours: no range helps).
@Suite struct OverflowingMonthTests {
    /// Dropping a dimension from a meter's rollups merges cells: two of the largest quantity in
    /// one hour pass 64 bits. Refused naming `rollup_dimensions` (it said "narrow from/to", which
    /// `meters set` does not take), and nothing changes.
    @Test func keepingFewerDimensionsThatMergePast64BitsIsRefusedAndChangesNothing() async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        _ = try await store.ingest([Fixture.event("a", quantity: .max, at: "2026-05-10T10:00:00Z", dims: ["f": "a"])])
        try await store.sealOpenSegments()
        _ = try await store.ingest([Fixture.event("b", quantity: .max, at: "2026-05-10T10:30:00Z", dims: ["f": "b"])])
        await #expect {
            _ = try await store.setMeter("tokens", unit: nil, rollupDimensions: ["other"])
        } throws: { ($0 as? UsageBoxError).map { $0.field == "rollup_dimensions" && $0.message.contains("keep more") } ?? false }
        #expect(try await store.meters(scope: .all).first { $0.meterID == "tokens" }?.rollupDimensions == nil)
        let byF = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: Fixture.may, groupBy: [.dimension("f")]))
        #expect(byF.source == "rollup" && byF.groups.map(\.aggregate.sum) == [.max, .max])
    }

    @Test func explainOfAnOverflowingMonthNamesTheRangeAndVerifyReportsIt() async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        _ = try await store.ingest([Fixture.event("a", quantity: .max, at: "2026-05-01T00:00:00Z")])
        try await store.sealOpenSegments()
        _ = try await store.ingest([Fixture.event("b", quantity: .max, at: "2026-05-02T00:00:00Z")])
        try await store.sealOpenSegments()
        await #expect("explain") {
            _ = try await store.explain(account: "acct_1", range: Fixture.may)
        } throws: { ($0 as? UsageBoxError)?.field == "from" }
        for byDay in [false, true] {
            let report = try await store.verify(VerifyRequest(account: "acct_1", range: Fixture.may, byDay: byDay))
            #expect(report.ok && report.rollupSum == .max && report.rawSum == .max && report.drift == 0, "\(report)")
        }
    }
}
