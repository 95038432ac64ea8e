import ExactJSON
import Foundation
import Hummingbird
import HummingbirdTesting
import MeterStoreSQLite
import Metering
import Testing
import UsageBoxApp
import UsageBoxTesting
import VendorAnthropic

@testable import UsageBoxServer

/// Every route, status and error, in process.
/// A store that cannot be reached (a ClickHouse server down) is 503 with Retry-After: nothing
/// was answered, try again; never the 500 of a fault.
@Suite struct UnavailableStoreTests {
    @Test func anUnreachableStoreIs503WithRetryAfter() {
        let response = JSONResponse.error(.unavailable("cannot reach ClickHouse at 127.0.0.1:1"))
        #expect(response.status == .serviceUnavailable && response.headers[.retryAfter] == "1")
        #expect(UsageBoxError.Code(rawValue: "unavailable") == .unavailable)
    }
}

@Suite struct RouterTests {
    let store: SQLiteMeterStore
    let app: Application<RouterResponder<UsageBoxRequestContext>>
    var admin = "env-admin-secret"

    init() throws {
        store = try SQLiteMeterStore(location: .newMemory())
        var api = HTTPAPI(store: store, keys: store, environmentAdminSecret: "env-admin-secret", limits: .unhurried)
        api.reconciliation = try ReconciliationService()
        api.reconciliationLog = store
        app = Application(router: api.buildRouter())
    }

    func key(_ account: String?, _ role: KeyRole) async throws -> String {
        try await store.createKey(account: account, role: role).secret
    }

    struct Answer {
        var status: Int
        var json: JSONValue
        var text: String
    }

