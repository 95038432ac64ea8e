import Foundation
import GRDB
import MeterStoreSQLite
import Metering
import Testing
import UsageBoxTesting

/// Verify must catch changes made behind the store's back, straight in the SQLite file.
@Suite struct TamperTests {
    let dir: TemporaryDirectory
    let path: String
    let store: SQLiteMeterStore

    init() async throws {
        dir = try TemporaryDirectory()
        path = dir.path("store.db")
        store = try SQLiteMeterStore(location: .file(path))
        var items: [IngestItem] = []
        for i in 0..<300 {
            let at = Timestamp(microseconds: Fixture.ts("2026-05-01T00:00:00Z").microseconds + Int64(i) * 3_600_000_000 / 3)
            items.append(
                Fixture.event(
                    "e\(i)", model: i % 2 == 0 ? "a" : "b", quantity: Int64(100 + i), at: at.rfc3339,
                    dims: ["token_type": i % 3 == 0 ? "input" : "output"]))
        }
        _ = try await store.ingest(items)
        try await store.sealOpenSegments()
    }

    func edit(_ sql: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { try $0.execute(sql: sql) }
    }

    func verify(_ mode: VerifyMode = .deep, byDay: Bool = false) async throws -> VerifyReport {
        try await store.verify(VerifyRequest(account: "acct_1", range: Fixture.may, mode: mode, byDay: byDay))
    }

    @Test func cleanStoreVerifies() async throws {
        let v = try await verify()
        #expect(v.ok && v.drift == 0 && v.rawSum == v.rollupSum && v.segmentsCorrupt == 0)
    }

    @Test func changedRollupRowIsCaughtInBothModes() async throws {
        try edit("UPDATE rollup_hour SET sum = sum + 7 WHERE (key_id, hour) = (SELECT key_id, hour FROM rollup_hour LIMIT 1)")
        for mode in [VerifyMode.deep, .incremental] {
            let v = try await verify(mode, byDay: true)
            #expect(!v.ok, "\(mode)")
            // The hour disagrees with its events (7); the day's rollup still equals its events,
            // so the change is reported once (it was 14, the day checked against its hours, in a
            // second line whose raw sum no hour held).
            #expect(v.drift == 7)
            #expect(v.mismatches.count == 1)
            #expect(v.mismatches.first.map { $0.rollup == .hour && $0.rollupSum == $0.rawSum + 7 } == true, "\(v.mismatches)")
            #expect(v.rollupSum == v.rawSum + 7)
            #expect(v.days?.filter { $0.drift != 0 }.count == 1, "the day of the change is named")
            #expect(v.days?.reduce(0) { $0 + $1.drift } == v.drift, "the days add up to the drift")
        }
    }

    @Test func offsettingRollupChangesCannotHide() async throws {
        try edit(
            """
            UPDATE rollup_hour SET sum = sum + 500 WHERE (key_id, hour) = (SELECT key_id, hour FROM rollup_hour ORDER BY key_id, hour LIMIT 1);
            UPDATE rollup_hour SET sum = sum - 500 WHERE (key_id, hour) = (SELECT key_id, hour FROM rollup_hour ORDER BY key_id DESC, hour DESC LIMIT 1);
            """)
        let v = try await verify()
        #expect(!v.ok)
        #expect(v.rollupSum == v.rawSum, "the totals agree…")
        #expect(v.drift == 1000, "…but drift sums |raw − rollup| per key and hour")
        #expect(v.mismatches.count == 2 && v.mismatches.allSatisfy { $0.rollup == .hour && abs($0.rollupSum - $0.rawSum) == 500 })
    }

