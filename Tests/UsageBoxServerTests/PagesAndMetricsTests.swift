import ExactJSON
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MeterStoreSQLite
import Metering
import Prometheus
import ReconCore
import Testing
import UsageBoxApp
import VendorAnthropic

@testable import ReportPages
@testable import UsageBoxServer

/// The pages under /ui/ (sign-in, sessions, what each key may see, escaping) and /metrics.
@Suite struct PagesAndMetricsTests {
    let store: SQLiteMeterStore
    let registry = PrometheusCollectorRegistry()
    let app: Application<RouterResponder<UsageBoxRequestContext>>
    static let admin = "pages-admin-secret"
    static let may = "from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z"

    init() throws {
        store = try SQLiteMeterStore(location: .newMemory())
        // One expensive request at a time: a page that took its work slot twice would answer 429.
        var limits = RequestLimits.unhurried
        limits.expensivePerKey = 1
        limits.expensiveOverall = 1
        var api = HTTPAPI(store: store, keys: store, environmentAdminSecret: Self.admin, limits: limits)
        api.reconciliation = try ReconciliationService()
        api.reconciliationLog = store
        api.metrics = ServerMetrics(registry: registry, storeSize: { 4096 })
        app = Application(router: api.buildRouter())
    }

    struct Answer {
        var status: Int
        var text: String
        var headers: HTTPFields
    }

    func call(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, bearer: String? = nil, cookie: String? = nil,
        basic: String? = nil, form: String? = nil, body: String? = nil
    ) async throws -> Answer {
        var headers: HTTPFields = [:]
        if let bearer { headers[.authorization] = "Bearer \(bearer)" }
        if let basic { headers[.authorization] = "Basic " + Data("key:\(basic)".utf8).base64EncodedString() }
        if let cookie { headers[.cookie] = cookie }
        if form != nil { headers[.contentType] = "application/x-www-form-urlencoded" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: (form ?? body).map { ByteBuffer(string: $0) }) { r in
            expectDocumented(method.rawValue, uri, Int(r.status.code))
            return Answer(status: Int(r.status.code), text: String(buffer: r.body), headers: r.headers)
        }
    }

    /// The kata month on acct_42 and one recorded run of it.
    func recordRun(_ client: some TestClientProtocol) async throws -> String {
        _ = try await KataDemo(store: store, write: { _ in }).load()
        let invoice = String(decoding: AnthropicPlugin.demoCostReport.bytes, as: UTF8.self)
        let created = try await call(client, .post, "/v1/reconciliations?vendor=anthropic&\(Self.may)&account=acct_42", bearer: Self.admin, body: invoice)
        #expect(created.status == 201)
        return try #require(try JSONParser.parse(created.text)["id"]?.stringValue)
    }

    @Test func signingInSetsAnHttpOnlySessionThatRevocationEnds() async throws {
        let (key, secret) = try await store.createKey(account: "acct_42", role: .reader)
        try await app.test(.router) { client in
            let id = try await recordRun(client)
            let anonymous = try await call(client, .get, "/ui/reconciliations/\(id)")
            #expect(anonymous.status == 303 && anonymous.headers[.location]?.hasPrefix("/ui/login?next=") == true)
            let form = try await call(client, .get, "/ui/login?next=/ui/")
            #expect(form.status == 200 && form.text.contains("<form class=\"login\""))
            let wrong = try await call(client, .post, "/ui/login", form: "key=nope&next=%2Fui%2F")
            #expect(wrong.status == 401 && wrong.text.contains("unknown or revoked"))
            let signedIn = try await call(client, .post, "/ui/login", form: "key=\(secret)&next=%2Fui%2Freconciliations%2F\(id)")
            #expect(signedIn.status == 303 && signedIn.headers[.location] == "/ui/reconciliations/\(id)")
            let setCookie = try #require(signedIn.headers[.setCookie])
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict") && setCookie.contains("Path=/ui"))
            let cookie = String(setCookie.split(separator: ";")[0])
            let page = try await call(client, .get, "/ui/reconciliations/\(id)", cookie: cookie)
            #expect(page.status == 200 && page.text.contains("520,000") && page.text.contains("Conclusive"))
            #expect(page.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("default-src 'none'") == true)
            #expect(!page.text.lowercased().contains("<script"), "no script on any page")
            let index = try await call(client, .get, "/ui/", cookie: cookie)
            #expect(index.status == 200 && index.text.contains(id))
            // An open redirect is refused: only pages of this site are a place to go.
            let away = try await call(client, .post, "/ui/login", form: "key=\(secret)&next=https%3A%2F%2Fevil.example%2F")
            #expect(away.headers[.location] == "/ui/")
            _ = try await store.revokeKey(key.keyID)
            #expect(try await call(client, .get, "/ui/", cookie: cookie).status == 303, "a revoked key ends its sessions at once")
            let out = try await call(client, .post, "/ui/logout", cookie: cookie)
            #expect(out.status == 401)
        }
    }

