import Foundation
import GRDB
import Metering
import Testing
import UsageBoxTesting

@testable import MeterStoreSQLite

/// A segment left open by a process that died has no running digest in the next one. Sealing it
/// re-read every event inside the writer's transaction (1.7–2.0 s for 100,000 events, every
/// account's writes waiting; a crash-looping server answered nothing for minutes: tester K). The
/// server now has it hashed on a reader as it starts, and a full one keeps taking events meanwhile.
@Suite struct DigestRecoveryTests {
    let dir: TemporaryDirectory
    let path: String

    /// A store file whose only segment is full (8 events) and still open, as a crash leaves it.
    init() async throws {
        dir = try TemporaryDirectory()
        path = dir.path("store.db")
        let before = try SQLiteMeterStore(location: .file(path), segmentMaxEvents: 8)
        let answer = try await before.ingest((0..<8).map { Self.event($0) })
        #expect(answer.accepted == 8)
    }

    static func event(_ i: Int) -> IngestItem {
        Fixture.event(
            "e\(i)", model: i % 2 == 0 ? "m1" : "m2", quantity: Int64(10 + i), at: "2026-05-0\(1 + i % 5)T1\(i % 10):00:00Z",
            dims: ["token_type": i % 3 == 0 ? "input" : "output"])
    }

    func restarted() throws -> SQLiteMeterStore { try SQLiteMeterStore(location: .file(path), segmentMaxEvents: 8) }

    static func deepVerify(_ store: SQLiteMeterStore) async throws -> VerifyReport {
        try await store.verify(VerifyRequest(account: "acct_1", range: Fixture.may, mode: .deep))
    }

    func deepVerify(_ store: SQLiteMeterStore) async throws -> VerifyReport { try await Self.deepVerify(store) }