    @Test func aChangedDailyRollupIsCaught() async throws {
        try edit("UPDATE rollup_day SET sum = sum + 3 WHERE (key_id, day) = (SELECT key_id, day FROM rollup_day LIMIT 1)")
        for mode in [VerifyMode.deep, .incremental] {
            let v = try await verify(mode)
            #expect(!v.ok && v.drift == 3 && v.mismatches.count == 1, "\(mode)")
            #expect(
                v.mismatches.first.map { $0.rollup == .day && $0.rollupSum == $0.rawSum + 3 && $0.hour.microseconds % (24 * Timestamp.microsPerHour) == 0 }
                    == true)
        }
        // Reads over whole days use the daily rollups, so the tampering shows there first.
        let total = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: Fixture.may))
        let raw = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: Fixture.may, source: .raw))
        #expect(total.groups[0].aggregate.sum == raw.groups[0].aggregate.sum + 3)
    }

    @Test func changedCountIsCaught() async throws {
        try edit("UPDATE rollup_hour SET count = count + 1 WHERE (key_id, hour) = (SELECT key_id, hour FROM rollup_hour LIMIT 1)")
        let v = try await verify()
        #expect(!v.ok && v.drift == 0 && v.mismatches.count == 1, "the hour disagrees in count; its day still equals its events")
    }

    /// Reads of min and max are answered from rollups: a changed extreme was served as fact while
    /// both modes of verify, comparing sums and counts only, said ok.
    @Test func changedExtremaAreCaughtByDeepVerify() async throws {
        try edit("UPDATE rollup_hour SET min = -5 WHERE (key_id, hour) = (SELECT key_id, hour FROM rollup_hour ORDER BY key_id, hour LIMIT 1)")
        try edit("UPDATE rollup_day SET max = 999999 WHERE (key_id, day) = (SELECT key_id, day FROM rollup_day ORDER BY key_id, day LIMIT 1)")
        let v = try await verify()
        #expect(!v.ok && v.drift == 0, "\(v)")
        #expect(v.mismatches.count == 2, "\(v.mismatches)")
        #expect(v.mismatches.contains { $0.rollup == .hour && $0.extrema?.rollupMin == -5 && $0.extrema.map { $0.rawMin > 0 } == true })
        #expect(v.mismatches.contains { $0.rollup == .day && $0.extrema?.rollupMax == 999999 && $0.extrema.map { $0.rawMax < 999999 } == true })
        #expect(try await verify(byDay: true).ok == false)
    }

    /// A drift past 64 bits (an hour whose events net to Int64.min, its rollup edited to
    /// Int64.max) was refused with "read a shorter range", which no range could do.
    @Test func aDriftPastSixtyFourBitsIsReportedAsTheLargest() async throws {
        let at = "2026-05-20T05:00:00Z"
        _ = try await store.ingest([Fixture.event("low", account: "acct_2", kind: .correction, ref: "x", quantity: .min, at: at)])
        try edit("UPDATE rollup_hour SET sum = 9223372036854775807 WHERE key_id IN (SELECT id FROM rollup_key WHERE account_id = 'acct_2')")
        let hour = try TimeRange(from: Fixture.ts(at), to: Fixture.ts("2026-05-20T06:00:00Z"))
        let v = try await store.verify(VerifyRequest(account: "acct_2", range: hour, mode: .deep))
        #expect(!v.ok && v.drift == .max, "\(v.drift)")
    }

    /// The rollup total past 64 bits (an hour edited to Int64.max beside other hours) was refused
    /// with "read a shorter range"; the sides differ, so it is drift, reported.
    @Test func aRollupTotalPastSixtyFourBitsIsDrift() async throws {
        try edit("UPDATE rollup_hour SET sum = 9223372036854775807 WHERE (key_id, hour) = (SELECT key_id, hour FROM rollup_hour ORDER BY key_id, hour LIMIT 1)")
        let v = try await verify(byDay: true)
        #expect(!v.ok && v.drift > Int64.max / 2 && v.rollupSum == .max && v.rawSum > 0, "\(v.rollupSum) \(v.rawSum) \(v.drift)")
    }

    @Test func alteredSegmentEventsAreCaught() async throws {
        // Only someone with the file and the will to drop the immutability trigger can do this.
        try edit(
            """
            DROP TRIGGER event_no_update;
            UPDATE event SET quantity = quantity + 1 WHERE event_id = 'e10';
            UPDATE rollup_hour SET sum = sum + 1 WHERE (key_id, hour) IN (SELECT k.id, e.ts / 3600000000 FROM event e JOIN rollup_key k
              ON k.account_id = e.account_id AND k.meter_id = e.meter_id AND k.model_id = e.model_id AND k.kind = e.kind
              AND k.dimensions = e.dimensions WHERE e.event_id = 'e10');
            """)
        let v = try await verify()
        #expect(!v.ok)
        #expect(v.drift == 1, "the hourly rollup was forged to match; its day still tells, and so does the hash")
        #expect(v.segmentsCorrupt == 1)
        #expect(v.corruptSegments.first?.reason.contains("SHA-256") == true)
    }

    /// A meter change re-hashes the sealed segments of its events and refuses when one no longer
    /// matches; what it found is recorded too, so incremental verify (which trusts segments a
    /// re-hash proved) reports it at once, not only after a deep verify (tester O).
    @Test func aMismatchFoundChangingAMeterIsRecorded() async throws {
        #expect(try await verify().ok)
        try edit("DROP TRIGGER event_no_update; UPDATE event SET quantity = quantity + 1000000 WHERE event_id = 'e10';")
        #expect(try await verify(.incremental).ok, "incremental trusts the proved segment's statistics")
        do {
            _ = try await store.setMeter("tokens", unit: nil, rollupDimensions: [])
            Issue.record("a meter change over a segment that no longer matches its hash")
        } catch let e as UsageBoxError {
            #expect(e.code == .conflict && e.message.contains("no longer matches its hash"), "\(e)")
        }
        let v = try await verify(.incremental)
        #expect(!v.ok && v.segmentsCorrupt == 1, "\(v)")
    }

    @Test func deletedEventIsCaught() async throws {
        try edit("DROP TRIGGER event_no_delete; DELETE FROM event WHERE event_id = 'e20';")
        let v = try await verify()
        // Both rollups now hold 120 its events do not: the hour's cell and the day's, each against raw.
        #expect(!v.ok && v.segmentsCorrupt == 1 && v.drift == 240)
        #expect(v.mismatches.map(\.rollup) == [.hour, .day] && v.mismatches.allSatisfy { $0.rollupSum == $0.rawSum + 120 })
        let byDay = try await verify(byDay: true)
        #expect(byDay.days?.reduce(0) { $0 + $1.drift } == byDay.drift, "the days add up to the drift")
    }

    @Test func anEventMovedToAnotherSegmentIsCaught() async throws {
        // A segment's events are its seq range *and* its segment_id: relabelling one breaks the hash.
        _ = try await store.ingest([Fixture.event("later", quantity: 1, at: "2026-05-20T00:00:00Z")])
        try await store.sealOpenSegments()
        try edit(
            """
            DROP TRIGGER event_no_update;
            UPDATE event SET segment_id = (SELECT MAX(id) FROM segment) WHERE event_id = 'e10';
            """)
        let v = try await verify()
        #expect(!v.ok)
        #expect(v.corruptSegments.contains { $0.reason.contains("SHA-256") })
    }

    /// A correction stored after its month closed says so (`post_close`, shown by explain): a
    /// file edit clearing the flag hid that a closed month was changed, and verify said ok. The
    /// flag is in the segment's hash.
    @Test func aClearedPostCloseFlagIsCaught() async throws {
        _ = try await store.closePeriod(account: "acct_1", period: "2026-05")
        let late = Fixture.event("late_fix", kind: .correction, ref: "r", quantity: -5, at: "2026-05-20T00:00:00Z")
        #expect(try await store.ingest([late]).postClose == 1)
        try await store.sealOpenSegments()
        #expect(try await verify().ok)
        try edit("DROP TRIGGER event_no_update; UPDATE event SET post_close = 0 WHERE event_id = 'late_fix';")
        let v = try await verify()
        #expect(!v.ok && v.corruptSegments.contains { $0.reason.contains("SHA-256") }, "\(v.corruptSegments)")
        // Nor can the segment be told it was sealed under the rule that did not mark the flag.
        #expect(throws: (any Error).self) { try edit("UPDATE segment SET hash_rule = 1") }
    }

    /// The flag cleared while its segment is still open: the count of post-close events kept
    /// with each batch says so, before the seal and after it (the seal re-reads the events, as
    /// any edit by another process drops the writer's own digest, and would hash the edit in).
    /// A sealed segment naming a hash rule no usagebox seals under is corrupt as well.
    @Test func aClearedPostCloseFlagInAnOpenSegmentOrAnUnknownRuleIsCaught() async throws {
        _ = try await store.closePeriod(account: "acct_1", period: "2026-05")
        #expect(try await store.ingest([Fixture.event("late_fix", kind: .correction, ref: "r", quantity: -5, at: "2026-05-20T00:00:00Z")]).postClose == 1)
        #expect(try await verify().ok)
        try edit("DROP TRIGGER event_no_update; UPDATE event SET post_close = 0 WHERE event_id = 'late_fix';")
        let open = try await verify()
        #expect(!open.ok && open.corruptSegments.contains { $0.reason.contains("post-close flag was cleared") }, "\(open.corruptSegments)")
        try await store.sealOpenSegments()
        let sealed = try await verify()
        #expect(!sealed.ok && sealed.corruptSegments.contains { $0.reason.contains("post-close flag was cleared") }, "\(sealed.corruptSegments)")
        try edit("UPDATE event SET post_close = 1 WHERE event_id = 'late_fix';")

        try edit("DROP TRIGGER segment_sealed_rule_is_final; UPDATE segment SET hash_rule = 99 WHERE id = 1;")
        let unknown = try await verify()
        #expect(!unknown.ok && unknown.corruptSegments.contains { $0.reason.contains("hash rule 99") }, "\(unknown.corruptSegments)")
    }

    @Test func brokenChainIsCaught() async throws {
        _ = try await store.ingest([Fixture.event("later", quantity: 1, at: "2026-05-20T00:00:00Z")])
        try await store.sealOpenSegments()
        try edit(
            """
            DROP TRIGGER segment_sealed_is_final;
            UPDATE segment SET prev_sha256 = 'forged' WHERE id = (SELECT MAX(id) FROM segment);
            """)
        let v = try await verify()
        #expect(!v.ok)
        #expect(v.corruptSegments.contains { $0.reason.contains("chain") })
    }

    @Test func incrementalTrustsVerifiedSegmentsAndDeepDoesNot() async throws {
        #expect(try await verify(.deep).ok)
        try edit("DROP TRIGGER event_no_update; UPDATE event SET model_id = 'zzz' WHERE event_id = 'e5';")
        // The fast path compares rollups with the sums recorded at sealing, already proven against the hash.
        #expect(try await verify(.incremental).ok)
        let deep = try await verify(.deep)
        #expect(!deep.ok && deep.segmentsCorrupt == 1)
    }

    @Test func eventsCannotBeUpdatedOrDeleted() async throws {
        _ = try await store.closePeriod(account: "acct_1", period: "2026-04")
        #expect(throws: (any Error).self) { try edit("UPDATE event SET quantity = 0") }
        #expect(throws: (any Error).self) { try edit("DELETE FROM event") }
        #expect(throws: (any Error).self) { try edit("UPDATE segment SET sha256 = 'x'") }
        #expect(throws: (any Error).self) { try edit("DELETE FROM period") }
        #expect(throws: (any Error).self) { try edit("UPDATE period SET period = '2026-05'") }
        #expect(throws: (any Error).self) { try edit("DELETE FROM segment") }
        let v = try await verify()
        #expect(v.ok && v.rawSum == (0..<300).reduce(0) { $0 + 100 + Int64($1) })
    }

    // MARK: incremental verify trusts only what was re-hashed

    static let forgeE10 = """
        DROP TRIGGER IF EXISTS event_no_update;
        UPDATE event SET quantity = quantity + 1 WHERE event_id = 'e10';
        UPDATE rollup_hour SET sum = sum + 1 WHERE (key_id, hour) IN (SELECT k.id, e.ts / 3600000000 FROM event e JOIN rollup_key k
          ON k.account_id = e.account_id AND k.meter_id = e.meter_id AND k.model_id = e.model_id AND k.kind = e.kind
          AND k.dimensions = e.dimensions WHERE e.event_id = 'e10');
        UPDATE rollup_day SET sum = sum + 1 WHERE (key_id, day) IN (SELECT k.id, e.ts / 86400000000 FROM event e JOIN rollup_key k
          ON k.account_id = e.account_id AND k.meter_id = e.meter_id AND k.model_id = e.model_id AND k.kind = e.kind
          AND k.dimensions = e.dimensions WHERE e.event_id = 'e10');
        """

    @Test func aSealedSegmentIsNotTrustedOnTheWritersOwnHash() async throws {
        // Sealed by the writer, never re-hashed: a forged event with its rollups forged to match.
        try edit(Self.forgeE10)
        let v = try await verify(.incremental)
        #expect(!v.ok && v.segmentsCorrupt == 1, "incremental verify re-hashes a segment nobody re-hashed since sealing")
    }

    @Test func anEditBeforeTheLastScrubIsCaughtByIncrementalVerify() async throws {
        _ = try await verify(.deep)  // re-hashed clean: now trusted
        var progress = try await store.scrub(maxSegments: 10)
        #expect(progress.verified == progress.sealed && progress.corrupt == 0 && progress.pending == 0)
        // An event edited alone (its rollups and the segment's statistics left as they were).
        try edit("DROP TRIGGER IF EXISTS event_no_update; UPDATE event SET model_id = 'z' WHERE event_id = 'e10';")
        #expect(try await verify(.incremental).ok, "an edit after the last re-hash is not looked for until the next")
        progress = try await store.scrub(maxSegments: 10)  // the server's scrub comes round
        #expect(progress.corrupt == 1)
        let v = try await verify(.incremental)
        #expect(!v.ok && v.segmentsCorrupt == 1 && v.corruptSegments.first?.reason.contains("SHA-256") == true)
        let explain = try await store.explain(account: "acct_1", range: Fixture.may)
        #expect(explain.integrity?.corrupt == 1 && explain.integrity?.sealed == progress.sealed)
    }

    @Test func aConsistentEditOfAnOpenSegmentIsCaught() async throws {
        _ = try await store.ingest([
            Fixture.event("open1", quantity: 5, at: "2026-05-21T00:00:00Z"),
            Fixture.event("open2", quantity: 6, at: "2026-05-21T00:10:00Z"),
        ])
        try edit(
            """
            DROP TRIGGER IF EXISTS event_no_update;
            UPDATE event SET quantity = 50 WHERE event_id = 'open1';
            UPDATE rollup_hour SET sum = sum + 45 WHERE hour = \(Fixture.ts("2026-05-21T00:00:00Z").hour);
            UPDATE rollup_day SET sum = sum + 45 WHERE day = \(Fixture.ts("2026-05-21T00:00:00Z").day);
            UPDATE segment SET sum = sum + 45 WHERE sealed_at IS NULL;
            """)
        let v = try await verify(.incremental)
        #expect(!v.ok && v.corruptSegments.first?.reason.contains("running hash") == true, "\(v.corruptSegments)")
        // Sealing it does not launder the edit.
        try await store.sealOpenSegments()
        #expect(try await verify(.deep).corruptSegments.contains { $0.reason.contains("running hash") })
    }
}