    @Test func aPageNeverShowsAnotherAccountsData() async throws {
        let (_, mine) = try await store.createKey(account: "acct_42", role: .reader)
        let (_, theirs) = try await store.createKey(account: "acct_7", role: .reader)
        try await app.test(.router) { client in
            let id = try await recordRun(client)
            #expect(try await call(client, .get, "/ui/reconciliations/\(id)", basic: mine).status == 200)
            let other = try await call(client, .get, "/ui/reconciliations/\(id)", basic: theirs)
            // "520,000", not "520": the run id echoed in the refusal carries its time (rec_…035202…).
            #expect(other.status == 403 && !other.text.contains("520,000") && other.text.contains("may not see"))
            let index = try await call(client, .get, "/ui/", basic: theirs)
            #expect(index.status == 200 && !index.text.contains(id) && !index.text.contains("acct_42"))
            let account = try await call(client, .get, "/ui/accounts?account=acct_42&month=2026-05", basic: theirs)
            #expect(account.status == 403 && !account.text.contains("2026-05-17"))
            let own = try await call(client, .get, "/ui/accounts?account=acct_42&month=2026-05", basic: mine)
            #expect(own.status == 200 && own.text.contains("No drift") && own.text.contains("2026-05-31"))
            // The API's bearer header serves scripts too, and a page's own checks then answer.
            #expect(try await call(client, .get, "/ui/reconciliations/\(id)", bearer: mine).status == 200)
            #expect(try await call(client, .get, "/ui/accounts?month=2026-05", bearer: mine).status == 400)
            #expect(try await call(client, .get, "/ui/accounts?account=acct_42", bearer: theirs).status == 403)
            // A stale session cookie signs nothing in, even beside a good key, and is cleared.
            let stale = try await call(client, .get, "/ui/", bearer: mine, cookie: "ub_session=forged")
            #expect(stale.status == 303 && (stale.headers[.setCookie] ?? "").contains("Max-Age=0"))
        }
    }

