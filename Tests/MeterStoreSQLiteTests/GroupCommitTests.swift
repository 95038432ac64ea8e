import Foundation
import Metering
import Testing
import UsageBoxTesting

@testable import MeterStoreSQLite

/// Group commit, made deterministic by holding the writer: batches that queue behind a busy
/// writer share the next transaction, and a group with a failing batch is written again batch by
/// batch, each answered as if alone.
@Suite struct GroupCommitTests {
    /// Holds SQLite's writer for a moment, then runs `batches` concurrently while it is held.
    static func behindABusyWriter(_ store: SQLiteMeterStore, _ batches: [[IngestItem]]) async throws -> [IngestResponse] {
        try await GroupCommitProbe.behindABusyWriter(store, batches) { try await store.writer.write { _ in Thread.sleep(forTimeInterval: 0.4) } }
    }

    @Test func batchesQueuedBehindTheWriterShareOneTransaction() async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        let batches = (0..<5).map { b in (0..<20).map { Fixture.event("b\(b)-\($0)", quantity: 1) } + [Fixture.event("shared", quantity: 1)] }
        let answers = try await Self.behindABusyWriter(store, batches)
        #expect(store.ingestQueue.sharedBatches >= 4, "the batches that waited were committed together")
        #expect(answers.map(\.accepted).reduce(0, +) == 101 && answers.map(\.duplicates).reduce(0, +) == 4)
        let total = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: Fixture.may))
        #expect(total.groups.first?.aggregate.sum == 101)
        #expect(try await store.verify(VerifyRequest(account: "acct_1", range: Fixture.may)).ok)
    }

    /// Batches sharing a transaction, each sealing segments part-way with accounts and hours
    /// interleaved: every sealed segment's per-key statistics match its events.
    @Test func groupedBatchesSealingSegmentsKeepTheirStatistics() async throws {
        let store = try SQLiteMeterStore(location: .newMemory(), segmentMaxEvents: 5)
        let batches = (0..<4).map { b in
            (0..<17).map { i in
                let hour = (b * 17 + i) / 9 % 24
                return Fixture.event(
                    "b\(b)-\(i)", account: ["a", "b"][i % 2], model: i % 3 == 0 ? "m1" : "m2", quantity: Int64(1 + i),
                    at: "2026-05-04T\(hour < 10 ? "0" : "")\(hour):30:00Z")
            }
        }
        let answers = try await Self.behindABusyWriter(store, batches)
        #expect(store.ingestQueue.sharedBatches >= 3)
        #expect(answers.map(\.accepted) == [17, 17, 17, 17])
        try await store.sealOpenSegments()
        for account in ["a", "b"] {
            let report = try await store.verify(VerifyRequest(account: account, range: Fixture.may))
            #expect(report.ok && report.segmentsCorrupt == 0, "\(account): \(report)")
        }
    }

    /// Careful mode checks each event against the stored totals; the batch's own running sums must
    /// not overflow where stored plus batch does not (a large negative stored correction).
    @Test func aBatchWhoseOwnSumPassesSixtyFourBitsIsStoredWhenTheTotalFits() async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        _ = try await store.ingest([Fixture.event("neg", kind: .correction, ref: "x", quantity: Int64.min + 10)])
        let r = try await store.ingest([
            Fixture.event("p1", kind: .correction, ref: "x", quantity: 1 << 62), Fixture.event("p2", kind: .correction, ref: "x", quantity: 1 << 62),
        ])
        #expect(r.accepted == 2 && r.errors.isEmpty, "\(r)")
        let total = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: Fixture.may))
        #expect(total.groups.map(\.aggregate.sum) == [10])
        try await store.sealOpenSegments()
        #expect(try await store.verify(VerifyRequest(account: "acct_1", range: Fixture.may)).ok)
    }

    @Test func aFailingBatchInAGroupFailsAlone() async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        _ = try await store.ingest([Fixture.event("huge", account: "acct_9", quantity: Int64.max - 10)])
        var batches = (0..<4).map { b in (0..<10).map { Fixture.event("b\(b)-\($0)", quantity: 2) } }
        batches.insert([Fixture.event("ok", account: "acct_9", quantity: 1), Fixture.event("over", account: "acct_9", quantity: 100)], at: 2)
        let answers = try await Self.behindABusyWriter(store, batches)
        #expect(store.ingestQueue.retriedGroups >= 1, "the group holding the overflow was written again batch by batch")
        #expect(answers[2].accepted == 1 && answers[2].errors.map(\.code) == ["quantity_overflow"])
        #expect(answers.enumerated().filter { $0.offset != 2 }.allSatisfy { $0.element.accepted == 10 && $0.element.errors.isEmpty })
        let total = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: Fixture.may))
        #expect(total.groups.first?.aggregate.sum == 80)
    }
}

/// Every request checks its key: slow reads holding every reader of the pool made another
/// account's ingest wait 12 s for that check (an outside read). Keys are read on their own
/// connection.
@Suite struct KeyCheckTests {
    @Test func aKeyIsCheckedWhileSlowReadsHoldEveryReader() async throws {
        let dir = try TemporaryDirectory()
        let store = try SQLiteMeterStore(location: .file(dir.path("keys.db")))
        let (_, secret) = try await store.createKey(account: "acct_2", role: .writer)
        // Eight reads hold the pool's readers until the key check has answered (or 30 s pass, as
        // they would if the check waited behind them): no timing, only the order of events.
        let gate = DispatchSemaphore(value: 0)
        let released = NSLock()
        nonisolated(unsafe) var readerLetGo = false
        let readers = (0..<8).map { _ in
            Task {
                try await store.writer.read { _ in
                    _ = gate.wait(timeout: .now() + 30)
                    released.withLock { readerLetGo = true }
                }
            }
        }
        try await Task.sleep(for: .milliseconds(300))  // the pool's readers are all taken
        let key = try await store.authenticate(secret: secret)
        let answeredWhileHeld = released.withLock { !readerLetGo }
        for _ in 0..<8 { gate.signal() }
        for r in readers { try await r.value }
        #expect(key?.accountID == "acct_2")
        #expect(answeredWhileHeld, "the key check waited for the pool's readers")
    }
}
