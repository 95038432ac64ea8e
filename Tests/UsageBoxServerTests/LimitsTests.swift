import ExactJSON
import Foundation
import Hummingbird
import HummingbirdTesting
import MeterStoreSQLite
import Metering
import ReconCore
import Testing
import UsageBoxApp
import UsageBoxServer
import UsageBoxTesting
import VendorAnthropic

/// No key can make one request cost the server without bound: values, answers, buckets, groups,
/// concurrent expensive work and failed authentications are all limited, each with a clear answer.
@Suite struct LimitsTests {
    let store: SQLiteMeterStore
    let admin = "env-admin-secret"

    init() throws {
        store = try SQLiteMeterStore(location: .newMemory())
    }

    func app(
        limits: RequestLimits = .unhurried, _ configure: (inout HTTPAPI) -> Void = { _ in }
    ) throws -> Application<RouterResponder<UsageBoxRequestContext>> {
        var api = HTTPAPI(store: store, keys: store, environmentAdminSecret: admin, limits: limits)
        api.reconciliation = try ReconciliationService()
        api.reconciliationLog = store
        configure(&api)
        return Application(router: api.buildRouter())
    }

    struct Answer {
        var status: Int
        var json: JSONValue
        var retryAfter: String?
    }

    func call(_ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, key: String?, body: String? = nil) async throws -> Answer {
        var headers: HTTPFields = [:]
        if let key { headers[.authorization] = "Bearer \(key)" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { r in
            expectDocumented(method.rawValue, uri, Int(r.status.code))
            return Answer(status: Int(r.status.code), json: (try? JSONParser.parse(String(buffer: r.body))) ?? .null, retryAfter: r.headers[.retryAfter])
        }
    }

    func sql(_ query: String) -> String { JSONWriter.write(.object([("sql", .string(query))])) }

    @Test func oneValueCannotOutgrowItsLimitNorAnAnswerItsSize() async throws {
        _ = try await KataDemo(store: store, write: { _ in }).load()
        try await app().test(.router) { client in
            // printf and format loop over their width inside one call: refused, like any function that reaches outside.
            let printf = try await call(client, .post, "/v1/query/sql", key: admin, body: sql("SELECT printf('%.*c', 2000000000, 'x')"))
            #expect(printf.status == 400 && printf.json["error"]?["message"]?.stringValue?.contains("not allowed") == true)
            // trim with a character list: its two arguments' lengths multiplied, in one call (18 s
            // at 60,000 characters each, hours at 1 MiB); json_group_array grew to 1 GB before its
            // value was checked. trim(X) stays.
            let long = "hex(zeroblob(30000))"
            for (quadratic, words) in [
                ("SELECT length(trim(\(long), \(long) || 'x'))", "one argument"), ("SELECT rtrim('ab', 'b')", "one argument"),
                ("SELECT json_group_array(event_id) FROM usage_events", "not allowed"),
                // A path of 100,000 steps recursed until the stack ran out and the server died; a
                // patch of two 80,000-key objects ran 18–29 s in one call. A long GLOB class was
                // scanned at every place of a 1 MB value (2.5 s a call).
                ("SELECT length(json_set('{}', '$' || replace(hex(zeroblob(100000)), '00', '.a'), 1))", "not allowed"),
                ("SELECT json_patch('{}', '{}')", "not allowed"), ("SELECT json_insert('{}', '$.a', 1)", "not allowed"),
                ("SELECT 'a' GLOB '*[" + String(repeating: "bc", count: 60) + "]'", "too complex"),
            ] {
                let r = try await call(client, .post, "/v1/query/sql", key: admin, body: sql(quadratic))
                #expect(r.status == 400 && r.json["error"]?["message"]?.stringValue?.contains(words) == true, "\(quadratic): \(r.json)")
            }
            let read = try await call(client, .post, "/v1/query/sql", key: admin, body: sql(#"SELECT json_extract('{"a":1}', '$.a') AS a"#))
            #expect(read.status == 200 && read.json["rows"] == .array([.array([.int(1)])]), "reading JSON stays: \(read.json)")
            let trimmed = try await call(client, .post, "/v1/query/sql", key: admin, body: sql("SELECT trim('  a  ') AS t"))
            #expect(trimmed.status == 200 && trimmed.json["rows"] == .array([.array([.string("a")])]), "\(trimmed.json)")
            for bomb in [
                "SELECT zeroblob(2000000000)", "SELECT length(randomblob(1500000000))",
                "SELECT replace(hex(zeroblob(400000)), '0', 'yy')", "SELECT substr(hex(zeroblob(600000)), 1, 10)",
                "SELECT group_concat(event_id || hex(zeroblob(100))) FROM usage_events",
            ] {
                // Stopped by the value limit inside the call (the answer names 1 MiB), not by the
                // time limit after the value was built: how fast is the attack suite's to print.
                let r = try await call(client, .post, "/v1/query/sql", key: admin, body: sql(bomb))
                #expect(r.status == 400 && r.json["error"]?["message"]?.stringValue?.contains("1 MiB") == true, "\(bomb): \(r.json)")
            }
            let wide = try await call(
                client, .post, "/v1/query/sql", key: admin,
                body: sql("SELECT hex(zeroblob(2500)) FROM usage_events LIMIT 5000"))
            #expect(wide.status == 400 && wide.json["error"]?["message"]?.stringValue?.contains("8 MiB") == true, "\(wide.json)")
            // The 8 MiB counted values, not their JSON: 2 MB of control characters answered 12 MB
            // (44 MB seen with more columns), a megabyte of blob its base64.
            for escaped in [
                "SELECT replace(hex(zeroblob(500000)), '0', char(1)) AS a, replace(hex(zeroblob(500000)), '0', char(2)) AS b",
                "SELECT " + (0..<5).map { "replace(hex(zeroblob(500000)), '0', '\"') AS q\($0)" }.joined(separator: ", "),
                "SELECT " + (0..<7).map { "zeroblob(1000000) AS b\($0)" }.joined(separator: ", "),
                // Invalid UTF-8 is written as U+FFFD, three bytes for each one counted: 25 MB answered.
                "SELECT " + (0..<3).map { "replace(hex(zeroblob(520000)), '0', CAST(x'ff' AS TEXT)) AS f\($0)" }.joined(separator: ", "),
            ] {
                let r = try await call(client, .post, "/v1/query/sql", key: admin, body: sql(escaped))
                #expect(r.status == 400 && r.json["error"]?["message"]?.stringValue?.contains("8 MiB") == true, "\(escaped.prefix(60)): \(r.status)")
            }
            // One row's values are built before the answer is checked: 200 columns of a megabyte
            // held 200 MB; 64 columns are the most a query may have.
            let columns = { (n: Int) in "SELECT " + (0..<n).map { "hex(zeroblob(500000)) AS c\($0)" }.joined(separator: ", ") }
            let many = try await call(client, .post, "/v1/query/sql", key: admin, body: sql(columns(65)))
            #expect(many.status == 400 && many.json["error"]?["message"]?.stringValue?.contains("too many columns") == true, "\(many.json)")
            let star = try await call(client, .post, "/v1/query/sql", key: admin, body: sql("SELECT * FROM usage_events LIMIT 1"))
            #expect(star.status == 200, "\(star.json)")
        }
    }

    @Test func timeBucketsAndGroupsAreBounded() async throws {
        _ = try await KataDemo(store: store, write: { _ in }).load()
        try await app().test(.router) { client in
            let verify = try await call(client, .get, "/v1/accounts/acct_42/verify?from=0001-01-01T00:00:00Z&to=9999-01-01T00:00:00Z&group_by=day", key: admin)
            #expect(
                verify.status == 400 && verify.json["error"]?["field"] == .string("group_by")
                    && verify.json["error"]?["message"]?.stringValue?.contains("10000") == true, "\(verify.json)")
            let hours = try await call(client, .get, "/v1/accounts/acct_42/usage?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&group_by=hour", key: admin)
            #expect(hours.status == 400 && hours.json["error"]?["field"] == .string("group_by"))
            let fine = try await call(client, .get, "/v1/accounts/acct_42/verify?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z&group_by=day", key: admin)
            #expect(fine.status == 200)
            // Calendar months: 9,600 (1200-01 to 2000-01) were counted as 28-day months (10,436) and refused.
            let months = try await call(client, .get, "/v1/accounts/acct_42/usage?from=1200-01-01T00:00:00Z&to=2000-01-01T00:00:00Z&group_by=month", key: admin)
            #expect(months.status == 200, "\(months.json)")
            // Exactly 10,000 days, aligned, is within the limit (it counted 10,001).
            let days = try await call(client, .get, "/v1/accounts/acct_42/usage?from=2000-01-01T00:00:00Z&to=2027-05-19T00:00:00Z&group_by=day", key: admin)
            #expect(days.status == 200, "\(days.json)")
        }
    }

    @Test func expensiveRequestsBeyondTheLimitAre429WithRetryAfter() async throws {
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let reader = try await store.createKey(account: "acct_42", role: .reader).secret
        let app = try app { $0.sqlTimeLimitSeconds = 2 }
        try await app.test(.router) { client in
            let slow = sql("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c")
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for _ in 0..<4 { group.addTask { try await call(client, .post, "/v1/query/sql", key: reader, body: slow) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let limited = answers.filter { $0.status == 429 }
            #expect(limited.count >= 2, "\(answers.map(\.status))")
            #expect(limited.allSatisfy { $0.retryAfter == "1" && $0.json["error"]?["code"] == .string("rate_limited") })
            #expect(try await call(client, .get, "/healthz", key: nil).status == 200)
        }
    }

    /// Usage reads had no limit: one key's slow reads (a dimension with a value per event takes
    /// 15–20 s) queued every other key's behind them. An account has 4 at once, whatever keys it
    /// reads with (two reader keys of one account held every place: tester R2), the server 8;
    /// beyond, 429 at once, while another account's read goes on.
    @Test func usageReadsBeyondTheirLimitAre429() async throws {
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let (reader, second, other) = (
            try await store.createKey(account: "acct_42", role: .reader).secret, try await store.createKey(account: "acct_42", role: .reader).secret,
            try await store.createKey(account: "acct_7", role: .reader).secret
        )
        let app = try app { $0.store = SlowUsageStore(inner: store) }
        try await app.test(.router) { client in
            func path(_ account: String) -> String { "/v1/accounts/\(account)/usage?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z&group_by=model_id" }
            let answers = try await withThrowingTaskGroup(of: (String, Answer).self) { group in
                for _ in 0..<7 { group.addTask { ("one", try await call(client, .get, path("acct_42"), key: reader)) } }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(100))
                    return ("second", try await call(client, .get, path("acct_42"), key: second))
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(100))
                    return ("other", try await call(client, .get, path("acct_7"), key: other))
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let one = answers.filter { $0.0 == "one" }.map(\.1)
            #expect(one.filter { $0.status == 200 }.count == 4 && one.filter { $0.status == 429 }.count == 3, "\(one.map(\.status))")
            #expect(one.filter { $0.status == 429 }.allSatisfy { $0.json["error"]?["message"]?.stringValue?.contains("usage reads") == true })
            let refused = answers.filter { $0.0 == "second" }.map(\.1)
            #expect(
                refused.map(\.status) == [429] && refused[0].json["error"]?["message"]?.stringValue?.contains("the keys of acct_42 already run") == true,
                "another key of the same account shares its places: \(refused.map(\.json))")
            #expect(answers.filter { $0.0 == "other" }.map(\.1.status) == [200], "another account's read goes on")
        }
    }

    /// JSON reads, verify and explain had no time limit: 8–26 s each on 300,000 events, four of
    /// them held every expensive place for a minute (tester R2). Each usage read and expensive
    /// request's store reads now stop at `--read-time-limit` (here a microsecond); SQL keeps its
    /// own limit and writes have none.
    @Test func readsStopAtTheServersTimeLimit() async throws {
        _ = try await KataDemo(store: store, write: { _ in }).load()
        var limits = RequestLimits()
        limits.readSeconds = 0.000_001
        let may = "from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z"
        try await app(limits: limits).test(.router) { client in
            for (method, uri, body) in [
                (HTTPRequest.Method.get, "/v1/accounts/acct_42/usage?\(may)&group_by=model_id", nil),
                (.get, "/v1/usage?\(may)", nil),
                (.post, "/v1/query/json", #"{"from":"2026-05-01T00:00:00Z","to":"2026-06-01T00:00:00Z","group_by":["model_id"]}"#),
                (.get, "/v1/accounts/acct_42/verify?\(may)", nil), (.get, "/v1/accounts/acct_42/explain?\(may)", nil),
            ] {
                let r = try await call(client, method, uri, key: admin, body: body)
                #expect(
                    r.status == 400 && r.json["error"]?["code"] == .string("timeout")
                        && r.json["error"]?["message"]?.stringValue?.contains("--read-time-limit") == true, "\(uri): \(r.json)")
            }
            let sql = try await call(client, .post, "/v1/query/sql", key: admin, body: sql("SELECT count(*) FROM usage_events"))
            #expect(sql.status == 200, "SQL has its own limit: \(sql.json)")
        }
        // The same reads answer under the default limit.
        try await app().test(.router) { client in
            let verify = try await call(client, .get, "/v1/accounts/acct_42/verify?\(may)", key: admin)
            #expect(verify.status == 200)
        }
    }

    /// A key revoked while its reconciliation was computed still recorded the run (tester S): the
    /// key is checked again before the run is kept.
    @Test func aKeyRevokedDuringItsRunRecordsNothing() async throws {
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let (writer, secret) = try await store.createKey(account: "acct_42", role: .writer)
        struct RevokingFirst: ReconciliationBackend {
            let inner: ReconciliationService
            let store: SQLiteMeterStore
            let keyID: String
            var vendors: VendorList { inner.vendors }
            func run(
                _ options: ReconciliationOptions, store: any MeterStore, log: (any ReconciliationLog)?, record: Bool, apply: Bool, confirmLarge: Bool
            ) async throws -> (report: ReconciliationReport, outcome: ReconciliationRunner.ApplyOutcome) {
                _ = try await self.store.revokeKey(keyID)
                return try await inner.run(options, store: store, log: log, record: record, apply: apply, confirmLarge: confirmLarge)
            }
            func apply(id: String, confirmLarge: Bool, store: any MeterStore, log: any ReconciliationLog) async throws -> ApplyAnswer {
                try await inner.apply(id: id, confirmLarge: confirmLarge, store: store, log: log)
            }
            func revert(id: String, store: any MeterStore, log: any ReconciliationLog) async throws -> IngestResponse {
                try await inner.revert(id: id, store: store, log: log)
            }
        }
        let service = try ReconciliationService()
        // A reader's dry run, revoked while it ran, still answered the whole report (tester S2).
        let (reader, readerSecret) = try await store.createKey(account: "acct_42", role: .reader)
        for (key, presented, dryRun) in [(writer, secret, false), (reader, readerSecret, true)] {
            try await app { $0.reconciliation = RevokingFirst(inner: service, store: store, keyID: key.keyID) }.test(.router) { client in
                let invoice = String(decoding: AnthropicPlugin.demoCostReport.bytes, as: UTF8.self)
                let r = try await call(
                    client, .post,
                    "/v1/reconciliations?vendor=anthropic&from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z&account=acct_42\(dryRun ? "&dry_run=true" : "")",
                    key: presented, body: invoice)
                #expect(r.status == 401 && r.json["findings"] == nil, "\(r.json)")
                #expect(try await store.recentReconciliations(limit: 10, before: nil).isEmpty, "nothing recorded")
            }
        }
    }

    @Test func failedAuthenticationsFromOneAddressAreLimited() async throws {
        let writer = try await store.createKey(account: "acct_42", role: .writer).secret
        // Over an hour here, not the default minute: the whole test suite running at once on a
        // loaded machine made these calls take longer than a minute (86–110 s seen), and the first
        // failures slid out of the window before the last was counted.
        var limits = RequestLimits.unhurried
        limits.failedAuthWindow = .seconds(3_600)
        let app = try app { $0 = HTTPAPI(store: store, keys: store, environmentAdminSecret: admin, limits: limits) }
        try await app.test(.router) { client in
            for i in 0..<100 {
                let r = try await call(client, .get, "/v1/meters", key: "guess-\(i)")
                #expect(r.status == 401)
            }
            let blocked = try await call(client, .get, "/v1/meters", key: "guess-101")
            #expect(blocked.status == 429 && Int(blocked.retryAfter ?? "") ?? 0 > 0, "the 101st guess in the window is refused")
            #expect(try await call(client, .get, "/v1/meters", key: writer).status == 429, "the address is limited, whatever key it presents")
        }
    }

    @Test func invoicesHaveASizeLimit() async throws {
        let writer = try await store.createKey(account: "acct_42", role: .writer).secret
        var limits = RequestLimits.unhurried
        limits.maxInvoiceBytes = 1 << 20
        let app = try app {
            $0 = HTTPAPI(store: store, keys: store, environmentAdminSecret: admin, limits: limits); $0.reconciliation = try? ReconciliationService()
        }
        try await app.test(.router) { client in
            let big = String(repeating: " ", count: (1 << 20) + 10) + "{}"
            let r = try await call(client, .post, "/v1/reconciliations?vendor=anthropic&from=2026-05-01&to=2026-06-01", key: writer, body: big)
            #expect(r.status == 413 && r.json["error"]?["message"]?.stringValue?.contains("--max-invoice-mb") == true)
            // The JSON form (the CLI's --server) carries the file in base64, a third larger: a file
            // within the limit is read (it was refused at 3/4 of the limit, naming a size it was
            // not); one beyond it is refused by its own size.
            func json(_ size: Int) -> String {
                let file = Data(String(repeating: " ", count: size).utf8).base64EncodedString()
                return
                    #"{"vendor": "anthropic", "from": "2026-05-01", "to": "2026-06-01", "dry_run": true, "invoices": [{"name": "x.json", "content_base64": ""#
                    + file + #""}]}"#
            }
            let within = try await call(client, .post, "/v1/reconciliations", key: writer, body: json(1_000_000))
            #expect(within.status != 413, "\(within.json)")
            let beyond = try await call(client, .post, "/v1/reconciliations", key: writer, body: json((1 << 20) + 10))
            #expect(
                beyond.status == 413 && beyond.json["error"]?["message"]?.stringValue?.contains("the invoices come to 1048586 bytes") == true, "\(beyond.json)")
        }
    }

    @Test func secretsCompareWholly() {
        #expect(constantTimeEquals("abc", "abc") && !constantTimeEquals("abc", "abd") && !constantTimeEquals("abc", "abcd") && !constantTimeEquals("", "a"))
    }
}

/// Answers usage reads after a second, as a read of a high-cardinality dimension does.
struct SlowUsageStore: ForwardingStore {
    let inner: any MeterStore
    func usage(_ query: UsageQuery) async throws -> UsageResult {
        try await Task.sleep(for: .seconds(1))
        return try await inner.usage(query)
    }
}