    /// The index read the server's 200 latest runs, decoding each before asking whose it was:
    /// one tenant's 200 runs hid every other tenant's, and its 19 MB runs were decoded on each
    /// other tenant's view (tester S). Whose run each is now comes from the start of its text.
    @Test func anotherTenantsRunsNeitherHideNorSlowAnAccountsIndex() async throws {
        let (_, mine) = try await store.createKey(account: "acct_42", role: .reader)
        try await app.test(.router) { client in
            let id = try await recordRun(client)
            let text = try #require(try await store.reconciliation(id: id))
            #expect(ReconciliationArchive.account(ofHead: String(text.prefix(512))) == .account("acct_42"))
            #expect(ReconciliationArchive.account(ofHead: #"{"id":"rec_1","vendor":"openai","account_id":null,"x":1}"#) == .none)
            #expect(ReconciliationArchive.account(ofHead: #"{"vendor":"openai","id":"rec_1"}"#) == .unknown)
            // 250 later runs of acct_7 (their text past the head is not read for acct_42's key).
            let theirs = text.replacingOccurrences(of: #""account_id":"acct_42""#, with: #""account_id":"acct_7""#)
            for n in 0..<250 {
                let other = "rec_29990101000000_\(String(format: "%08d", n))"
                try await store.saveReconciliation(
                    id: other, vendor: "anthropic", createdAt: Timestamp(microseconds: Timestamp.now().microseconds + Int64(n + 1) * 1_000_000),
                    runBy: "cli", reportJSON: theirs.replacingOccurrences(of: id, with: other), summaryJSON: "")
            }
            let index = try await call(client, .get, "/ui/", basic: mine)
            #expect(index.status == 200 && index.text.contains(id), "acct_42's run is listed behind 250 of acct_7's")
            #expect(!index.text.contains("rec_29990101000000_"))
        }
    }

    /// The index decoded each of its 200 runs' whole reports, so an account's own very large runs
    /// could time its page out (tester S2): it lists runs from the summaries stored beside them,
    /// and reads a report only for a run recorded before summaries were kept.
    @Test func theIndexListsRunsFromTheirSummariesNotTheirReports() async throws {
        let (_, mine) = try await store.createKey(account: "acct_42", role: .reader)
        try await app.test(.router) { client in
            let id = try await recordRun(client)
            let report = try #require(try await ReconciliationArchive(store).report(id: id))
            var later = Int64(0)
            // Each a second after the one before, its summary saying so.
            func save(_ runID: String, report text: String, summary: ReconciliationSummary?) async throws {
                later += 1
                let createdAt = Timestamp(microseconds: report.createdAt.microseconds + later * 1_000_000)
                var summary = summary
                summary?.createdAt = createdAt
                try await store.saveReconciliation(
                    id: runID, vendor: "anthropic", createdAt: createdAt, runBy: "cli", reportJSON: text, summaryJSON: summary?.jsonText ?? "")
            }
            func summary(_ runID: String, corrected: [String] = ["acct_42"]) -> ReconciliationSummary {
                var s = ReconciliationSummary(report)
                s.id = runID
                s.correctedAccounts = corrected
                return s
            }
            // Listed from its summary: its report is never read (this one could not be decoded).
            try await save(
                "rec_summary_only", report: #"{"id":"rec_summary_only","vendor":"anthropic","account_id":"acct_42","findings":"not read"}"#,
                summary: summary("rec_summary_only"))
            // Its corrections post to another account too: an admin's run, as the API decides.
            try await save("rec_posts_to_acct_7", report: report.jsonText, summary: summary("rec_posts_to_acct_7", corrected: ["acct_42", "acct_7"]))
            // Recorded before summaries were kept: read from its report, or left off when that cannot be decoded.
            try await save("rec_before_summaries", report: report.jsonText.replacingOccurrences(of: id, with: "rec_before_summaries"), summary: nil)
            try await save(
                "rec_unreadable", report: #"{"id":"rec_unreadable","vendor":"anthropic","account_id":"acct_42","findings":"not read"}"#, summary: nil)
            let index = try await call(client, .get, "/ui/", basic: mine)
            #expect(index.status == 200)
            for listed in [id, "rec_summary_only", "rec_before_summaries"] { #expect(index.text.contains(listed), "\(listed)") }
            for hidden in ["rec_posts_to_acct_7", "rec_unreadable"] { #expect(!index.text.contains(hidden), "\(hidden)") }
            #expect(index.text.components(separatedBy: ">\(Format.signed(report.total.gap))<").count - 1 == 3, "each run's gap, from its summary or its report")
            let admin = try await call(client, .get, "/ui/", bearer: Self.admin)
            #expect(admin.status == 200 && admin.text.contains("rec_posts_to_acct_7") && !admin.text.contains("rec_unreadable"))
            // The API lists the same runs, newest first, each as its summary.
            func listed(_ query: String, _ key: String) async throws -> (Int, [JSONValue]) {
                let answer = try await call(client, .get, "/v1/reconciliations\(query)", bearer: key)
                return (answer.status, answer.status == 200 ? try JSONParser.parse(answer.text)["reconciliations"]?.arrayValue ?? [] : [])
            }
            let (status, runs) = try await listed("", mine)
            #expect(status == 200 && runs.map { $0["id"]?.stringValue } == ["rec_before_summaries", "rec_summary_only", id])
            #expect(runs.last == ReconciliationSummary(report).jsonValue)
            // Page by page, one run a page, as `next` says: a page whose run the key may not see
            // (or cannot be read) is empty and still goes on; the page of the last run says no more.
            var paged: [String?] = [], query = "?limit=1", pages = 0
            while pages < 10 {
                pages += 1
                let answer = try JSONParser.parse(try await call(client, .get, "/v1/reconciliations\(query)", bearer: mine).text)
                paged += answer["reconciliations"]?.arrayValue?.map { $0["id"]?.stringValue } ?? []
                guard let next = answer["next"], next != .null else { break }
                let before = try #require(next["before"]?.stringValue), beforeID = try #require(next["before_id"]?.stringValue)
                query = "?limit=1&before=\(before)&before_id=\(beforeID)"
            }
            #expect(paged == ["rec_before_summaries", "rec_summary_only", id] && pages == 5, "\(paged) in \(pages) pages")
            // Before a time alone: every run recorded before it.
            let cursor = try #require(runs[1]["created_at"]?.stringValue)
            #expect(try await listed("?before=\(cursor)", mine).1.map { $0["id"]?.stringValue } == [id])
            #expect(try await listed("?before=2026-01-01", mine).1.isEmpty)
            #expect(
                try await listed("?account=acct_42&limit=2", mine).1.map { $0["id"]?.stringValue } == ["rec_before_summaries"], "the limit, then the key's view"
            )
            #expect(try await listed("", Self.admin).1.map { $0["id"]?.stringValue }.contains("rec_posts_to_acct_7"))
            #expect(try await listed("?account=acct_7", mine).0 == 403)
            for bad in [
                "?limit=0", "?limit=201", "?limit=ten", "?limit=%2B5", "?limit=0005", "?account=a%20b", "?acount=acct_42", "?before=yesterday",
                "?before_id=rec_1", "?before=2026-01-01&before_id=a%20b",
            ] {
                #expect(try await listed(bad, mine).0 == 400, "\(bad)")
            }
            // Applying replaces the summary with the report.
            #expect(try await call(client, .post, "/v1/reconciliations/\(id)/apply", bearer: Self.admin).status == 200)
            let stored = try #require(try await store.recentReconciliations(limit: 10, before: nil).first { $0.id == id }?.summaryJSON)
            #expect(
                try ReconciliationJSON.decode(ReconciliationSummary.self, from: stored)
                    == ReconciliationSummary(try #require(try await ReconciliationArchive(store).report(id: id))))
            #expect(try ReconciliationJSON.decode(ReconciliationSummary.self, from: stored).applied)
            // Reverting replaces it too: the run is listed as reverted, not as applied.
            #expect(try await call(client, .post, "/v1/reconciliations/\(id)/revert", bearer: Self.admin).status == 200)
            let reverted = try await listed("", mine).1.first { $0["id"]?.stringValue == id }
            #expect(reverted?["applied"] == .bool(true) && reverted?["reverted_at"]?.stringValue != nil, "\(String(describing: reverted))")
            #expect(try await call(client, .get, "/ui/", basic: mine).text.contains("<td>reverted</td>"))
        }
    }

    /// The index showed the 200 latest runs and nothing of older ones: it pages, 200 runs a page,
    /// an "Older runs" link to the next while more follow, as the API's `next`.
    @Test func theIndexPagesToOlderRuns() async throws {
        let (_, mine) = try await store.createKey(account: "acct_42", role: .reader)
        try await app.test(.router) { client in
            let id = try await recordRun(client)
            let report = try #require(try await ReconciliationArchive(store).report(id: id))
            for n in 1...203 {
                var s = ReconciliationSummary(report)
                s.id = "rec_page_\(n)"
                s.createdAt = Timestamp(microseconds: report.createdAt.microseconds + Int64(n) * 1_000_000)
                try await store.saveReconciliation(
                    id: s.id, vendor: "anthropic", createdAt: s.createdAt, runBy: "cli", reportJSON: report.jsonText, summaryJSON: s.jsonText)
            }
            func runs(_ page: String) -> [String] {
                page.components(separatedBy: "<a href=\"/ui/reconciliations/").dropFirst().map { String($0.prefix { $0 != "\"" }) }
            }
            let first = try await call(client, .get, "/ui/", basic: mine)
            #expect(first.status == 200 && runs(first.text) == (4...203).reversed().map { "rec_page_\($0)" } && !first.text.contains("Newest runs"))
            let older = try #require(first.text.components(separatedBy: "<a href=\"").first { $0.contains("\">Older runs</a>") }?.prefix { $0 != "\"" })
            #expect(older.hasPrefix("/ui/?before=") && older.contains("&amp;before_id=rec_page_4"), "\(older)")
            let second = try await call(client, .get, older.replacingOccurrences(of: "&amp;", with: "&"), basic: mine)
            #expect(second.status == 200 && runs(second.text) == ["rec_page_3", "rec_page_2", "rec_page_1", id], "\(runs(second.text))")
            #expect(second.text.contains("<a href=\"/ui/\">Newest runs</a>") && !second.text.contains("Older runs"))
            #expect(second.text.contains("4 run(s) this key may see, newest first, recorded before"))
            #expect(try await call(client, .get, "/ui/?before=yesterday", basic: mine).status == 400)
            #expect(try await call(client, .get, "/ui/?before_id=rec_page_4", basic: mine).status == 400)
        }
    }

    /// One reader key signing in 10,000 times signed every other user out (tester S), then its
    /// own account's writer (tester S2): a key keeps 100 sessions, its own oldest giving way; a
    /// session whose key was revoked is dropped with its secret when next presented.
    @Test func oneHoldersSignInsNeitherEvictOthersNorOutliveItsKey() async throws {
        let sessions = UISessions()
        let (theirKey, theirs) = try await store.createKey(account: "acct_7", role: .reader)
        let (writerKey, writer) = try await store.createKey(account: "acct_42", role: .writer)
        let (mineKey, mine) = try await store.createKey(account: "acct_42", role: .reader)
        let other = await sessions.open(secret: theirs, holder: UISessions.sessionHolder(of: theirKey))
        let colleague = await sessions.open(secret: writer, holder: UISessions.sessionHolder(of: writerKey))
        for _ in 0..<150 { _ = await sessions.open(secret: mine, holder: UISessions.sessionHolder(of: mineKey)) }
        #expect(await sessions.count(holder: UISessions.sessionHolder(of: mineKey)) == UISessions.maxPerHolder)
        #expect(await sessions.secret(for: other) == theirs, "another account's session stays")
        #expect(await sessions.secret(for: colleague) == writer, "the account's writer's session stays")
        let api = HTTPAPI(store: store, keys: store, environmentAdminSecret: nil)
        let token = await sessions.open(secret: mine, holder: UISessions.sessionHolder(of: mineKey))
        await sessions.closeIfSignedOut(token, api: api)
        #expect(await sessions.secret(for: token) == mine, "a live key's session stays")
        _ = try await store.revokeKey(mineKey.keyID)
        await sessions.closeIfSignedOut(token, api: api)
        #expect(await sessions.secret(for: token) == nil, "a revoked key's session is gone")
    }

    /// A form posted from another site signed the browser into that site's key (login CSRF:
    /// tester S); the cookie is Secure when a proxy says the browser came over TLS.
    @Test func signInFromAnotherSiteIsRefused() async throws {
        let (_, mine) = try await store.createKey(account: "acct_42", role: .reader)
        try await app.test(.router) { client in
            func login(_ headers: HTTPFields) async throws -> (Int, String?) {
                var headers = headers
                headers[.contentType] = "application/x-www-form-urlencoded"
                return try await client.execute(uri: "/ui/login", method: .post, headers: headers, body: ByteBuffer(string: "key=\(mine)&next=/ui/")) { r in
                    expectDocumented("POST", "/ui/login", Int(r.status.code))
                    return (Int(r.status.code), r.headers[.setCookie])
                }
            }
            let origin = HTTPField.Name("Origin")!, fetchSite = HTTPField.Name("Sec-Fetch-Site")!
            #expect(try await login([origin: "https://evil.example"]).0 == 403)
            #expect(try await login([fetchSite: "cross-site"]).0 == 403)
            #expect(try await login([:]).0 == 303, "a client that names no origin (curl) signs in")
            #expect(try await login([fetchSite: "same-origin"]).0 == 303)
            let proxied = try await login([HTTPField.Name("X-Forwarded-Proto")!: "https, http"])
            #expect(proxied.0 == 303 && proxied.1?.contains("; Secure") == true, "\(proxied)")
            // Behind a proxy that rewrites Host: the browser's own word, or the forwarded host.
            #expect(try await login([origin: "https://ub.example.com", fetchSite: "same-origin"]).0 == 303)
            #expect(try await login([origin: "https://ub.example.com", HTTPField.Name("X-Forwarded-Host")!: "ub.example.com"]).0 == 303)
            #expect(UIController.sameOrigin("http://127.0.0.1:8080", host: "127.0.0.1:8080"))
            #expect(UIController.sameOrigin("http://[::1]:8080", host: "[::1]:8080"))
            #expect(!UIController.sameOrigin("http://127.0.0.1:8081", host: "127.0.0.1:8080"))
        }
    }

    /// A right-to-left override in a file name showed `may\u{202E}gnp.json` as `mayjson.png`;
    /// zero-width characters made two names that differ look alike (tester S2).
    @Test func textReorderingCharactersAreShownAsReplacements() {
        let page = ReportPages.error("no run may\u{202E}gnp.json \u{2067}x\u{2069}", who: "acct_42")
        #expect(!page.unicodeScalars.contains { ReportPages.hidesOrReordersText($0) } && page.contains("may\u{FFFD}gnp.json"))
        let hidden = ReportPages.error("acct\u{200B}_42 a\u{200D}b \u{FEFF}c d\u{2028}e \u{3164}f", who: "acct_42")
        #expect(hidden.contains("acct\u{FFFD}_42 a\u{FFFD}b \u{FFFD}c d\u{FFFD}e \u{FFFD}f"), "\(hidden)")
        let plain = ReportPages.error("café naïve 東京 e\u{0301}", who: "acct_42")
        #expect(plain.contains("café naïve 東京 e\u{0301}"), "letters and accents stay")
    }

    @Test func everyValueIsEscaped() throws {
        let hostile = "<script>alert('x')</script>"
        let unmapped = JSONWriter.write(
            .array([
                .object([
                    ("location", .string("invoice.csv:2")), ("description", .string(hostile)), ("vendor_model", .null), ("vendor_token_type", .null),
                    ("amount", .null), ("currency", .string("USD")), ("reason", .string("not_usage:" + hostile)),
                ])
            ]))
        var report = try JSONValueDecoder.decode(
            ReconciliationReport.self,
            from: try JSONParser.parse(Self.minimalReport.replacingOccurrences(of: #""unmapped":[]"#, with: #""unmapped":"# + unmapped)))
        report.vendor = "\"><img src=x onerror=alert(1)>"
        let html = ReportPages.report(report)
        #expect(!html.contains("<script>") && html.contains("&lt;script&gt;"))
        #expect(!html.contains("<img src=x"))
    }

    @Test func metricsCountAKnownWorkload() async throws {
        let (_, reader) = try await store.createKey(account: "acct_42", role: .reader)
        try await app.test(.router) { client in
            let batch =
                #"{"events":[{"event_id":"a","account_id":"acct_1","meter_id":"m","quantity":1,"timestamp":"2026-05-10T10:00:00Z"},"#
                + #"{"event_id":"b","account_id":"acct_1","meter_id":"m","quantity":2,"timestamp":"2026-05-10T10:00:00Z"},"#
                + #"{"event_id":"a","account_id":"acct_1","meter_id":"m","quantity":1,"timestamp":"2026-05-10T10:00:00Z"},"#
                + #"{"event_id":"c","account_id":"acct_1","meter_id":"m","quantity":1.5,"timestamp":"2026-05-10T10:00:00Z"}]}"#
            #expect(try await call(client, .post, "/v1/usage/batch", bearer: Self.admin, body: batch).status == 200)
            #expect(try await call(client, .get, "/v1/accounts/acct_1/verify?\(Self.may)", bearer: Self.admin).status == 200)
            #expect(try await call(client, .get, "/metrics", bearer: reader).status == 403, "metrics name accounts: admin only")
            let scrape = try await call(client, .get, "/metrics", bearer: Self.admin)
            #expect(scrape.status == 200)
            let text = scrape.text
            #expect(text.contains(#"usagebox_events_total{outcome="accepted",code=""} 2"#), "\(text)")
            #expect(text.contains(#"usagebox_events_total{outcome="duplicate",code=""} 1"#))
            #expect(text.contains(#"usagebox_events_total{outcome="rejected",code="invalid_quantity"} 1"#))
            #expect(text.contains(#"usagebox_verify_drift{account="acct_1"} 0"#))
            #expect(text.contains(#"usagebox_http_requests_total{route="/v1/usage/batch",method="POST",status="200"} 1"#))
            #expect(text.contains("usagebox_http_request_duration_seconds_bucket"))
            #expect(text.contains("usagebox_ingest_batch_events_count 1"))
            #expect(text.contains("usagebox_store_bytes 4096"))
        }
    }

    static let minimalReport = """
        {"id":"rec_x","vendor":"anthropic","account_id":"acct_42","invoice_scope":"as_given","from":"2026-05-01T00:00:00Z","to":"2026-06-01T00:00:00Z",
         "verdict":"conclusive","reasons":[],"invoice":{"sha256":"0","files":[],"format":"json","currency":"USD","lines":0,"amount":"0","unmapped_amount":"0",
         "amounts_by_currency":{},"unconverted_currencies":[]},"coverage":{"basis":"none","covers":[],"period_days":31,"covered_days":0,"uncovered":[],
         "pages":[],"incomplete":[],"models":[]},"rate_card":{"vendor":"anthropic","version":"1","sha256":"0"},"rules":{"chain":[],"sha256":"0"},
         "verify":{"ok":true,"mode":"incremental","drift":0},"models":[],"total":{"metered":0,"vendor":0,"gap":0,"gap_amount":"0"},"shape":"none",
         "implied_factor":null,"unmetered_token_types":[],"findings":[],"price_steps":[],"days":[],"unattributed":[],"unmapped":[],
         "metered_out_of_scope":[],"corrections":[],"held":[],"meter_basis":[],"rounding":{},"applied":false,"applied_event_ids":[],
         "applied_at":null,"reverted_at":null,"run_by":"cli","created_at":"2026-06-02T00:00:00Z"}
        """
}