    /// The account's open segment and a reader's snapshot of its digest.
    static func snapshotOfTheOpenSegment(_ store: SQLiteMeterStore) async throws -> (Int64, SQLiteMeterStore.DigestSnapshot) {
        let id = try #require(try await store.writer.read { try Int64.fetchOne($0, sql: "SELECT id FROM segment WHERE sealed_at IS NULL") })
        return (id, try #require(try await store.snapshotDigest(segment: id, account: "acct_1")))
    }

    /// A stale snapshot is not handed over: the next seal re-reads the segment, and it verifies.
    static func expectLeftOutAndSealedFromAReRead(_ store: SQLiteMeterStore, _ snapshot: SQLiteMeterStore.DigestSnapshot) async throws {
        #expect(try await store.installDigest(snapshot) == false)
        #expect(try await store.ingest([Self.event(8)]).accepted == 1)
        #expect(store.digestCache.sealRereads == 1)
        try await store.sealOpenSegments()
        let report = try await deepVerify(store)
        #expect(report.ok && report.segmentsCorrupt == 0, "\(report)")
    }

    @Test(arguments: [true, false])
    func aSegmentLeftOpenIsSealedWithoutReReadingItInTheWriter(prepared: Bool) async throws {
        let store = try restarted()
        if prepared { #expect(try await store.prepareOpenSegments() == 1) }
        #expect(try await store.ingest([Self.event(8)]).accepted == 1)
        // Unprepared, the write that seals the full segment reads it again (what this replaces).
        #expect(store.digestCache.sealRereads == (prepared ? 0 : 1))
        let explain = try await store.explain(account: "acct_1", range: Fixture.may)
        #expect(explain.segments.map(\.events) == [8, 1])
        #expect(explain.segments.map { $0.sealedAt != nil } == [true, false])
        try await store.sealOpenSegments()
        let report = try await deepVerify(store)
        #expect(report.ok && report.segmentsCorrupt == 0, "\(report)")
    }

    /// Events written between the reader's snapshot and the hand-over are added to the digest; a
    /// full segment being prepared takes them rather than being sealed from a re-read.
    @Test func eventsWrittenWhileItIsPreparedAreAddedAtTheHandOver() async throws {
        let store = try restarted()
        let (id, snapshot) = try await Self.snapshotOfTheOpenSegment(store)
        store.digestCache.setPreparing(id, true)
        #expect(try await store.ingest((8..<12).map { Self.event($0) }).accepted == 4)
        store.digestCache.setPreparing(id, false)
        var explain = try await store.explain(account: "acct_1", range: Fixture.may)
        #expect(explain.segments.map(\.events) == [12], "the full segment took the events while it was prepared")
        #expect(try await store.installDigest(snapshot))
        #expect(try await store.ingest([Self.event(12)]).accepted == 1)
        #expect(store.digestCache.sealRereads == 0)
        explain = try await store.explain(account: "acct_1", range: Fixture.may)
        #expect(explain.segments.map(\.events) == [12, 1])
        try await store.sealOpenSegments()
        let report = try await deepVerify(store)
        #expect(report.ok && report.segmentsCorrupt == 0, "\(report)")
    }

    /// A server down for hours finds its open segments past their age: one waiting to be hashed
    /// takes the next events instead of being sealed from a re-read, then seals once hashed.
    @Test func aSegmentPastItsAgeTakesEventsWhileItIsPrepared() async throws {
        let later = Timestamp(microseconds: Timestamp.now().microseconds + 3 * Timestamp.microsPerHour)
        let store = try SQLiteMeterStore(location: .file(dir.path("old.db")), clock: { later }, segmentMaxEvents: 1000)
        let before = try SQLiteMeterStore(location: .file(dir.path("old.db")), segmentMaxEvents: 1000)
        #expect(try await before.ingest((0..<3).map { Self.event($0) }).accepted == 3)
        let id = try #require(try await store.writer.read { try Int64.fetchOne($0, sql: "SELECT id FROM segment WHERE sealed_at IS NULL") })
        store.digestCache.setPreparing(id, true)
        #expect(try await store.ingest([Self.event(3)]).accepted == 1)
        #expect(try await store.explain(account: "acct_1", range: Fixture.may).segments.map(\.events) == [4])
        store.digestCache.setPreparing(id, false)
        #expect(try await store.prepareOpenSegments() == 1)
        #expect(try await store.ingest([Self.event(4)]).accepted == 1)
        #expect(try await store.explain(account: "acct_1", range: Fixture.may).segments.map(\.events) == [4, 1])
        #expect(store.digestCache.sealRereads == 0)
        try await store.sealOpenSegments()
        #expect(try await deepVerify(store).ok)
    }

    /// A CLI command beside a running server seals only the segments it wrote: it sealed every
    /// account's, re-reading the server's inside the writer while the server waited (tester K2).
    @Test func aCommandSealsOnlyTheSegmentsItWrote() async throws {
        let server = try restarted()
        #expect(try await server.ingest([Fixture.event("s1", account: "acct_2", quantity: 1)]).accepted == 1)
        let cli = try restarted()
        #expect(try await cli.ingest([Fixture.event("c1", account: "acct_3", quantity: 1)]).accepted == 1)
        try await cli.sealSegmentsWrittenHere()
        #expect(cli.digestCache.sealRereads == 0, "nothing of another process's was re-read")
        let open = try await cli.writer.read { try String.fetchAll($0, sql: "SELECT account_id FROM segment WHERE sealed_at IS NULL ORDER BY account_id") }
        #expect(open == ["acct_1", "acct_2"], "the crash's and the server's segments stay open for their writers")
        try await server.sealOpenSegments()
        for account in ["acct_1", "acct_2", "acct_3"] {
            #expect(try await server.verify(VerifyRequest(account: account, range: Fixture.may, mode: .deep)).ok)
        }
    }

    /// A change that makes digests stale between the snapshot and the hand-over (a rollup rebuild
    /// files the statistics under new keys) leaves the snapshot out: sealing re-reads.
    @Test func aSnapshotOlderThanARollupChangeIsNotInstalled() async throws {
        let store = try restarted()
        let (id, snapshot) = try await Self.snapshotOfTheOpenSegment(store)
        _ = try await store.setMeter("tokens", unit: nil, rollupDimensions: [])
        try await Self.expectLeftOutAndSealedFromAReRead(store, snapshot)
    }

    /// Another process's rollup change committed between the snapshot and the hand-over: this
    /// process has written nothing yet, so no change of `data_version` is seen, and the snapshot's
    /// statistics are filed under the old keys. The meters are compared instead (review 9).
    @Test func aRollupChangeByAnotherProcessBeforeTheHandOverLeavesTheSnapshotOut() async throws {
        let store = try restarted()
        let (id, snapshot) = try await Self.snapshotOfTheOpenSegment(store)
        let other = try restarted()
        _ = try await other.setMeter("tokens", unit: nil, rollupDimensions: [])
        try await Self.expectLeftOutAndSealedFromAReRead(store, snapshot)
    }

    /// Digests a transaction publishes after its commit are left out when a write that ran in
    /// between made digests stale (a rollup change finding nothing yet to forget).
    @Test func digestsPublishedAfterAStaleningWriteAreLeftOut() {
        let cache = DigestCache()
        var d = SegmentDigest(previous: nil)
        d.segmentID = 7
        let epoch = cache.epoch
        cache.forget(7)
        cache.put([7: d], ifEpoch: epoch)
        #expect(!cache.has(7))
        cache.put([7: d], ifEpoch: cache.epoch)
        #expect(cache.has(7))
    }

    /// While a full segment waits to be hashed it keeps taking events, up to twice its size and
    /// no further: then it is sealed from a re-read after all (review 10: nothing checked the bound).
    @Test func aSegmentWaitingToBeHashedTakesEventsUpToTwiceItsSize() async throws {
        let store = try restarted()
        let (id, _) = try await Self.snapshotOfTheOpenSegment(store)
        store.digestCache.setPreparing(id, true)
        defer { store.digestCache.setPreparing(id, false) }
        #expect(try await store.ingest((8..<16).map { Self.event($0) }).accepted == 8)
        #expect(store.digestCache.sealRereads == 0)
        #expect(try await store.explain(account: "acct_1", range: Fixture.may).segments.map(\.events) == [16])
        #expect(try await store.ingest([Self.event(16)]).accepted == 1)
        #expect(store.digestCache.sealRereads == 1)
        #expect(try await store.explain(account: "acct_1", range: Fixture.may).segments.map(\.events) == [16, 1])
        try await store.sealOpenSegments()
        let report = try await deepVerify(store)
        #expect(report.ok && report.segmentsCorrupt == 0, "\(report)")
    }

    /// Another process's commit made the server forget every running digest, and each full
    /// segment was then re-read inside the writer as it sealed (tester K2: a write within ~5 s of
    /// a CLI command beside the server). Only a meter change does now (statistics are filed under
    /// the keys a meter's kept dimensions decide); other commits leave the digests in use.
    @Test func anotherProcessCommitLeavesRunningDigestsUnlessAMeterChanged() async throws {
        let store = try restarted()
        #expect(try await store.prepareOpenSegments() == 1)
        #expect(try await store.ingest([Self.event(8)]).accepted == 1)
        _ = try await restarted().createKey(account: "acct_1", role: .reader)
        #expect(try await store.ingest((9..<17).map { Self.event($0) }).accepted == 8)
        #expect(store.digestCache.sealRereads == 0, "sealed from its running digest")
        _ = try await restarted().setMeter("tokens", unit: nil, rollupDimensions: [])
        #expect(try await store.ingest((17..<25).map { Self.event($0) }).accepted == 8)
        #expect(store.digestCache.sealRereads == 1, "a meter changed: the digest is forgotten and the segment re-read")
        try await store.sealOpenSegments()
        let report = try await deepVerify(store)
        #expect(report.ok && report.segmentsCorrupt == 0, "\(report)")
    }

    /// Events changed behind the store's back while the segment was open no longer match the
    /// multiset hash kept with each batch: no digest is prepared, and sealing still records the
    /// segment as corrupt.
    @Test func anEditedOpenSegmentIsNotPreparedAndStillSealsAsCorrupt() async throws {
        let queue = try DatabaseQueue(path: path)
        // Consistent with the rollups and the segment's sum: only the kept multiset hash tells.
        try await queue.write {
            try $0.execute(
                sql: """
                    DROP TRIGGER event_no_update;
                    UPDATE event SET quantity = quantity + 1 WHERE event_id = 'e3';
                    UPDATE rollup_hour SET sum = sum + 1 WHERE hour = \(Fixture.ts("2026-05-04T13:00:00Z").hour);
                    UPDATE rollup_day SET sum = sum + 1 WHERE day = \(Fixture.ts("2026-05-04T13:00:00Z").day);
                    UPDATE segment SET sum = sum + 1 WHERE sealed_at IS NULL;
                    """)
        }
        try queue.close()
        let store = try restarted()
        #expect(try await store.prepareOpenSegments() == 0)
        // Refused once, it is not hashed again on every tick while it takes no events.
        #expect(try await store.prepareOpenSegments() == 0)
        #expect(store.digestCache.snapshotsRead == 1)
        let id = try #require(try await store.writer.read { try Int64.fetchOne($0, sql: "SELECT id FROM segment WHERE sealed_at IS NULL") })
        #expect(try await store.ingest([Self.event(8)]).accepted == 1)
        #expect(store.digestCache.sealRereads == 1)
        // Sealed, it is no longer kept among the segments this process wrote.
        #expect(!store.digestCache.wasWritten(id))
        let report = try await deepVerify(store)
        #expect(report.drift == 0 && report.corruptSegments.map(\.reason).contains { $0.contains("running hash") }, "\(report)")
    }
}