extension TamperTests {
    /// Verify once loaded every rollup key of the account before checking it: 20,000 keys of 32
    /// dimensions of control characters (~46 KB each as stored) took 1,009 MB for one verify.
    /// Keys are now looked up as events and mismatches name them, kept in a cache of a few MB
    /// that starts again when full: more keys than it holds (here ~5.5 MB of them) still
    /// verify clean, and a mismatch past the first clearing is named by its own dimensions.
    @Test func anAccountOfManyLongKeysVerifiesAndNamesTheKeyThatDrifted() async throws {
        let items: [IngestItem] = (0..<120).map { i in
            Fixture.event(
                "long\(i)", account: "acct_long", quantity: 1, at: "2026-05-02T\(String(format: "%02d", i % 24)):00:00Z",
                dims: Dictionary(
                    uniqueKeysWithValues: (0..<32).map { d in (String(format: "d%02d", d), String(repeating: "\u{01}", count: 240) + "\(d)_\(i)") }))
        }
        _ = try await store.ingest(items)
        try await store.sealOpenSegments()
        let request = VerifyRequest(account: "acct_long", range: Fixture.may, mode: .deep, byDay: false)
        let clean = try await store.verify(request)
        #expect(clean.ok && clean.rawSum == 120 && clean.segmentsChecked >= 1, "\(clean.mismatches.count)")
        try edit(
            """
            UPDATE rollup_hour SET sum = sum + 5 WHERE key_id = (SELECT k.id FROM event e JOIN rollup_key k
              ON k.account_id = e.account_id AND k.meter_id = e.meter_id AND k.model_id = e.model_id AND k.kind = e.kind AND k.dimensions = e.dimensions
              WHERE e.event_id = 'long117')
            """)
        let drifted = try await store.verify(request)
        // The hour against its event (5), one key; the day's rollup still equals its events.
        #expect(!drifted.ok && drifted.drift == 5 && drifted.mismatches.count == 1)
        #expect(drifted.mismatches.allSatisfy { $0.dimensions.contains("7_117\"") && $0.dimensions.contains("31_117\"") }, "the drifted key, by its dimensions")
    }
}