    func call(_ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, key: String?, body: String? = nil) async throws -> Answer {
        var headers: HTTPFields = [:]
        if let key { headers[.authorization] = "Bearer \(key)" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { r in
            let text = String(buffer: r.body)
            expectDocumented(method.rawValue, uri, Int(r.status.code))
            return Answer(status: Int(r.status.code), json: (try? JSONParser.parse(text)) ?? .null, text: text)
        }
    }

    static let may = "from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z"

    static func event(
        _ id: String, account: String = "acct_42", quantity: Int = 10, model: String = "claude-sonnet-4-5",
        type: String = "input", at: String = "2026-05-10T10:00:00Z"
    ) -> String {
        #"{"event_id":"\#(id)","account_id":"\#(account)","meter_id":"claude_tokens","model_id":"\#(model)","quantity":\#(quantity),"unit":"tokens","timestamp":"\#(at)","dimensions":{"token_type":"\#(type)"}}"#
    }

    static func batch(_ events: [String]) -> String { #"{"events":[\#(events.joined(separator: ","))]}"# }

    @Test func healthAndOpenAPINeedNoKey() async throws {
        try await app.test(.router) { client in
            let health = try await call(client, .get, "/healthz", key: nil)
            #expect(health.status == 200 && health.json["status"] == .string("ok"))
            let spec = try await call(client, .get, "/openapi.yaml", key: nil)
            #expect(spec.status == 200 && spec.text.hasPrefix("openapi: 3"))
            // HEAD, as uptime checks probe: the GET's status and length, no body (was a 405).
            for (path, get) in [("/healthz", health), ("/openapi.yaml", spec)] {
                let head = try await client.execute(uri: path, method: .head)
                #expect(head.status == .ok && head.body.readableBytes == 0, "HEAD \(path)")
                #expect(head.headers[.contentLength] == String(get.text.utf8.count), "HEAD \(path) says the GET's length")
            }
            for path in [
                "/v1/usage/batch", "/v1/accounts/{account}/usage", "/v1/usage", "/v1/accounts/{account}/verify",
                "/v1/accounts/{account}/explain", "/v1/accounts/{account}/periods/close", "/v1/accounts/{account}/periods",
                "/v1/query/sql", "/v1/query/json", "/v1/meters", "/v1/meters/{meter_id}", "/v1/vendors", "/v1/reconciliations",
                "/v1/reconciliations/{id}", "/v1/reconciliations/{id}/apply", "/v1/reconciliations/{id}/revert",
            ] {
                #expect(spec.text.contains("  \(path):"), "openapi.yaml documents \(path)")
            }
        }
    }

    /// The router is built from the document: every operation answers at its method and path,
    /// behind a key exactly when the document asks for one, and every other method on its path
    /// is a 405 listing what the document allows.
    @Test func everyDocumentedOperationIsMountedAndNothingElse() async throws {
        #expect(APIOperation.all.count == 26)
        try await app.test(.router) { client in
            for op in APIOperation.all {
                let uri = op.path.replacingOccurrences(of: "{account}", with: "acct_42").replacingOccurrences(of: "{meter_id}", with: "m")
                    .replacingOccurrences(of: "{id}", with: "rec_x")
                let method = HTTPRequest.Method(op.method)!
                let answer = try await call(client, method, uri, key: nil)
                switch op.auth {
                case .none: #expect([200, 401].contains(answer.status), "\(op.id) needs no key: \(answer.status)")
                case .bearer: #expect(answer.status == 401, "\(op.id) (\(op.method) \(uri)) needs a key: \(answer.status)")
                case .session:
                    // A page without a session goes to the sign-in form; a form post is refused.
                    #expect(answer.status == (op.method == "GET" ? 303 : 401), "\(op.id) needs a session: \(answer.status)")
                }
                let allowed = APIOperation.all.filter { $0.path == op.path }.map(\.method)
                for other in ["GET", "POST", "PUT", "DELETE"] where !allowed.contains(other) {
                    let wrong = try await call(client, HTTPRequest.Method(other)!, uri, key: admin)
                    #expect(wrong.status == 405, "\(other) \(uri): \(wrong.status)")
                }
            }
        }
    }

    /// A parameter the document does not name is refused by every API operation before it runs:
    /// `GET /v1/meters?acount=x` answered every meter as if the misspelt filter were obeyed.
    @Test func everyOperationRefusesAParameterItDoesNotName() async throws {
        try await app.test(.router) { client in
            for op in APIOperation.all where op.auth == .bearer {
                let uri =
                    op.path.replacingOccurrences(of: "{account}", with: "acct_42").replacingOccurrences(of: "{meter_id}", with: "m")
                    .replacingOccurrences(of: "{id}", with: "rec_x") + "?acount=acct_7" + (op.dimensionFilters ? "&\(Self.may)" : "")
                let answer = try await call(client, HTTPRequest.Method(op.method)!, uri, key: admin)
                #expect(answer.status == 400 && answer.json["error"]?["field"] == .string("acount"), "\(op.id): \(answer.status) \(answer.text)")
            }
        }
    }

    /// A JSON request sent with the simple form's vendor, from and to in the query was read as the
    /// invoice file and refused as one no parser knows, naming nothing the caller did.
    @Test func aJSONRequestWithTheVendorInTheQueryIsNamedAsSuch() async throws {
        try await app.test(.router) { client in
            let body =
                #"{"vendor":"anthropic","from":"2026-05-01T00:00:00Z","to":"2026-06-01T00:00:00Z","invoices":[{"name":"a.csv","content_base64":"eA=="}]}"#
            let r = try await call(client, .post, "/v1/reconciliations?vendor=anthropic&\(Self.may)", key: admin, body: body)
            #expect(r.status == 400 && r.json["error"]?["field"] == .string("vendor"), "\(r.text)")
            #expect(r.json["error"]?["message"]?.stringValue?.contains("JSON reconciliation request") == true, "\(r.text)")
        }
    }

    @Test func aDocumentWithoutRolesOrIdsIsRefused() {
        let noRole = "paths:\n  /v1/x:\n    get:\n      operationId: x\n"
        #expect(throws: (any Error).self) { try APIOperation.parse(noRole) }
        let noID = "paths:\n  /v1/x:\n    get:\n      x-usagebox-role: reader\n"
        #expect(throws: (any Error).self) { try APIOperation.parse(noID) }
        let open = "paths:\n  /healthz:\n    get:\n      operationId: h\n      security: []\n"
        #expect((try? APIOperation.parse(open))?.first?.role == nil)
    }

    @Test func keysAreRequiredAndHonouredAtOnce() async throws {
        let reader = try await store.createKey(account: "acct_42", role: .reader)
        try await app.test(.router) { client in
            let uri = "/v1/accounts/acct_42/usage?\(Self.may)"
            let none = try await call(client, .get, uri, key: nil)
            #expect(none.status == 401 && none.json["error"]?["code"] == .string("unauthenticated"))
            #expect(try await call(client, .get, uri, key: "nope").status == 401)
            #expect(try await call(client, .get, uri, key: reader.secret).status == 200)
            _ = try await store.revokeKey(reader.0.keyID)
            let revoked = try await call(client, .get, uri, key: reader.secret)
            #expect(revoked.status == 401, "a revoked key stops working at once")
            #expect(try await call(client, .get, uri, key: admin).status == 200, "USAGEBOX_KEY is an admin key")
        }
    }

    @Test func rolesAndAccountsAreEnforcedOnEveryRoute() async throws {
        let reader = try await key("acct_42", .reader)
        let writer = try await key("acct_42", .writer)
        let otherWriter = try await key("acct_7", .writer)
        try await app.test(.router) { client in
            let body = Self.batch([Self.event("e1"), Self.event("e2", quantity: 5, type: "output")])
            let r = try await call(client, .post, "/v1/usage/batch", key: reader, body: body)
            #expect(r.status == 403, "a reader cannot ingest")
            #expect(try await call(client, .post, "/v1/usage/batch", key: writer, body: body).json["accepted"] == .int(2))
            let foreign = try await call(
                client, .post, "/v1/usage/batch", key: otherWriter, body: Self.batch([Self.event("x1", account: "acct_7"), Self.event("x2")]))
            #expect(foreign.status == 403, "a writer cannot ingest another account")
            #expect(foreign.json["error"]?["field"] == .string("events[1].account_id"), "which event, so a client can name its line: \(foreign.text)")
            _ = try await call(client, .post, "/v1/usage/batch", key: otherWriter, body: Self.batch([Self.event("o1", account: "acct_7", quantity: 1000)]))
            let leaked = try await store.usage(UsageQuery(scope: .accounts(["acct_7"]), range: Fixture.may))
            #expect(leaked.groups.first?.aggregate.sum == 1000, "nothing of the refused batch was stored")

            let routes: [(HTTPRequest.Method, String, String?)] = [
                (.get, "/v1/accounts/acct_7/usage?\(Self.may)", nil),
                (.get, "/v1/accounts/acct_7/verify?\(Self.may)", nil),
                (.get, "/v1/accounts/acct_7/explain?\(Self.may)", nil),
                (.get, "/v1/accounts/acct_7/periods", nil),
                (.post, "/v1/accounts/acct_7/periods/close", #"{"period":"2026-05"}"#),
                (.post, "/v1/query/json", #"{"account_id":"acct_7","from":"2026-05-01T00:00:00Z","to":"2026-06-01T00:00:00Z"}"#),
            ]
            for (method, uri, body) in routes {
                let answer = try await call(client, method, uri, key: reader, body: body)
                #expect(answer.status == 403, "\(uri)")
                #expect(answer.json["error"]?["code"] == .string("permission_denied"), "\(uri): never data")
            }
            // The cross-account routes narrow to the key's account.
            let all = try await call(client, .get, "/v1/usage?\(Self.may)&group_by=account_id", key: reader)
            #expect(all.json["groups"]?.arrayValue?.map { $0["account_id"] } == [.string("acct_42")])
            let sql = try await call(
                client, .post, "/v1/query/sql", key: reader, body: #"{"sql":"SELECT account_id, SUM(quantity) FROM usage_events GROUP BY account_id"}"#)
            #expect(sql.json["rows"] == .array([.array([.string("acct_42"), .int(15)])]))
            // `account_id` narrows the view (the CLI's --account over --server was dropped, and an
            // admin key answered for every account); an account the key may not see is a 403.
            let narrowed = try await call(
                client, .post, "/v1/query/sql", key: admin,
                body: #"{"sql":"SELECT account_id, SUM(quantity) FROM usage_events GROUP BY account_id","account_id":"acct_7","timeout_seconds":2}"#)
            #expect(narrowed.json["rows"] == .array([.array([.string("acct_7"), .int(1000)])]), "\(narrowed.text)")
            let other = try await call(client, .post, "/v1/query/sql", key: reader, body: #"{"sql":"SELECT 1 FROM usage_events","account_id":"acct_7"}"#)
            #expect(other.status == 403 && other.json["error"]?["field"] == .string("account_id"), "\(other.text)")
            let json = try await call(
                client, .post, "/v1/query/json", key: reader, body: #"{"from":"2026-05-01T00:00:00Z","to":"2026-06-01T00:00:00Z","group_by":["account_id"]}"#)
            #expect(json.json["groups"]?.arrayValue?.count == 1)
            let meters = try await call(client, .get, "/v1/meters", key: try await key("acct_nothing", .reader))
            #expect(meters.json["meters"] == .array([]), "meters of other accounts stay hidden")
            #expect(try await call(client, .put, "/v1/meters/claude_tokens", key: writer, body: #"{"unit":"tokens"}"#).status == 403)
            let put = try await call(client, .put, "/v1/meters/claude_tokens", key: admin, body: #"{"unit":"tokens","rollup_dimensions":["token_type"]}"#)
            #expect(put.status == 200 && put.json["rollup_dimensions"] == .array([.string("token_type")]))
            let periodsByWriter = try await call(client, .post, "/v1/accounts/acct_42/periods/close", key: writer, body: #"{"period":"2026-04"}"#)
            #expect(periodsByWriter.status == 200)
            #expect(try await call(client, .post, "/v1/accounts/acct_42/periods/close", key: reader, body: #"{"period":"2026-04"}"#).status == 403)
        }
    }

    @Test func kataShapesOverTheRouter() async throws {
        try await app.test(.router) { client in
            _ = try await call(
                client, .post, "/v1/usage/batch", key: admin,
                body: Self.batch([
                    Self.event("a", quantity: 100), Self.event("b", quantity: 50, type: "output"),
                    Self.event("c", quantity: 7, model: "claude-haiku-4-5"),
                ]))
            let byModel = try await call(client, .get, "/v1/accounts/acct_42/usage?\(Self.may)&group_by=model_id", key: admin)
            #expect(
                byModel.text.trimmingCharacters(in: .whitespacesAndNewlines)
                    == #"{"source":"rollup","groups":[{"model_id":"claude-haiku-4-5","sum":7,"count":1},{"model_id":"claude-sonnet-4-5","sum":150,"count":2}]}"#
            )
            let verify = try await call(client, .get, "/v1/accounts/acct_42/verify?\(Self.may)&group_by=day&mode=incremental", key: admin)
            #expect(verify.json["ok"] == .bool(true) && verify.json["mode"] == .string("incremental") && verify.json["days"]?.arrayValue?.count == 31)
            let correction =
                #"{"events":[{"event_id":"evt_fix","account_id":"acct_42","meter_id":"claude_tokens","model_id":"claude-sonnet-4-5","kind":"Correction","correction_ref":"recon_may_2026_vendor_anthropic","quantity":520000,"unit":"tokens","timestamp":"2026-05-31T23:59:59Z","dimensions":{"reason":"untracked_retry_loop","source":"vendor_reconciliation"}}]}"#
            let posted = try await call(client, .post, "/v1/usage/batch", key: admin, body: correction)
            #expect(posted.text.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"accepted":1,"duplicates":0,"conflicts":0,"rejected":0,"errors":[]}"#)
            let again = try await call(client, .post, "/v1/usage/batch", key: admin, body: correction)
            #expect(again.json["duplicates"] == .int(1))
            let explain = try await call(client, .get, "/v1/accounts/acct_42/explain?\(Self.may)", key: admin)
            #expect(explain.json["totals"]?["net"] == .int(520157))
            #expect(explain.json["corrections"]?.arrayValue?.first?["correction_ref"] == .string("recon_may_2026_vendor_anthropic"))
            let bySource = try await call(client, .get, "/v1/accounts/acct_42/usage?\(Self.may)&group_by=dim.source", key: admin)
            #expect(bySource.json["groups"]?.arrayValue?.map { $0["dim.source"] } == [.null, .string("vendor_reconciliation")])
            let closed = try await call(client, .post, "/v1/accounts/acct_42/periods/close", key: admin, body: #"{"period":"2026-05"}"#)
            let closedTwice = try await call(client, .post, "/v1/accounts/acct_42/periods/close", key: admin, body: #"{"period":"2026-05"}"#)
            #expect(closed.json["closed_at"] == closedTwice.json["closed_at"])
            let late = try await call(client, .post, "/v1/usage/batch", key: admin, body: Self.batch([Self.event("late")]))
            #expect(late.json["errors"]?.arrayValue?.first?["code"] == .string("period_closed"))
            let periods = try await call(client, .get, "/v1/accounts/acct_42/periods", key: admin)
            #expect(periods.json["periods"]?.arrayValue?.count == 1)
        }
    }

    /// An admin's run of acct_42 that names another account metering its models, read by
    /// acct_42's reader: the hold is there, the other account's name and total are not.
    @Test func aStoredRunTellsAScopedKeyNothingOfOtherAccounts() async throws {
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let admin = try await key(nil, .admin), reader = try await key("acct_42", .reader)
        try await app.test(.router) { client in
            _ = try await call(
                client, .post, "/v1/usage/batch", key: admin,
                body: Self.batch([Self.event("other", account: "acct_secret", quantity: 777_777, model: "claude-sonnet-4-5")]))
            let invoice = String(decoding: AnthropicPlugin.demoCostReport.bytes, as: UTF8.self)
            let run = try await call(client, .post, "/v1/reconciliations?vendor=anthropic&\(Self.may)&account=acct_42", key: admin, body: invoice)
            #expect(run.text.contains("acct_secret"), "the admin's report names it: \(run.text.prefix(300))")
            let id = try #require(run.json["id"]?.stringValue)
            let read = try await call(client, .get, "/v1/reconciliations/\(id)", key: reader)
            #expect(read.status == 200 && read.text.contains("other_accounts_in_scope"))
            #expect(!read.text.contains("acct_secret") && !read.text.contains("777777"), "\(read.text.prefix(600))")
        }
    }

    /// Refusals say what was sent and what would do: an outside tester found each of these unclear.
    @Test func refusalsSayWhatWasSentAndWhatWouldDo() async throws {
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let admin = try await key(nil, .admin)
        try await app.test(.router) { client in
            let dim = try await call(client, .get, "/v1/accounts/acct_42/usage?\(Self.may)&group_by=dim.nope", key: admin)
            #expect(dim.status == 400 && dim.json["error"]?["field"] == .string("nope") && dim.text.contains("unknown group_by 'nope'"), "\(dim.text)")
            let source = try await call(client, .get, "/v1/accounts/acct_42/usage?\(Self.may)&group_by=source", key: admin)
            #expect(source.status == 400 && source.text.contains("dim.source"), "\(source.text)")
            let slash = try await call(client, .get, "/v1/accounts/acct_42%2F..%2Facct_B/usage?\(Self.may)", key: admin)
            #expect(slash.status == 400 && slash.text.contains("'acct_42/../acct_B'") && slash.text.contains("not dots alone"), "\(slash.text)")
            let control = try await call(client, .get, "/v1/accounts/acct%0A42/usage?\(Self.may)", key: admin)
            #expect(control.status == 400 && control.text.contains("'acct?42'"), "a control character is not echoed: \(control.text)")
            // A right-to-left override and a zero-width space (U+202E, U+200B) reorder or hide what is shown.
            let format = try await call(client, .get, "/v1/accounts/acct%E2%80%AE42%E2%80%8B%E2%80%A8/usage?\(Self.may)", key: admin)
            #expect(format.status == 400 && format.text.contains("'acct?42??'"), "a format character is not echoed: \(format.text)")
            let dots = try await call(
                client, .post, "/v1/usage/batch", key: admin,
                body: #"{"events":[{"event_id":"..","account_id":"acct_42","meter_id":"m","quantity":1,"timestamp":"2026-05-03T01:00:00Z"}]}"#)
            #expect(dots.text.contains("not dots alone"), "\(dots.text)")
            // A byte order mark before the JSON is skipped; a compressed body is named as such, not
            // as "unexpected character '\u{1f}'"; a time limit out of range says what is allowed.
            let bom = try await call(client, .post, "/v1/query/sql", key: admin, body: "\u{FEFF}" + #"{"sql":"SELECT 1 AS one"}"#)
            #expect(bom.status == 200, "\(bom.text)")
            var gzip: HTTPFields = [.authorization: "Bearer \(admin)", .contentEncoding: "gzip"]
            gzip[.contentType] = "application/json"
            let zipped = try await client.execute(
                uri: "/v1/query/sql", method: .post, headers: gzip, body: ByteBuffer(bytes: [0x1F, 0x8B, 0x08, 0x00])
            ) { String(buffer: $0.body) }
            #expect(zipped.contains("Content-Encoding gzip is not supported"), "\(zipped)")
            let huge = try await call(client, .post, "/v1/query/sql", key: admin, body: #"{"sql":"SELECT 1","timeout_seconds":1e400}"#)
            #expect(huge.status == 400 && huge.text.contains("finite number of seconds above 0"), "\(huge.text)")
            var two: HTTPFields = [:]
            two[values: .authorization] = ["Bearer \(admin)", "Bearer \(admin)"]
            let twice = try await client.execute(uri: "/v1/accounts/acct_42/usage?\(Self.may)", method: .get, headers: two) { String(buffer: $0.body) }
            #expect(twice.contains("send one Authorization header"), "\(twice)")
        }
    }

    @Test func badInputIsA4xxNamingTheFieldAndStoresNothing() async throws {
        try await app.test(.router) { client in
            let cases: [(HTTPRequest.Method, String, String?, Int, String?)] = [
                (.get, "/v1/accounts/acct_42/usage?to=2026-06-01T00:00:00Z", nil, 400, "from"),
                (.get, "/v1/accounts/acct_42/usage?from=2026-05-01&to=2026-06-01T00:00:00Z", nil, 400, "from"),
                (.get, "/v1/accounts/acct_42/usage?from=2026-06-01T00:00:00Z&to=2026-05-01T00:00:00Z", nil, 400, "from"),
                (.get, "/v1/accounts/acct_42/usage?\(Self.may)&group_by=tokn_type", nil, 400, "tokn_type"),
                (.get, "/v1/accounts/acct_42/usage?\(Self.may)&tokn_type=input", nil, 400, "tokn_type"),
                (.get, "/v1/accounts/acct_42/usage?\(Self.may)&source=fast", nil, 400, "source"),
                (.get, "/v1/accounts/acct_42/usage?\(Self.may)&group_by=%ZZ", nil, 400, nil),
                (.get, "/v1/accounts/acct_42/verify?\(Self.may)&group_by=hour", nil, 400, "group_by"),
                (.get, "/v1/accounts/acct_42/verify?\(Self.may)&mode=quick", nil, 400, "mode"),
                (.post, "/v1/usage/batch", "{not json", 400, "body"),
                (.post, "/v1/usage/batch", #"{"events": {}}"#, 400, "events"),
                (.post, "/v1/usage/batch", #"[1]"#, 400, "events"),
                (.post, "/v1/usage/batch", #"{"evnts": []}"#, 400, "evnts"),
                (.post, "/v1/usage/batch", #"{"events": [], "dry_run": true}"#, 400, "dry_run"),
                (.post, "/v1/query/sql", #"{"sql": 5}"#, 400, "sql"),
                (.post, "/v1/query/sql", #"{"sql": "DELETE FROM usage_events"}"#, 400, "sql"),
                (.post, "/v1/query/sql", #"{"sql": "SELECT 1", "timeout_seconds": 0}"#, 400, "timeout_seconds"),
                // Bounded before any work: 20,000 unknown names took 22 s, four at once the server.
                (
                    .post, "/v1/query/json",
                    #"{"from":"2026-05-01T00:00:00Z","to":"2026-06-01T00:00:00Z","group_by":[\#((0..<20_000).map { "\"z\($0)\"" }.joined(separator: ","))]}"#,
                    400, "group_by"
                ),
                (.get, "/v1/accounts/acct_42/usage?\(Self.may)&\((0..<100).map { "z\($0)=a" }.joined(separator: "&"))", nil, 400, "z64"),
                (.post, "/v1/query/json", #"{"from":"2026-05-01T00:00:00Z","to":"2026-06-01T00:00:00Z","metrics":["sum","sum"]}"#, 400, "metrics"),
                // Dots alone are path segments: `/v1/accounts/../usage` is `/v1/usage` to a client.
                (.get, "/v1/accounts/../usage?\(Self.may)", nil, 400, nil),
                (.post, "/v1/query/json", #"{"from":"2026-05-01T00:00:00Z","to":"2026-06-01T00:00:00Z","metrics":["median"]}"#, 400, "metrics"),
                (
                    .post, "/v1/query/json",
                    #"{"from":"2026-05-01T00:00:00Z","to":"2026-06-01T00:00:00Z","filters":[{"field":"model_id","op":"like","value":"x"}]}"#, 400,
                    "filters[0].op"
                ),
                (.post, "/v1/accounts/acct_42/periods/close", #"{"period":"May"}"#, 400, "period"),
                (.put, "/v1/meters/claude_tokens", #"{"unit": 5}"#, 400, "unit"),
                (.put, "/v1/meters/bad%20id", #"{"unit": "tokens"}"#, 400, "meter_id"),
                (.get, "/v1/nothing", nil, 404, nil),
            ]
            for (method, uri, body, status, field) in cases {
                let answer = try await call(client, method, uri, key: admin, body: body)
                #expect(answer.status == status, "\(method) \(uri): \(answer.text)")
                #expect(answer.json["error"]?["message"]?.stringValue != nil, "\(uri) answers the JSON error body")
                if let field { #expect(answer.json["error"]?["field"] == .string(field), "\(uri): \(answer.text)") }
            }
            let stored = try await store.sql("SELECT COUNT(*) FROM usage_events", scope: .all, timeLimitSeconds: 5, rowLimit: 10)
            #expect(stored.rows == [[.int(0)]])
        }
    }

    @Test func limitsAnswer413() async throws {
        try await app.test(.router) { client in
            let many = Self.batch((0...10_000).map { Self.event("m\($0)") })
            let tooMany = try await call(client, .post, "/v1/usage/batch", key: admin, body: many)
            #expect(tooMany.status == 413 && tooMany.json["error"]?["field"] == .string("events"))
            let huge = #"{"events":[],"pad":""# + String(repeating: "x", count: 16 << 20) + #""}"#
            #expect(try await call(client, .post, "/v1/usage/batch", key: admin, body: huge).status == 413)
            let stored = try await store.sql("SELECT COUNT(*) FROM usage_events", scope: .all, timeLimitSeconds: 5, rowLimit: 10)
            #expect(stored.rows == [[.int(0)]], "nothing from a refused request")
            let exactly = Self.batch((0..<10_000).map { Self.event("ok\($0)") })
            #expect(try await call(client, .post, "/v1/usage/batch", key: admin, body: exactly).json["accepted"] == .int(10_000))
        }
    }

    @Test func sqlEndpointAttacks() async throws {
        let reader = try await key("acct_42", .reader)
        try await app.test(.router) { client in
            _ = try await call(
                client, .post, "/v1/usage/batch", key: admin,
                body: Self.batch([Self.event("mine", quantity: 3), Self.event("theirs", account: "acct_7", quantity: 999)]))
            let probes = [
                "SELECT SUM(quantity) FROM usage_events WHERE account_id = 'acct_7'",
                "SELECT (SELECT SUM(quantity) FROM usage_events WHERE account_id = 'acct_7')",
                "SELECT quantity FROM usage_events UNION SELECT quantity FROM usage_events WHERE account_id = 'acct_7'",
                "SELECT a.quantity FROM usage_events a JOIN usage_events b ON b.account_id = 'acct_7'",
            ]
            for sql in probes {
                let r = try await call(client, .post, "/v1/query/sql", key: reader, body: JSONWriter.write(.object([("sql", .string(sql))])))
                #expect(r.status == 200, "\(sql)")
                #expect(!r.text.contains("999"), "\(sql) leaked: \(r.text)")
            }
            let refused = [
                "SELECT * FROM api_key", "SELECT * FROM event", "INSERT INTO usage_events (event_id) VALUES ('x')",
                "ATTACH DATABASE '/tmp/x.db' AS x", "PRAGMA database_list", "SELECT load_extension('/tmp/evil')",
                "SELECT sql FROM sqlite_temp_master", "CREATE TABLE t (x)",
            ]
            for sql in refused {
                let r = try await call(client, .post, "/v1/query/sql", key: reader, body: JSONWriter.write(.object([("sql", .string(sql))])))
                #expect(r.status == 400, "\(sql): \(r.text)")
                #expect(!r.text.contains("ubk_") && !r.text.contains("999"))
            }
        }
    }

    @Test func reconciliationsRunStoreAndApplyOverHTTP() async throws {
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let reader = try await key("acct_42", .reader)
        let writer = try await key("acct_42", .writer)
        let stranger = try await key("acct_7", .writer)
        try await app.test(.router) { client in
            let vendors = try await call(client, .get, "/v1/vendors", key: reader)
            #expect(vendors.json["vendors"]?.arrayValue?.first?["id"] == .string("anthropic"))
            #expect(vendors.json["vendors"]?.arrayValue?.first?["rate_card_version"] == .string("2026-11-30.1"))
            let invoice = String(decoding: AnthropicPlugin.demoCostReport.bytes, as: UTF8.self)
            // A reader may look (dry_run: nothing is recorded); recording a run needs a writer.
            #expect(try await call(client, .post, "/v1/reconciliations?vendor=anthropic&\(Self.may)&account=acct_42", key: reader, body: invoice).status == 403)
            let dry = try await call(client, .post, "/v1/reconciliations?vendor=anthropic&\(Self.may)&account=acct_42&dry_run=true", key: reader, body: invoice)
            #expect(dry.status == 200 && dry.json["total"]?["gap"] == .int(6_520_000))
            #expect(try await call(client, .get, "/v1/reconciliations/\(dry.json["id"]!.stringValue!)", key: reader).status == 404, "a dry run is not recorded")
            // A key of one account cannot see whether others metered the invoice's models: its run
            // holds until the invoice is asserted to be that account's alone.
            let unchecked = try await call(
                client, .post, "/v1/reconciliations?vendor=anthropic&\(Self.may)&account=acct_42&dry_run=true", key: writer, body: invoice)
            #expect(unchecked.json["reasons"]?.arrayValue?.map { $0["code"] } == [.string("invoice_scope_unchecked")], "\(unchecked.text.prefix(300))")
            let created = try await call(
                client, .post, "/v1/reconciliations?vendor=anthropic&\(Self.may)&account=acct_42&invoice_scope=account", key: writer, body: invoice)
            #expect(created.status == 201, "\(created.text.prefix(300))")
            #expect(created.json["total"]?["gap"] == .int(6_520_000))
            #expect(created.json["corrections"]?.arrayValue?.first?["quantity"] == .int(520_000))
            #expect(created.json["run_by"]?.stringValue?.hasPrefix("key_") == true, "who ran it is recorded")
            let id = try #require(created.json["id"]?.stringValue)
            let fetched = try await call(client, .get, "/v1/reconciliations/\(id)", key: reader)
            #expect(fetched.status == 200 && fetched.json["id"] == .string(id) && fetched.json["applied"] == .bool(false))
            #expect(try await call(client, .get, "/v1/reconciliations/\(id)", key: stranger).status == 403)
            #expect(try await call(client, .get, "/v1/reconciliations/rec_nope", key: reader).status == 404)
            #expect(try await call(client, .post, "/v1/reconciliations/\(id)/apply", key: reader).status == 403, "a reader cannot apply")
            let applied = try await call(client, .post, "/v1/reconciliations/\(id)/apply", key: writer)
            #expect(applied.json["accepted"] == .int(1) && applied.json["held_not_posted"] == .int(0))
            let twice = try await call(client, .post, "/v1/reconciliations/\(id)/apply", key: writer)
            #expect(twice.json["duplicates"] == .int(1) && twice.json["accepted"] == .int(0))
            #expect(try await call(client, .get, "/v1/reconciliations/\(id)", key: reader).json["applied"] == .bool(true))
            // A dry run reads earlier runs as a recorded one does: one cutting across the applied
            // May is held, not told it is conclusive.
            let across = try await call(
                client, .post, "/v1/reconciliations?vendor=anthropic&from=2026-05-01&to=2026-05-31&account=acct_42&invoice_scope=account&dry_run=true",
                key: reader,
                body: invoice)
            #expect(across.status == 200 && across.json["verdict"] == .string("inconclusive"), "\(across.text.prefix(300))")
            #expect(across.json["reasons"]?.arrayValue?.contains { $0["code"] == .string("overlaps_reconciled_period") } == true)
            #expect(try await call(client, .post, "/v1/reconciliations/\(id)/revert", key: reader).status == 403, "a reader cannot revert")
            let reverted = try await call(client, .post, "/v1/reconciliations/\(id)/revert", key: writer)
            #expect(reverted.status == 200 && reverted.json["accepted"] == .int(1))
            let revertedTwice = try await call(client, .post, "/v1/reconciliations/\(id)/revert", key: writer)
            #expect(revertedTwice.json["accepted"] == .int(0) && revertedTwice.json["duplicates"] == .int(1))
            #expect(try await call(client, .get, "/v1/reconciliations/\(id)", key: reader).json["reverted_at"]?.stringValue != nil)
            // One page of a longer export: the report is complete, proposes nothing, and apply is a 409.
            let page = invoice.replacingOccurrences(of: "\"has_more\": false", with: "\"has_more\": true")
            let partial = try await call(
                client, .post, "/v1/reconciliations?vendor=anthropic&from=2026-05-01&to=2026-06-01&account=acct_42", key: writer, body: page)
            #expect(partial.status == 201 && partial.json["verdict"] == .string("inconclusive"), "\(partial.text.prefix(300))")
            #expect(partial.json["reasons"]?.arrayValue?.first?["code"] == .string("partial_export") && partial.json["corrections"] == .array([]))
            let refused = try await call(client, .post, "/v1/reconciliations/\(partial.json["id"]!.stringValue!)/apply", key: writer)
            #expect(refused.status == 409 && refused.json["error"]?["code"] == .string("inconclusive"))
            let offset = try await call(
                client, .post, "/v1/reconciliations?vendor=anthropic&from=2026-05-01T00:00:00%2B02:00&to=2026-06-01", key: writer, body: invoice)
            #expect(offset.status == 400 && offset.json["error"]?["field"] == .string("from"), "a local offset is refused naming the field")
            // The JSON body form carries every option the CLI has.
            let body = JSONWriter.write(
                .object([
                    ("vendor", .string("anthropic")), ("from", .string("2026-05-01T00:00:00Z")), ("to", .string("2026-06-01T00:00:00Z")),
                    ("account_id", .string("acct_42")),
                    (
                        "invoices",
                        .array([
                            .object([
                                ("name", .string("may.json")), ("content_base64", .string(Data(AnthropicPlugin.demoCostReport.bytes).base64EncodedString())),
                            ])
                        ])
                    ),
                    ("rules_yaml", .string("version: 1\nrules:\n  - id: all-unexplained\n    when: {}\n    class: unexplained\n")),
                    ("deep_verify", .bool(true)),
                ]))
            let custom = try await call(client, .post, "/v1/reconciliations", key: admin, body: body)
            #expect(custom.status == 201, "\(custom.text.prefix(300))")
            #expect(custom.json["verify"]?["mode"] == .string("deep"))
            #expect(custom.json["findings"]?.arrayValue?.allSatisfy { $0["rule"] == .string("all-unexplained") } == true)
            #expect(custom.json["rules"]?["chain"] == .array([.string("rules:rules_yaml"), .string("defaults")]))
            #expect(
                custom.json["findings"]?.arrayValue?.contains { $0["class"] == .string("metering_gap") } == false,
                "the team's catch-all decides before the defaults")
            let misspelt = try await call(
                client, .post, "/v1/reconciliations", key: admin,
                body: body.replacingOccurrences(of: "\"deep_verify\"", with: "\"deep_verfy\""))
            #expect(misspelt.status == 400 && misspelt.json["error"]?["field"] == .string("deep_verfy"))
            // A member given twice: Foundation's decoder kept one silently (the first rules ran).
            let twiceBody = #"{"rules_yaml":"version: 1\nrules: []\n","# + String(body.dropFirst())
            let repeated = try await call(client, .post, "/v1/reconciliations", key: admin, body: twiceBody)
            #expect(repeated.status == 400 && repeated.json["error"]?["field"] == .string("body"), "\(repeated.text.prefix(300))")
            #expect(repeated.text.contains(#"duplicate key \"rules_yaml\""#), "\(repeated.text.prefix(300))")
            let badRules = try await call(
                client, .post, "/v1/reconciliations", key: admin,
                body: body.replacingOccurrences(of: "class: unexplained", with: "class: cheap"))
            #expect(badRules.status == 400 && badRules.json["error"]?["field"] == .string("rules_yaml"))
            let foreign = try await call(client, .post, "/v1/reconciliations?vendor=anthropic&\(Self.may)&account=acct_42", key: stranger, body: invoice)
            #expect(foreign.status == 403)
            let unknown = try await call(client, .post, "/v1/reconciliations?vendor=nobody&\(Self.may)", key: admin, body: invoice)
            #expect(unknown.status == 400 && unknown.json["error"]?["field"] == .string("vendor"))
        }
    }

    @Test func runawayQueryStopsAtTheTimeLimit() async throws {
        var api = HTTPAPI(store: store, keys: store, environmentAdminSecret: admin, limits: .unhurried)
        api.sqlTimeLimitSeconds = 0.5
        let quick = Application(router: api.buildRouter())
        try await quick.test(.router) { client in
            let r = try await call(
                client, .post, "/v1/query/sql", key: admin,
                body: #"{"sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"}"#)
            #expect(r.status == 400 && r.json["error"]?["code"] == .string("timeout"))
        }
    }
}
