import ExactJSON
import Foundation
import GRDB
import MeterStoreSQLite
import Metering
import Testing
import UsageBoxTesting

/// The SQLite sandbox of the read-only SQL endpoint, in SQLite's own dialect: scoping that holds in
/// subqueries and unions, every escape route refused, the time limit.
@Suite struct SQLSandboxTests {
    typealias F = Fixture

    /// The view's timestamp is as wide as its fraction, and `.` sorts before `Z`: by bytes, an
    /// event half a second into June was before `2026-06-01T00:00:00Z` and counted in May (101
    /// where `usage` said 11). It compares as an instant now, against literals in any offset;
    /// a literal that is not one (a date alone) compares by bytes, as it did.
    @Test func timestampsCompareAndSortAsInstants() async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        _ = try await store.ingest([
            F.event("a", quantity: 1, at: "2026-05-01T00:00:00Z"), F.event("b", quantity: 10, at: "2026-05-01T00:00:00.5Z"),
            F.event("c", quantity: 100, at: "2026-06-01T00:00:00.5Z"), F.event("d", quantity: 1000, at: "2026-05-31T23:59:59.999999Z"),
        ])
        func sum(_ where: String) async throws -> [[JSONValue]] {
            try await store.sql("SELECT SUM(quantity) FROM usage_events WHERE \(`where`)", scope: .all, timeLimitSeconds: 10, rowLimit: 10).rows
        }
        #expect(try await sum("timestamp >= '2026-05-01T00:00:00Z' AND timestamp < '2026-06-01T00:00:00Z'") == [[.int(1011)]])
        #expect(try await sum("timestamp >= '2026-05-01T02:00:00+02:00' AND timestamp < '2026-05-31T20:00:00-04:00'") == [[.int(1011)]])
        #expect(try await sum("timestamp = '2026-05-01T00:00:00.500Z'") == [[.int(10)]])
        #expect(try await sum("timestamp >= '2026-05-01' AND timestamp < '2026-06-02'") == [[.int(1111)]], "a date alone compares by bytes")
        let ordered = try await store.sql("SELECT event_id FROM usage_events ORDER BY timestamp", scope: .all, timeLimitSeconds: 10, rowLimit: 10)
        #expect(ordered.rows == [[.string("a")], [.string("b")], [.string("d")], [.string("c")]])
        let text = try await store.sql("SELECT timestamp FROM usage_events WHERE event_id = 'b'", scope: .all, timeLimitSeconds: 10, rowLimit: 10)
        #expect(text.rows == [[.string("2026-05-01T00:00:00.500000Z")]], "the text is unchanged")
        // Instants and other text in one sort: by keys, a total order (by time between instants
        // and by bytes otherwise, …:00.5Z < …:00Z < …:00X < …:00.5Z went round in a circle).
        let mixed = try await store.sql(
            "SELECT timestamp FROM usage_events WHERE event_id IN ('a', 'b') UNION ALL SELECT '2026-05-01T00:00:00X' ORDER BY 1",
            scope: .all, timeLimitSeconds: 10, rowLimit: 10)
        #expect(
            mixed.rows == [[.string("2026-05-01T00:00:00Z")], [.string("2026-05-01T00:00:00.500000Z")], [.string("2026-05-01T00:00:00X")]], "\(mixed.rows)")
    }

    @Test func scopedQueriesSeeOnlyTheirAccountsAndEveryEscapeIsRefused() async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        _ = try await store.ingest([F.event("1", account: "mine", quantity: 7), F.event("2", account: "theirs", quantity: 1000)])
        let r = try await store.sql(
            "SELECT account_id, SUM(quantity) FROM usage_events GROUP BY account_id", scope: .accounts(["mine"]), timeLimitSeconds: 10, rowLimit: 10_000)
        #expect(r.columns == ["account_id", "SUM(quantity)"])
        #expect(r.rows == [[.string("mine"), .int(7)]])
        let sub = try await store.sql(
            "SELECT (SELECT COUNT(*) FROM usage_events WHERE account_id = 'theirs')", scope: .accounts(["mine"]), timeLimitSeconds: 10, rowLimit: 10_000)
        #expect(sub.rows == [[.int(0)]], "other accounts are invisible in subqueries")
        let union = try await store.sql(
            "SELECT quantity FROM usage_events UNION ALL SELECT quantity FROM usage_events WHERE account_id='theirs'",
            scope: .accounts(["mine"]), timeLimitSeconds: 10, rowLimit: 10_000)
        #expect(union.rows == [[.int(7)]], "UNION cannot reach other accounts")
        for attack in [
            "DELETE FROM usage_events", "SELECT * FROM event", "PRAGMA table_info(event)", "ATTACH 'x.db' AS x",
            "SELECT load_extension('x')", "SELECT * FROM sqlite_temp_master", "SELECT 1; SELECT 2",
            // Counting the schema tables told how many tables the store has (tester R).
            "SELECT count(*) FROM sqlite_temp_master", "SELECT count(*) FROM sqlite_master", "SELECT count(*) FROM temp.sqlite_schema",
            "SELECT SUM(q) FROM (SELECT 9223372036854775807 AS q UNION ALL SELECT quantity FROM usage_events)",
            // Read-only, and answered the view's program with the key's account in it.
            "EXPLAIN SELECT * FROM usage_events", "EXPLAIN QUERY PLAN SELECT * FROM usage_events",
        ] {
            await #expect(throws: UsageBoxError.self, "\(attack)") {
                _ = try await store.sql(attack, scope: .accounts(["mine"]), timeLimitSeconds: 10, rowLimit: 10)
            }
        }
        // Whitespace alone answered "not an error"; a comment after the statement's `;` was
        // refused as a second statement. Empty statements around the one are skipped.
        for (sql, holds) in [
            ("   \n ", "no statement"), ("-- nothing", "no statement"), (";;", "no statement"),
            ("SELECT 1; DELETE FROM usage_events", "only one"), ("SELECT 1; garbage", "only one"),
            // SQLite stops at a NUL: the filter or statement after it was dropped unseen (a 200).
            ("SELECT SUM(quantity) FROM usage_events\u{0} WHERE account_id = 'x'", "NUL"), ("SELECT 1;\u{0} SELECT 2", "NUL"),
            ("SELECT 1;" + String(repeating: " ", count: 200_000), "longer than 100000 bytes"),
        ] {
            do {
                _ = try await store.sql(sql, scope: .accounts(["mine"]), timeLimitSeconds: 10, rowLimit: 10)
                Issue.record("\(sql) answered")
            } catch let e as UsageBoxError {
                #expect(e.field == "sql" && e.message.contains(holds), "\(sql.debugDescription): \(e.message)")
            }
        }
        for sql in ["SELECT 1; -- done", "-- first\nSELECT 1;\n/* after */ ;", "; SELECT 1"] {
            let r = try await store.sql(sql, scope: .accounts(["mine"]), timeLimitSeconds: 10, rowLimit: 10)
            #expect(r.rows == [[.int(1)]], "\(sql.debugDescription)")
        }
        do {
            _ = try await store.sql(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c", scope: .accounts(["mine"]),
                timeLimitSeconds: 0.5, rowLimit: 10)
            Issue.record("a runaway query finished")
        } catch let e as UsageBoxError {
            #expect(e.code == .timeout && e.field == "sql")
        }
    }

    /// instr and replace are the sandbox's own (linear searches): they answer as SQLite's do, and
    /// a needle of half a megabyte in a megabyte no longer holds one call for seconds where the
    /// time limit cannot interrupt it (SQLite's own: 3.3 s a call, eight answered 28 s past a 10 s limit).
    @Test func instrAndReplaceAnswerAsSQLitesOwnInLinearTime() async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        let builtIn = try DatabaseQueue()
        for expression in [
            "instr('héllo wörld', 'wö')", "instr('abc', '')", "instr('', 'a')", "instr(NULL, 'a')", "instr('a', NULL)", "instr(x'616263', x'63')",
            "instr(x'c3a9c3a9', x'a9')", "instr('éé', x'a9')", "instr(12345, 34)", "instr('aaab', 'aab')", "instr('abcabd', 'abd')",
            "replace('aaaa', 'aa', 'b')", "replace('abc', '', 'x')", "replace(x'616263', '', 'x')", "replace('abc', NULL, 'x')",
            "replace(NULL, 'a', 'x')", "replace('abc', 'b', NULL)", "replace(123, 2, 'x')", "replace('héllo', 'l', 'L')", "replace('abc', 'b', 5)",
            "replace('aaa', 'a', '')", "replace('abab', 'aba', 'X')", "replace(x'610062', x'00', 'z')",
        ] {
            let sql = "SELECT quote(\(expression)), typeof(\(expression))"
            let ours = try await store.sql(sql, scope: .all, timeLimitSeconds: 10, rowLimit: 10).rows.first ?? []
            let theirs = try await builtIn.read { db in try Row.fetchOne(db, sql: sql).map { [$0[0] as String?, $0[1] as String?] } } ?? []
            #expect(ours.map(\.stringValue) == theirs, "\(expression)")
        }
        let hostile = """
            WITH h(x) AS (SELECT replace(hex(zeroblob(500000)), '0', 'a')), n(y) AS (SELECT replace(hex(zeroblob(250000)), '0', 'a') || 'b')
            SELECT instr(x, y) + instr(x, y) + instr(x, y) + instr(x, y), length(replace(x, y, '')) FROM h, n
            """
        // Not timed here (a loaded machine is no measure): by hand, SQLite's own search answered
        // this after 17 s with a 5 s limit, these in 0.3 s; the answers are what it must give.
        let r = try await store.sql(hostile, scope: .all, timeLimitSeconds: 60, rowLimit: 10)
        #expect(r.rows == [[.int(0), .int(1_000_000)]])
    }
}
