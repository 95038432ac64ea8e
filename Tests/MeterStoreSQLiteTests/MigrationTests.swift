import Foundation
import GRDB
import Metering
import SegmentChain
import Testing
import UsageBoxTesting

@testable import MeterStoreSQLite

/// A store written before `v5.segment-clustered-events` keeps verifying, and keeps ingesting, after it.
@Suite struct MigrationTests {
    @Test func segmentsFromBeforeSeqRangesStillSealAndVerify() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("old.db")
        // A v4 store as the v4 code left it: an open segment with two events (plain rowid seqs)
        // and their hourly and daily rollups.
        let queue = try DatabaseQueue(path: path)
        try SQLiteMeterStore.migrator.migrate(queue, upTo: "v4.rollup-day")
        let t1 = Fixture.ts("2026-05-01T10:00:00Z").microseconds, t2 = t1 + 60_000_000
        let hour = t1 / 3_600_000_000
        try await queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO meter (meter_id, unit, created_at) VALUES ('tokens', 'tokens', 0);
                    INSERT INTO segment (id, account_id, opened_at, event_count, sum, first_ts, last_ts) VALUES (1, 'acct_1', 0, 2, 30, \(t1), \(t2));
                    INSERT INTO event (account_id, event_id, meter_id, model_id, kind, quantity, unit, ts, dimensions, segment_id, ingested_at)
                        VALUES ('acct_1', 'old1', 'tokens', 'm1', 'Usage', 10, 'tokens', \(t1), '{}', 1, 0),
                               ('acct_1', 'old2', 'tokens', 'm1', 'Usage', 20, 'tokens', \(t2), '{}', 1, 0);
                    INSERT INTO rollup_key (id, account_id, meter_id, model_id, kind, unit, dimensions)
                        VALUES (1, 'acct_1', 'tokens', 'm1', 'Usage', 'tokens', '{}');
                    INSERT INTO rollup_hour (key_id, hour, sum, count, min, max) VALUES (1, \(hour), 30, 2, 10, 20);
                    INSERT INTO rollup_day (key_id, day, sum, count, min, max) VALUES (1, \(hour / 24), 30, 2, 10, 20);
                    """)
        }
        try queue.close()

        let store = try SQLiteMeterStore(location: .file(path))
        let request = VerifyRequest(account: "acct_1", range: Fixture.may, mode: .deep)
        #expect(try await store.verify(request).ok)
        // The old open segment is sealed (read through the legacy index) before new events go to a new one.
        let r = try await store.ingest([Fixture.event("new1", quantity: 5, at: "2026-05-01T10:30:00Z")])
        #expect(r.accepted == 1)
        #expect(try await store.ingest([Fixture.event("old1", quantity: 10, at: "2026-05-01T10:00:00Z")]).duplicates == 1)
        let explain = try await store.explain(account: "acct_1", range: Fixture.may)
        #expect(explain.segments.map(\.events) == [2, 1])
        #expect(explain.segments[0].sealedAt != nil && explain.segments[1].sealedAt == nil)
        try await store.sealOpenSegments()
        let report = try await store.verify(request)
        #expect(report.ok, "\(report)")
        let usage = try await store.usage(UsageQuery(scope: .accounts(["acct_1"]), range: Fixture.may))
        #expect(usage.groups.map { $0.aggregate.sum } == [35])
        // v7 dropped the time index: raw reads find the legacy events through their segment too.
        for scope in [AccountScope.all, .accounts(["acct_1"])] {
            let raw = try await store.usage(UsageQuery(scope: scope, range: Fixture.may, source: .raw))
            #expect(raw.groups.map { $0.aggregate.sum } == [35] && raw.source == "raw")
        }
        let sql = try await store.sql("SELECT SUM(quantity) FROM usage_events", scope: .accounts(["acct_1"]), timeLimitSeconds: 10, rowLimit: 10)
        #expect(sql.rows == [[.int(35)]])
        let indexes = try await readDirectly(path) { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index'") }
        #expect(!indexes.contains("event_account_ts"))

        // Changing a legacy event is still caught by its segment's hash.
        let edit = try DatabaseQueue(path: path)
        try await edit.write { db in
            try db.execute(sql: "DROP TRIGGER event_no_update")
            try db.execute(sql: "UPDATE event SET quantity = 11 WHERE event_id = 'old1'")
        }
        #expect(try await store.verify(request).ok == false)
    }

    /// A segment sealed before post-close events were marked in its hash (v7) keeps verifying
    /// under the rule it was sealed with; one sealed after marks them, so clearing the flag of a
    /// post-close correction in the file is caught there.
    @Test func segmentsSealedBeforePostCloseMarksStillVerify() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("v7.db")
        let queue = try DatabaseQueue(path: path)
        try SQLiteMeterStore.migrator.migrate(queue, upTo: "v7.time-by-segment")
        let t1 = Fixture.ts("2026-05-01T10:00:00Z").microseconds, t2 = Fixture.ts("2026-05-20T10:00:00Z").microseconds
        let usage = UsageEvent(
            eventID: "u1", accountID: "acct_1", meterID: "tokens", modelID: "m1", quantity: 10, unit: "tokens", timestamp: Timestamp(microseconds: t1))
        let fix = UsageEvent(
            eventID: "c1", accountID: "acct_1", meterID: "tokens", modelID: "m1", kind: .correction, correctionRef: "r", quantity: -3,
            unit: "tokens", timestamp: Timestamp(microseconds: t2))
        // Hashed as v7 sealed it: the events alone.
        var v7 = SegmentDigest(previous: nil)
        v7.rule = 1
        v7.add(usage, key: 1, postClose: false)
        v7.add(fix, key: 2, postClose: true)
        let sealedHash = v7.finalize()
        let base = SQLiteMeterStore.seqBase(segment: 1)
        let (h1, h2) = (t1 / 3_600_000_000, t2 / 3_600_000_000)
        try await queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO meter (meter_id, unit, created_at) VALUES ('tokens', 'tokens', 0);
                    INSERT INTO period (account_id, period, closed_at) VALUES ('acct_1', '2026-05', 1);
                    INSERT INTO segment (id, account_id, opened_at, sealed_at, event_count, sum, first_ts, last_ts, sha256, seq_base)
                        VALUES (1, 'acct_1', 0, 2, 2, 7, \(t1), \(t2), '\(sealedHash)', \(base));
                    INSERT INTO event (seq, account_id, event_id, meter_id, model_id, kind, correction_ref, quantity, unit, ts, dimensions,
                                       segment_id, post_close, ingested_at)
                        VALUES (\(base), 'acct_1', 'u1', 'tokens', 'm1', 'Usage', NULL, 10, 'tokens', \(t1), '{}', 1, 0, 0),
                               (\(base + 1), 'acct_1', 'c1', 'tokens', 'm1', 'Correction', 'r', -3, 'tokens', \(t2), '{}', 1, 1, 2);
                    INSERT INTO rollup_key (id, account_id, meter_id, model_id, kind, unit, dimensions)
                        VALUES (1, 'acct_1', 'tokens', 'm1', 'Usage', 'tokens', '{}'), (2, 'acct_1', 'tokens', 'm1', 'Correction', 'tokens', '{}');
                    INSERT INTO rollup_hour (key_id, hour, sum, count, min, max) VALUES (1, \(h1), 10, 1, 10, 10), (2, \(h2), -3, 1, -3, -3);
                    INSERT INTO rollup_day (key_id, day, sum, count, min, max) VALUES (1, \(h1 / 24), 10, 1, 10, 10), (2, \(h2 / 24), -3, 1, -3, -3);
                    INSERT INTO segment_stat (segment_id, key_id, hour, sum, count) VALUES (1, 1, \(h1), 10, 1), (1, 2, \(h2), -3, 1);
                    """)
        }
        try queue.close()

        let store = try SQLiteMeterStore(location: .file(path))
        let request = VerifyRequest(account: "acct_1", range: Fixture.may, mode: .deep)
        let before = try await store.verify(request)
        #expect(before.ok && before.segmentsChecked == 1, "\(before)")
        // A post-close correction after the upgrade goes to a new segment, sealed under rule 2.
        #expect(try await store.ingest([Fixture.event("c2", kind: .correction, ref: "r", quantity: -1, at: "2026-05-21T00:00:00Z")]).postClose == 1)
        try await store.sealOpenSegments()
        #expect(try await store.verify(request).ok)
        let rules = try await readDirectly(path) { db in try Int.fetchAll(db, sql: "SELECT hash_rule FROM segment ORDER BY id") }
        #expect(rules == [1, 2])
        let edit = try DatabaseQueue(path: path)
        try await edit.write { db in
            try db.execute(sql: "DROP TRIGGER event_no_update; UPDATE event SET post_close = 0 WHERE event_id = 'c2'")
        }
        let after = try await store.verify(request)
        #expect(!after.ok && after.corruptSegments.map(\.segmentID) == [ExplainReport.SegmentInfo.name(2)], "\(after.corruptSegments)")
    }

    /// An open segment edited before the upgrade (its running hash, kept by v7, no longer
    /// matches): still reported after it, and its seal keeps the finding. The upgrade once set
    /// open segments' running hashes aside and the edit passed for good.
    @Test func anOpenSegmentEditedBeforeTheUpgradeIsStillCaught() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("v7-open.db")
        let sent = UsageEvent(
            eventID: "u1", accountID: "acct_1", meterID: "tokens", modelID: "m1", quantity: 10, unit: "tokens",
            timestamp: Fixture.ts("2026-05-01T10:00:00Z"))
        var edited = sent
        edited.modelID = "m2"
        try await Self.v7StoreWithAnOpenSegment(path, holding: edited, runningHashOf: sent)
        let store = try SQLiteMeterStore(location: .file(path))
        let request = VerifyRequest(account: "acct_1", range: Fixture.may, mode: .deep)
        let open = try await store.verify(request)
        #expect(!open.ok && open.corruptSegments.contains { $0.reason.contains("running hash") }, "\(open.corruptSegments)")
        try await store.sealOpenSegments()
        #expect(try await store.verify(request).ok == false)
    }

    /// A segment open at the upgrade holding a post-close correction: the migration counts its
    /// post-close events, so clearing the flag after the upgrade is reported (counted at the
    /// first write instead, the edit passed for good).
    @Test func aFlagClearedAfterTheUpgradeInASegmentOpenAtItIsCaught() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("v7-postclose.db")
        let fix = UsageEvent(
            eventID: "c1", accountID: "acct_1", meterID: "tokens", modelID: "m1", kind: .correction, correctionRef: "r", quantity: -3,
            unit: "tokens", timestamp: Fixture.ts("2026-05-20T10:00:00Z"))
        try await Self.v7StoreWithAnOpenSegment(path, holding: fix, runningHashOf: fix, postClose: true)
        let store = try SQLiteMeterStore(location: .file(path))
        let request = VerifyRequest(account: "acct_1", range: Fixture.may, mode: .deep)
        #expect(try await store.verify(request).ok)
        let edit = try DatabaseQueue(path: path)
        try await edit.write { try $0.execute(sql: "DROP TRIGGER event_no_update; UPDATE event SET post_close = 0 WHERE event_id = 'c1'") }
        let after = try await store.verify(request)
        #expect(!after.ok && after.corruptSegments.contains { $0.reason.contains("post-close flag was cleared") }, "\(after.corruptSegments)")
    }

    /// A v7 store as v7 left it: acct_1's one open segment holding `event` (post-close, its May
    /// closed, when said), its rollups, and the running hash kept of `runningHashOf`.
    static func v7StoreWithAnOpenSegment(_ path: String, holding e: UsageEvent, runningHashOf sent: UsageEvent, postClose: Bool = false) async throws {
        let queue = try DatabaseQueue(path: path)
        try SQLiteMeterStore.migrator.migrate(queue, upTo: "v7.time-by-segment")
        var hashing = MultisetHash()
        hashing.add(sent)
        let running = hashing.hex
        let (t, q, base) = (e.timestamp.microseconds, e.quantity, SQLiteMeterStore.seqBase(segment: 1))
        let h = t / 3_600_000_000
        try await queue.write { db in
            if postClose { try db.execute(sql: "INSERT INTO period (account_id, period, closed_at) VALUES ('acct_1', '2026-05', 1)") }
            try db.execute(
                sql: """
                    INSERT INTO meter (meter_id, unit, created_at) VALUES ('tokens', 'tokens', 0);
                    INSERT INTO segment (id, account_id, opened_at, event_count, sum, first_ts, last_ts, seq_base, running_hash)
                        VALUES (1, 'acct_1', 0, 1, \(q), \(t), \(t), \(base), '\(running)');
                    INSERT INTO event (seq, account_id, event_id, meter_id, model_id, kind, correction_ref, quantity, unit, ts, dimensions,
                                       segment_id, post_close, ingested_at)
                        VALUES (\(base), 'acct_1', ?, 'tokens', ?, ?, ?, \(q), 'tokens', \(t), '{}', 1, \(postClose ? 1 : 0), 2);
                    INSERT INTO rollup_key (id, account_id, meter_id, model_id, kind, unit, dimensions)
                        VALUES (1, 'acct_1', 'tokens', ?, ?, 'tokens', '{}');
                    INSERT INTO rollup_hour (key_id, hour, sum, count, min, max) VALUES (1, \(h), \(q), 1, \(q), \(q));
                    INSERT INTO rollup_day (key_id, day, sum, count, min, max) VALUES (1, \(h / 24), \(q), 1, \(q), \(q));
                    """, arguments: [e.eventID, e.modelID, e.kind.rawValue, e.correctionRef, e.modelID, e.kind.rawValue])
        }
        try queue.close()
    }

    /// Runs recorded before `v10.reconciliation-summary` are listed without a summary (the list
    /// reads their reports), runs recorded after with theirs; the newest are found through
    /// indexes alone, never through the runs' rows past their id and time (a summary kept in the
    /// report's row was reached through its overflow pages: 0.48 s to list one run beside
    /// 1,500 reports of 1 MB, review 58).
    @Test func runsFromBeforeSummariesAreListedAndNoListReadsAReport() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("old.db")
        let queue = try DatabaseQueue(path: path)
        try SQLiteMeterStore.migrator.migrate(queue, upTo: "v9.reconciliation-account")
        try await queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO reconciliation (id, vendor, created_at, run_by, report)
                    VALUES ('rec_old', 'openai', 1, 'cli', '{"id":"rec_old","vendor":"openai","account_id":"acct_1"}')
                    """)
        }
        try queue.close()
        let store = try SQLiteMeterStore(location: .file(path))
        try await store.saveReconciliation(
            id: "rec_new", vendor: "openai", createdAt: Timestamp(microseconds: 2), runBy: "cli",
            reportJSON: #"{"id":"rec_new","vendor":"openai","account_id":"acct_1"}"#, summaryJSON: #"{"account_id":"acct_1","id":"rec_new"}"#)
        for runs in [
            try await store.recentReconciliations(limit: 5, before: nil), try await store.recentReconciliations(limit: 5, ofAccounts: ["acct_1"], before: nil),
        ] {
            #expect(runs.map(\.id) == ["rec_new", "rec_old"] && runs.map(\.summaryJSON) == [#"{"account_id":"acct_1","id":"rec_new"}"#, nil])
        }
        // An older usagebox still serving the file replaces a report and not its summary: the
        // run is then read from its report, not listed as it was.
        try await store.writer.write { db in
            try db.execute(
                sql: #"UPDATE reconciliation SET report = '{"id":"rec_new","vendor":"openai","account_id":"acct_1","applied":true}' WHERE id = 'rec_new'"#)
        }
        #expect(try await store.recentReconciliations(limit: 5, before: nil).map(\.summaryJSON) == [nil, nil])
        let plans: [String] = try await store.writer.read { db in
            let all: StatementArguments = [Int64.max, "", 5], two: StatementArguments = ["a", "b", Int64.max, "", 5]
            return try [(SQLiteMeterStore.recentRunsSQL(where: "1"), all), (SQLiteMeterStore.recentRunsSQL(where: SQLiteMeterStore.ofAccounts(2)), two)].map {
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + $0.0, arguments: $0.1).map { row -> String in row["detail"] }.joined(separator: "; ")
            }
        }
        #expect(
            plans[0].contains("SEARCH r USING COVERING INDEX reconciliation_recent ((created_at,id)<(?,?))") && !plans[0].contains("TEMP B-TREE"), "\(plans[0])"
        )
        #expect(plans[1].contains("USING INDEX reconciliation_account"), "\(plans[1])")
        for plan in plans { #expect(plan.contains("SEARCH s USING PRIMARY KEY (id=?)"), "\(plan)") }
    }

    /// A store a newer usagebox migrated is refused, named, rather than written under rules this
    /// binary does not know.
    @Test func aStoreANewerUsageboxMigratedIsRefused() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("newer.db")
        _ = try SQLiteMeterStore(location: .file(path))
        let queue = try DatabaseQueue(path: path)
        try await queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99.from-the-future')") }
        try queue.close()
        #expect {
            _ = try SQLiteMeterStore(location: .file(path))
        } throws: { e in
            (e as? UsageBoxError)?.message.contains("upgraded by a newer usagebox") == true
        }
    }

    /// What an acknowledged event's durability rests on: WAL, a synced commit, bounded checkpoints.
    @Test func theWriterConnectionIsDurable() async throws {
        let dir = try TemporaryDirectory()
        let store = try SQLiteMeterStore(location: .file(dir.path("settings.db")))
        let (mode, sync, checkpoint) = try await store.writer.write { db in
            (
                try String.fetchOne(db, sql: "PRAGMA journal_mode"), try Int.fetchOne(db, sql: "PRAGMA synchronous"),
                try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint")
            )
        }
        #expect(mode == "wal")
        #expect(sync == 2)
        #expect(checkpoint == SQLiteMeterStore.walCheckpointPages && checkpoint == 10_000)
    }

    private func readDirectly<T: Sendable>(_ path: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try await queue.read(body)
    }
}
