import ExactJSON
import Foundation
import Hummingbird
import HummingbirdTesting
import Metering
import Testing

@testable import UsageBoxServer

/// What an outside tester of the metering API found (each answered wrongly before its fix):
/// requests that took the server down, changed stored data, leaked or ignored scope, or were
/// quietly misread. Expected answers decided before the run.
extension RouterTests {
    /// An average of 10^13 (one legal event) overflowed sum × 10^6 and killed the process.
    @Test func averagesOfHugeQuantitiesAnswerInsteadOfCrashing() async throws {
        try await app.test(.router) { client in
            let writer = try await key("acct_big", .writer)
            let big = Self.event("big", account: "acct_big", quantity: 0).replacingOccurrences(of: #""quantity":0"#, with: #""quantity":10000000000000"#)
            let stored = try await call(client, .post, "/v1/usage/batch", key: writer, body: Self.batch([big]))
            #expect(stored.json["accepted"] == .number("1"), "\(stored.text)")
            let body = #"{"from":"2026-05-01T00:00:00Z","to":"2026-06-01T00:00:00Z","account_id":"acct_big","metrics":["avg","sum"]}"#
            let avg = try await call(client, .post, "/v1/query/json", key: writer, body: body)
            #expect(avg.status == 200 && avg.text.contains("10000000000000"), "\(avg.text)")
            // One tenant's 2^63 − 1 beside another's usage: the org-wide sum says how to find it.
            let huge = Self.event("max", account: "acct_evil", quantity: 0).replacingOccurrences(
                of: #""quantity":0"#, with: #""quantity":9223372036854775807"#)
            _ = try await call(client, .post, "/v1/usage/batch", key: admin, body: Self.batch([huge]))
            let total = try await call(client, .get, "/v1/usage?\(Self.may)", key: admin)
            #expect(total.status == 400 && total.json["error"]?["field"] == .string("from") && total.text.contains("group by day"), "\(total.text)")
        }
        let a = { (sum: Int64, count: Int64) in UsageResult.average(UsageAggregate(sum: sum, count: count, min: 0, max: 0)) }
        #expect(a(Int64.max, 1) == "9223372036854775807" && a(Int64.min, 1) == "-9223372036854775808")
        #expect(a(1, 3) == "0.333333" && a(2, 3) == "0.666667" && a(-7, 2) == "-3.5" && a(10, 4) == "2.5" && a(0, 5) == "0")
        #expect(a(Int64.max, 3) == "3074457345618258602.333333" && a(-1, 3_000_000) == "0")
    }

    /// `org:acme` quoted as a client quotes it (`org%3Aacme`) read as an empty account (usage 0,
    /// verify ok); a malformed id in the path is a 400, not zeros.
    @Test func aPercentEncodedAccountInThePathIsThatAccount() async throws {
        try await app.test(.router) { client in
            _ = try await call(client, .post, "/v1/usage/batch", key: admin, body: Self.batch([Self.event("e", account: "org:acme", quantity: 77)]))
            let usage = try await call(client, .get, "/v1/accounts/org%3Aacme/usage?\(Self.may)", key: admin)
            #expect(usage.json["groups"]?.arrayValue?.first?["sum"] == .number("77"), "\(usage.text)")
            let reader = try await key("org:acme", .reader)
            let own = try await call(client, .get, "/v1/accounts/org%3Aacme/usage?\(Self.may)", key: reader)
            #expect(own.status == 200 && own.json["groups"]?.arrayValue?.first?["sum"] == .number("77"), "\(own.text)")
            let bad = try await call(client, .get, "/v1/accounts/bad%20acct/usage?\(Self.may)", key: admin)
            #expect(bad.status == 400 && bad.json["error"]?["field"] == .string("account_id"), "\(bad.text)")
        }
    }

    /// A filter naming an account the key may not see is a 403, as naming it in the path is; it
    /// answered zero.
    @Test func aFilterOnAnotherAccountIsForbidden() async throws {
        try await app.test(.router) { client in
            let reader = try await key("acct_7", .reader)
            let query = try await call(client, .get, "/v1/usage?\(Self.may)&account_id=acct_42", key: reader)
            #expect(query.status == 403 && query.json["error"]?["field"] == .string("account_id"), "\(query.text)")
            let body = #"{"from":"2026-05-01T00:00:00Z","to":"2026-06-01T00:00:00Z","filters":[{"field":"account_id","value":"acct_42"}]}"#
            let json = try await call(client, .post, "/v1/query/json", key: reader, body: body)
            #expect(json.status == 403, "\(json.text)")
            let own = try await call(client, .get, "/v1/usage?\(Self.may)&account_id=acct_7", key: reader)
            #expect(own.status == 200, "\(own.text)")
            let challenge = try await client.execute(uri: "/v1/usage?\(Self.may)", method: .get) { $0.headers[.wwwAuthenticate] }
            #expect(challenge == #"Bearer realm="usagebox""#, "a 401 names its scheme")
        }
    }

    /// A misspelt reconciliation parameter (`acount`) ran over every account; `confirm_large=maybe`
    /// was read as false; a body on apply was ignored.
    @Test func reconciliationRoutesRefuseUnknownParameters() async throws {
        try await app.test(.router) { client in
            let run = try await call(
                client, .post, "/v1/reconciliations?vendor=anthropic&from=2026-05-01&to=2026-06-01&acount=acct_42&dry_run=true", key: admin,
                body: "{}")
            #expect(run.status == 400 && run.json["error"]?["field"] == .string("acount"), "\(run.text)")
            let apply = try await call(client, .post, "/v1/reconciliations/rec_x/apply?confirm_large=maybe", key: admin)
            #expect([400, 404].contains(apply.status), "\(apply.text)")
            // A body on apply or revert was ignored: `{"confirm_large": true}` read as a confirmation
            // and was not one. Refused, naming the parameter; nothing, or `{}`, goes on.
            for (path, body, status) in [
                ("apply", #"{"confirm_large": true}"#, 400), ("revert", "x", 400), ("apply", " {} ", 404), ("revert", "", 404),
            ] {
                let r = try await call(client, .post, "/v1/reconciliations/rec_x/\(path)", key: admin, body: body)
                #expect(r.status == status && (status == 404 || r.json["error"]?["field"] == .string("body")), "\(path) \(body): \(r.text)")
                if path == "apply", status == 400 { #expect(r.text.contains("confirm_large=true"), "\(r.text)") }
            }
            let explain = try await call(client, .get, "/v1/accounts/acct_42/explain?\(Self.may)&frm=x", key: admin)
            #expect(explain.status == 400 && explain.json["error"]?["field"] == .string("frm"), "\(explain.text)")
        }
    }

    /// Verify and explain read a repeated parameter as its last value (a second `from` verified
    /// another range than the first asked, `mode=bogus&mode=deep` passed), where usage refused it;
    /// more filter values than SQLite binds were a 500; a malformed escape named no field.
    @Test func repeatedParametersAndLongFilterListsAreRefusedByName() async throws {
        try await app.test(.router) { client in
            for uri in [
                "/v1/accounts/acct_42/verify?\(Self.may)&from=2026-05-20T00:00:00Z", "/v1/accounts/acct_42/verify?\(Self.may)&mode=bogus&mode=deep",
                "/v1/accounts/acct_42/explain?\(Self.may)&to=2026-05-02T00:00:00Z",
            ] {
                let r = try await call(client, .get, uri, key: admin)
                let name = uri.contains("mode=") ? "mode" : uri.hasSuffix("from=2026-05-20T00:00:00Z") ? "from" : "to"
                #expect(r.status == 400 && r.json["error"]?["field"] == .string(name) && r.text.contains("more than once"), "\(uri): \(r.text)")
            }
            let values = (0...UsageQuery.maxFilterValues).map { JSONValue.string("m\($0)") }
            let body = JSONWriter.write(
                .object([
                    ("from", .string("2026-05-01T00:00:00Z")), ("to", .string("2026-06-01T00:00:00Z")),
                    ("filters", .array([.object([("field", .string("model_id")), ("op", .string("in")), ("value", .array(values))])])),
                    ("source", .string("raw")),
                ]))
            let long = try await call(client, .post, "/v1/query/json", key: admin, body: body)
            #expect(long.status == 400 && long.json["error"]?["field"] == .string("filters"), "\(long.text.prefix(300))")
            let bad = try await call(client, .get, "/v1/accounts/acct_42/usage?\(Self.may)&model_id=%ZZ", key: admin)
            #expect(bad.status == 400 && bad.json["error"]?["field"] == .string("query"), "\(bad.text)")
        }
    }

    /// `café` sent precomposed and decomposed in one batch was stored under the first one's bytes:
    /// the retry answered a conflict and verify called the segment corrupt. Text is kept in NFC.
    /// A unit with a NUL read as another unit; limits count characters, not bytes.
    @Test func equivalentUnicodeSpellingsAreOneAndControlCharactersAreRefused() async throws {
        try await app.test(.router) { client in
            func event(_ id: String, _ value: String) -> String {
                #"{"event_id":"\#(id)","account_id":"acct_u","meter_id":"m","quantity":1,"timestamp":"2026-05-03T00:00:00Z","dimensions":{"u":"\#(value)"}}"#
            }
            let batch = Self.batch([event("a", "caf\\u00e9"), event("b", "cafe\\u0301")])
            let first = try await call(client, .post, "/v1/usage/batch", key: admin, body: batch)
            #expect(first.json["accepted"] == .number("2"), "\(first.text)")
            let again = try await call(client, .post, "/v1/usage/batch", key: admin, body: batch)
            #expect(again.json["duplicates"] == .number("2"), "\(again.text)")
            let verify = try await call(client, .get, "/v1/accounts/acct_u/verify?\(Self.may)", key: admin)
            #expect(verify.json["ok"] == .bool(true), "\(verify.text)")
            let grouped = try await call(client, .get, "/v1/accounts/acct_u/usage?\(Self.may)&group_by=u", key: admin)
            #expect(grouped.json["groups"]?.arrayValue?.count == 1, "\(grouped.text)")
            let filtered = try await call(client, .get, "/v1/accounts/acct_u/usage?\(Self.may)&u=cafe%CC%81", key: admin)
            #expect(filtered.json["groups"]?.arrayValue?.first?["sum"] == .number("2"), "a decomposed filter finds the value: \(filtered.text)")

            // A store written before text was NFC may hold the decomposed spelling; a new event of
            // the precomposed one beside it: two rollup rows, verify clean (it found drift 2 and a
            // corrupt segment: the writer's keys compared strings canonically, the table bytes).
            _ = try await store.ingest([
                .event(
                    UsageEvent(
                        eventID: "legacy", accountID: "acct_l", meterID: "m", quantity: 1, timestamp: Timestamp(rfc3339: "2026-05-03T00:00:00Z")!,
                        dimensions: ["u": "cafe\u{301}"]))
            ])
            let next =
                #"{"event_id":"new","account_id":"acct_l","meter_id":"m","quantity":2,"timestamp":"2026-05-03T00:10:00Z","dimensions":{"u":"caf\u00e9"}}"#
            _ = try await call(client, .post, "/v1/usage/batch", key: admin, body: Self.batch([next]))
            try await store.sealOpenSegments()
            let legacy = try await call(client, .get, "/v1/accounts/acct_l/verify?\(Self.may)", key: admin)
            #expect(legacy.json["ok"] == .bool(true), "\(legacy.text)")

            let nul = #"{"event_id":"n","account_id":"acct_u","meter_id":"m2","quantity":1,"unit":"tok\u0000ens","timestamp":"2026-05-03T00:00:00Z"}"#
            let refused = try await call(client, .post, "/v1/usage/batch", key: admin, body: Self.batch([nul]))
            #expect(refused.json["errors"]?.arrayValue?.first?["field"] == .string("unit"), "\(refused.text)")
            let meter = try await call(client, .put, "/v1/meters/m3", key: admin, body: #"{"unit":"a\u0000b"}"#)
            #expect(meter.status == 400 && meter.json["error"]?["field"] == .string("unit"), "\(meter.text)")
            // `null` read as "leave it" and changed nothing; `["*"]` keeps every dimension again.
            _ = try await call(client, .put, "/v1/meters/m4", key: admin, body: #"{"rollup_dimensions":["a"]}"#)
            let null = try await call(client, .put, "/v1/meters/m4", key: admin, body: #"{"rollup_dimensions":null}"#)
            #expect(null.status == 400 && null.json["error"]?["field"] == .string("rollup_dimensions"), "\(null.text)")
            // A null unit read as "leave it" answered 200 and changed nothing.
            let nullUnit = try await call(client, .put, "/v1/meters/m4", key: admin, body: #"{"unit":null}"#)
            #expect(nullUnit.status == 400 && nullUnit.json["error"]?["field"] == .string("unit"), "\(nullUnit.text)")
            let mixed = try await call(client, .put, "/v1/meters/m4", key: admin, body: #"{"rollup_dimensions":["*","a"]}"#)
            #expect(mixed.status == 400 && mixed.json["error"]?["field"] == .string("rollup_dimensions"), "\(mixed.text)")
            let every = try await call(client, .put, "/v1/meters/m4", key: admin, body: #"{"rollup_dimensions":["*"]}"#)
            #expect(every.status == 200 && every.json["rollup_dimensions"] == .null, "\(every.text)")

            let long = String(repeating: "\\u00e9", count: 256)
            let accepted = try await call(client, .post, "/v1/usage/batch", key: admin, body: Self.batch([event("l", long)]))
            #expect(accepted.json["accepted"] == .number("1"), "256 characters, 512 bytes: \(accepted.text)")
        }
    }

    /// An account with more corrections than an answer should carry: the latest 1,000 are listed,
    /// the rest counted (40,000 made a 57 MB answer).
    @Test func explainListsAtMostAThousandCorrections() async throws {
        let corrections = (0..<1_050).map { i in
            IngestItem.event(
                UsageEvent(
                    eventID: "c\(i)", accountID: "acct_c", meterID: "m", kind: .correction, correctionRef: "ref", quantity: 1,
                    timestamp: Timestamp(microseconds: Timestamp(rfc3339: "2026-05-10T00:00:00Z")!.microseconds + Int64(i) * 1_000_000)))
        }
        _ = try await store.ingest(corrections)
        try await app.test(.router) { client in
            let explain = try await call(client, .get, "/v1/accounts/acct_c/explain?\(Self.may)", key: admin)
            #expect(explain.json["corrections"]?.arrayValue?.count == 1_000, "\(explain.text.prefix(300))")
            #expect(explain.json["corrections_omitted"] == .number("50") && explain.json["totals"]?["corrections"] == .number("1050"))
            #expect(explain.json["corrections"]?.arrayValue?.last?["event_id"] == .string("c1049"), "the latest are listed")
        }
    }
}

extension RouterTests {
    /// Second read of those fixes: a JSON-body reconciliation ignored `account` and `dry_run` in
    /// the query (an org-wide run was recorded); an admin key made for one account before such keys
    /// were refused still saw everything; a top-level account_id in a JSON query was not checked;
    /// a C1 control character passed as a unit; two confirm_large values passed on the last.
    @Test func secondReadOfTheParameterAndKeyFixes() async throws {
        // The parameters a route accepts are the ones the OpenAPI document names for it.
        #expect(
            APIOperation.named("reconcile")?.queryParameters
                == ["vendor", "from", "to", "account", "name", "invoice_scope", "meter_id", "deep_verify", "allow_drift", "allow_overlap", "dry_run"])
        #expect(APIOperation.named("verify")?.queryParameters == ["from", "to", "group_by", "mode"])
        #expect(APIOperation.named("explain")?.queryParameters == ["from", "to"] && APIOperation.named("revertReconciliation")?.queryParameters == [])
        let legacy = try await store.createKey(account: nil, role: .admin)
        try await app.test(.router) { client in
            let run = try await call(client, .post, "/v1/reconciliations?account=acct_42&dry_run=true", key: admin, body: #"{"vendor":"anthropic"}"#)
            #expect(run.status == 400 && run.json["error"]?["field"] == .string("account"), "\(run.text)")
            let query = try await call(
                client, .post, "/v1/query/json", key: admin, body: #"{"from":"2026-05-01T00:00:00Z","to":"2026-06-01T00:00:00Z","account_id":""}"#)
            #expect(query.status == 400 && query.json["error"]?["field"] == .string("account_id"), "\(query.text)")
            let c1 = #"{"event_id":"c1","account_id":"acct_42","meter_id":"m9","quantity":1,"unit":"tok\u0085ens","timestamp":"2026-05-03T00:00:00Z"}"#
            let refused = try await call(client, .post, "/v1/usage/batch", key: admin, body: Self.batch([c1]))
            #expect(refused.json["errors"]?.arrayValue?.first?["field"] == .string("unit"), "\(refused.text)")
            let twice = try await call(client, .post, "/v1/reconciliations/rec_x/apply?confirm_large=maybe&confirm_large=false", key: admin)
            #expect(twice.status == 400, "\(twice.text)")
            let get = try await call(client, .get, "/v1/reconciliations/rec_x?junk=1", key: admin)
            #expect(get.status == 400, "\(get.text)")
            #expect(try await call(client, .get, "/v1/usage?\(Self.may)", key: legacy.secret).status == 200)
        }
        // A key stored as admin for one account (as older versions allowed) is refused, not all-seeing.
        struct OldKeys: KeyStore {
            func createKey(account: String?, role: KeyRole) async throws -> (APIKey, secret: String) { throw UsageBoxError(.internal, "unused") }
            func listKeys() async throws -> [APIKey] { [] }
            func revokeKey(_ keyID: String) async throws -> APIKey { throw UsageBoxError(.internal, "unused") }
            func authenticate(secret: String) async throws -> APIKey? {
                APIKey(keyID: "key_old", accountID: "acct_1", role: .admin, createdAt: Timestamp(microseconds: 0), revokedAt: nil)
            }
        }
        let oldApp = Application(router: HTTPAPI(store: store, keys: OldKeys(), environmentAdminSecret: nil).buildRouter())
        try await oldApp.test(.router) { client in
            let answer = try await call(client, .get, "/v1/usage?\(Self.may)", key: "anything")
            #expect(answer.status == 403 && answer.text.contains("keys revoke"), "\(answer.text)")
        }
    }

    /// One reader key held 40 unfinished 15 MiB uploads (690 MB) at once. An account's keys have
    /// a few places for requests with bodies over 1 MiB; beyond them it is a 429, while small bodies go on.
    @Test func aKeyHasFewPlacesForLargeBodies() async throws {
        let api = HTTPAPI(store: store, keys: store, environmentAdminSecret: nil)
        let (key, secret) = try await store.createKey(account: "acct_42", role: .writer)
        for _ in 0..<RequestLimits().largeBodiesPerKey { try await api.largeBodies.acquire(HTTPAPI.workHolder(of: key)) }  // its places taken
        let large = Self.batch((0..<6_000).map { Self.event("big\($0)") })
        #expect(large.utf8.count > RequestLimits.largeBodyBytes)
        try await Application(router: api.buildRouter()).test(.router) { client in
            let refused = try await call(client, .post, "/v1/usage/batch", key: secret, body: large)
            #expect(refused.status == 429 && refused.text.contains("bodies over 1 MiB"), "\(refused.text.prefix(200))")
            let small = try await call(client, .post, "/v1/usage/batch", key: secret, body: Self.batch([Self.event("small")]))
            #expect(small.status == 200, "\(small.text)")
            await api.largeBodies.release(HTTPAPI.workHolder(of: key))
            let accepted = try await call(client, .post, "/v1/usage/batch", key: secret, body: large)
            #expect(accepted.status == 200 && accepted.json["accepted"] == .number("6000"), "\(accepted.text.prefix(200))")
        }
    }
}
