import ExactJSON
import Foundation
import Testing

@Suite(.serialized) struct CLITests {
    let dir: TemporaryDirectory
    let db: String

    init() throws {
        dir = try TemporaryDirectory()
        db = dir.path("u.db")
    }

    let may = ["--from", "2026-05-01T00:00:00Z", "--to", "2026-06-01T00:00:00Z"]

    func json(_ r: CLI.Result) throws -> JSONValue { try JSONParser.parse(r.stdout) }

    /// A dimension named like a metric (`sum`, `count`, …): grouped as `sum`, each group's key was
    /// written under the metric's name and overwritten by it, so two teams came back as two
    /// nameless groups. It is reached as `dim.sum`, under that name; `sum` alone names the field.
    @Test func aDimensionNamedLikeAMetricKeepsItsGroups() throws {
        // Two events per case, quantities 10 and 20; the groups each must come back as. The second
        // case: a dimension `hour` and one named `dim.hour`, each group key under its own name.
        let cases: [(dimensions: [String], groupBy: [String], groups: [String])] = [
            (
                [#""sum":"team_red","count":"x""#, #""sum":"team_blue","count":"x""#], ["--group-by", "dim.sum,dim.count"],
                [#"{"dim.sum":"team_blue","dim.count":"x","sum":20,"count":1}"#, #"{"dim.sum":"team_red","dim.count":"x","sum":10,"count":1}"#]
            ),
            (
                [#""hour":"A","dim.hour":"X""#, #""hour":"B","dim.hour":"X""#], ["--group-by", "dim.hour,dim.dim.hour", "--filter", "dim.dim.hour=X"],
                [#"{"dim.hour":"A","dim.dim.hour":"X","sum":10,"count":1}"#, #"{"dim.hour":"B","dim.dim.hour":"X","sum":20,"count":1}"#]
            ),
        ]
        for (n, c) in cases.enumerated() {
            let lines = c.dimensions.enumerated().map { i, dims in
                #"{"event_id":"c\#(n)-\#(i)","account_id":"acct\#(n)","meter_id":"m","quantity":\#((i + 1) * 10),"timestamp":"2026-05-03T1\#(i):00:00Z","dimensions":{\#(dims)}}"#
            }
            let events = try dir.write("case\(n).ndjson", lines.joined(separator: "\n") + "\n")
            #expect(try CLI.run(["ingest", "--db", db, events]).status == 0)
            let grouped = try CLI.run(["usage", "--db", db, "--account", "acct\(n)", "--json"] + c.groupBy + may)
            #expect(c.groups.allSatisfy(grouped.stdout.contains), "\(grouped.stdout)\(grouped.stderr)")
        }
        for name in ["sum", "count", "min", "max", "avg"] {
            let refused = try CLI.run(["usage", "--db", db, "--account", "acct0", "--group-by", name, "--json"] + may)
            #expect(refused.status != 0 && refused.stderr.contains("'\(name)' cannot be grouped or filtered on"), "\(name): \(refused.stderr)")
        }
        // As `--server` refuses it: the same command answered on a file and not through a server (tester O).
        let hours = try CLI.run([
            "usage", "--db", db, "--account", "acct0", "--group-by", "hour", "--from", "2025-01-01T00:00:00Z", "--to", "2026-12-01T00:00:00Z",
        ])
        #expect(hours.status != 0 && hours.stderr.contains("grouping by hour over this range gives 16776 buckets"), "\(hours.stderr)")
    }

    /// An ingest that fails part-way (a file it cannot open, a server gone) said only the
    /// failure: whether anything was stored, and whether to run it again, was left to guess (an
    /// outside tester). It says how many events were answered before it, and that a rerun is safe.
    @Test func anIngestThatFailsPartWaySaysWhatWasAnswered() throws {
        let lines = (1...3).map { #"{"event_id":"p\#($0)","account_id":"acct_p","meter_id":"m","quantity":1,"timestamp":"2026-05-02T00:00:00Z"}"# }
        let good = try dir.write("good.ndjson", lines.joined(separator: "\n") + "\n")
        let r = try CLI.run(["ingest", "--db", db, "--batch-size", "2", good, dir.path("missing.ndjson")])
        #expect(r.status != 0 && r.stderr.contains("missing.ndjson") && r.stderr.contains("the first 3 events read were answered"), "\(r.stderr)")
        let again = try CLI.run(["ingest", "--db", db, "--json", good])
        #expect(try json(again)["duplicates"] == .int(3), "\(again.stdout)")
    }

    @Test func ingestsNDJSONJSONAndCSVAndTotalsWithJSON() async throws {
        let nd = try dir.write(
            "a.ndjson",
            """
            {"event_id":"n1","account_id":"acct_42","meter_id":"claude_tokens","model_id":"m","quantity":10,"timestamp":"2026-05-02T00:00:00Z","dimensions":{"token_type":"input"}}

            {"event_id":"n2","account_id":"acct_42","meter_id":"claude_tokens","model_id":"m","quantity":"20","timestamp":"2026-05-02T00:00:00Z"}
            {not json}
            """)
        let doc = try dir.write(
            "b.json",
            #"{"events": [{"event_id":"j1","account_id":"acct_42","meter_id":"claude_tokens","model_id":"m","quantity":5,"timestamp":"2026-05-03T00:00:00Z"}]}"#
        )
        let csv = try dir.write(
            "c.csv",
            "\u{FEFF}event_id,account_id,meter_id,model_id,quantity,timestamp,token_type,feature\r\nc1,acct_42,claude_tokens,m,7,2026-05-04T00:00:00Z,output,\r\nc2,acct_42,claude_tokens,m,1.5,2026-05-04T00:00:00Z,output,chat\r\n"
        )
        let r = try CLI.run(["ingest", "--db", db, "--json", nd, doc, csv])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try json(r)
        #expect(j["accepted"] == .int(4))
        #expect(j["rejected"] == .int(2))
        let errors = j["errors"]?.arrayValue ?? []
        #expect(errors.map { $0["line"] } == [.int(4), .int(3)], "errors name the line")
        #expect(errors.map { $0["file"]?.stringValue } == [nd, csv], "errors name the file")
        #expect(errors.map { $0["code"]?.stringValue } == ["malformed_json", "invalid_quantity"])

        let again = try CLI.run(["ingest", "--db", db, "--json", "--strict", nd])
        #expect(again.status == 4, "--strict exits 4 on a rejection")
        #expect(try json(again)["duplicates"] == .int(2))

        let usage = try CLI.run(["usage", "--db", db, "--account", "acct_42", "--group-by", "token_type", "--json"] + may)
        #expect(
            usage.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                == #"{"source":"rollup","groups":[{"token_type":null,"sum":25,"count":2},{"token_type":"input","sum":10,"count":1},{"token_type":"output","sum":7,"count":1}]}"#
        )
        let table = try CLI.run(["usage", "--db", db, "--account", "acct_42"] + may)
        #expect(table.stdout.contains("42") && table.stdout.contains("source: rollup"))
    }

    @Test func readsStandardInput() throws {
        let r = try CLI.run(
            ["ingest", "--db", db, "--json", "-"],
            stdin: #"{"event_id":"s1","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-01T00:00:00Z"}"# + "\n")
        #expect(try json(r)["accepted"] == .int(1))
    }

    @Test func badInputNamesFileAndLineAndKeepsStoredEvents() throws {
        let good = try dir.write("good.ndjson", #"{"event_id":"g1","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-01T00:00:00Z"}"# + "\n")
        #expect(try CLI.run(["ingest", "--db", db, good]).status == 0)
        let doc = try dir.write(
            "doc.json",
            #"{"events": [{"event_id":"d1","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-01T00:00:00Z"}, {"event_id":"d2","account_id":"a","meter_id":"m","quantity":-1,"timestamp":"2026-05-01T00:00:00Z"}]}"#
        )
        let docErrors = try json(try CLI.run(["ingest", "--db", db, "--json", doc]))["errors"]?.arrayValue ?? []
        #expect(
            docErrors.count == 1 && docErrors[0]["index"] == .int(1) && docErrors[0]["line"] == nil,
            "inside a JSON document the index, not a made-up line, says which event")
        let badJSON = try dir.write("bad.json", "{\"events\": [\n  {\"event_id\": \"x\",\n  oops]}")
        let r = try CLI.run(["ingest", "--db", db, badJSON])
        #expect(r.status == 1)
        #expect(r.stderr.contains("bad.json:3:"), "\(r.stderr)")
        // A misspelt second list beside "events" was dropped unread, exit 0: refused, nothing stored.
        let typo = try dir.write(
            "typo.json",
            #"{"events": [{"event_id":"t1","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-01T00:00:00Z"}], "evnets": []}"#)
        let t = try CLI.run(["ingest", "--db", db, typo])
        #expect(t.status == 1 && t.stderr.contains("typo.json") && t.stderr.contains("'evnets'"), "\(t.stderr)")
        let badCSV = try dir.write(
            "bad.csv", "event_id,account_id,meter_id,quantity,timestamp\ne1,a,m,1,2026-05-01T00:00:00Z\ne2,a,m,\"1,2026-05-01T00:00:00Z\n")
        let c = try CLI.run(["ingest", "--db", db, badCSV])
        #expect(c.status == 1)
        #expect(c.stderr.contains("bad.csv:3"), "\(c.stderr)")
        let missing = try CLI.run(["ingest", "--db", db, dir.path("nope.ndjson")])
        #expect(missing.status == 1 && missing.stderr.contains("nope.ndjson"))
        let sum = try CLI.run(["query", "sql", "--db", db, "--json", "SELECT COUNT(*) FROM usage_events WHERE event_id IN ('g1', 't1')"])
        #expect(try json(sum)["rows"] == .array([.array([.int(1)])]), "what was stored before stays, and t1 was not stored")
        for timeout in ["nan", "inf", "0", "-1"] {
            #expect(try CLI.run(["query", "sql", "--db", db, "--timeout", timeout, "SELECT 1"]).status == 2, "--timeout \(timeout) meant no limit")
        }
    }

    /// A CSV naming a column twice kept the last value silently (5 sent, 6 stored); a column and
    /// the dimensions column disagreeing likewise. Refused naming the file and line, nothing stored.
    /// An admin key cannot be limited to one account (it was listed as acct_1 and saw everything).
    @Test func ambiguousCSVColumnsAndAnAdminKeyForOneAccountAreRefused() throws {
        let twice = try dir.write("twice.csv", "event_id,account_id,meter_id,quantity,timestamp,quantity\ne1,a,m,5,2026-05-01T00:00:00Z,6\n")
        let r = try CLI.run(["ingest", "--db", db, twice])
        #expect(r.status == 1 && r.stderr.contains("twice.csv:1") && r.stderr.contains("'quantity' twice"), "\(r.stderr)")
        let clash = try dir.write(
            "clash.csv",
            "event_id,account_id,meter_id,quantity,timestamp,token_type,dimensions\ne2,a,m,5,2026-05-01T00:00:00Z,input,\"{\"\"token_type\"\": \"\"output\"\"}\"\n"
        )
        let c = try json(try CLI.run(["ingest", "--db", db, "--json", clash]))
        #expect(c["errors"]?.arrayValue?.first?["field"] == .string("dimensions.token_type"), "\(c)")
        let count = try CLI.run(["query", "sql", "--db", db, "--json", "SELECT COUNT(*) FROM usage_events"])
        #expect(try json(count)["rows"] == .array([.array([.int(0)])]))
        let admin = try CLI.run(["keys", "create", "--db", db, "--account", "acct_1", "--role", "admin"])
        #expect(admin.status == 1 && admin.stderr.contains("admin key sees every account"), "\(admin.stderr)")
    }

    @Test func exitCodes() throws {
        #expect(try CLI.run(["usage", "--db", db, "--account", "a"]).status == 2, "a missing option is bad usage")
        #expect(try CLI.run(["frobnicate"]).status == 2)
        #expect(try CLI.run(["ingest", "--db", db, "--batch-size", "0", "x"]).status == 2)
        // A usage error found while the subcommand runs shows that subcommand's usage, not the root's.
        let filter = try CLI.run([
            "usage", "--db", db, "--account", "a", "--from", "2026-05-01T00:00:00Z", "--to", "2026-06-01T00:00:00Z", "--filter", "token_type",
        ])
        #expect(filter.status == 2 && filter.stderr.contains("Usage: usagebox usage ") && filter.stderr.contains("'usagebox usage --help'"), "\(filter.stderr)")
        let badTime = try CLI.run(["usage", "--db", db, "--account", "a", "--from", "yesterday", "--to", "2026-06-01T00:00:00Z"])
        #expect(badTime.status == 1 && badTime.stderr.contains("from"))
        let reversed = try CLI.run(["usage", "--db", db, "--account", "a", "--from", "2026-06-01T00:00:00Z", "--to", "2026-05-01T00:00:00Z"])
        #expect(reversed.status == 1)
        #expect(try CLI.run(["--help"]).status == 0)
        #expect(try CLI.run(["query", "sql", "--db", db, "DROP TABLE event"]).status == 1)
    }

    @Test func periodsMetersExplainVerifyAndJSONQuery() throws {
        let file = try dir.write(
            "e.ndjson",
            """
            {"event_id":"u1","account_id":"acct_42","meter_id":"claude_tokens","model_id":"s","quantity":100,"timestamp":"2026-05-02T00:00:00Z","dimensions":{"token_type":"input"}}
            {"event_id":"u2","account_id":"acct_42","meter_id":"claude_tokens","model_id":"s","quantity":50,"timestamp":"2026-05-02T00:00:00Z","dimensions":{"token_type":"output"}}
            """)
        #expect(try CLI.run(["ingest", "--db", db, file]).status == 0)
        let close = try CLI.run(["periods", "close", "--db", db, "--account", "acct_42", "--period", "2026-05", "--json"])
        #expect(try json(close)["period"] == .string("2026-05"))
        let late = try dir.write(
            "late.ndjson",
            """
            {"event_id":"u3","account_id":"acct_42","meter_id":"claude_tokens","model_id":"s","quantity":1,"timestamp":"2026-05-03T00:00:00Z"}
            {"event_id":"fix","account_id":"acct_42","meter_id":"claude_tokens","model_id":"s","kind":"Correction","correction_ref":"recon_may_2026_vendor_anthropic","quantity":-20,"timestamp":"2026-05-31T23:59:59Z","dimensions":{"source":"vendor_reconciliation"}}
            """)
        let r = try json(try CLI.run(["ingest", "--db", db, "--json", late]))
        #expect(r["accepted"] == .int(1) && r["rejected"] == .int(1))
        #expect(r["errors"]?.arrayValue?.first?["code"] == .string("period_closed"))
        let explain = try json(try CLI.run(["explain", "--db", db, "--account", "acct_42", "--json"] + may))
        #expect(explain["totals"] == .object([("usage", .int(150)), ("corrections", .int(-20)), ("net", .int(130)), ("count", .int(3))]))
        #expect(explain["corrections"]?.arrayValue?.first?["post_close"] == .bool(true))
        // Dates read as reconcile reads them: that day at 00:00 UTC.
        let byDates = try json(try CLI.run(["explain", "--db", db, "--account", "acct_42", "--json", "--from", "2026-05-01", "--to", "2026-06-01"]))
        #expect(byDates["totals"] == explain["totals"])
        // The by-day table adds corrections in and says so (its column read "metered"); with
        // --json it was left out without a word: refused, naming the read that gives it.
        let table = try CLI.run(["explain", "--db", db, "--account", "acct_42", "--by", "day"] + may)
        #expect(table.status == 0 && table.stdout.contains("usage + corrections"), "\(table.stdout)")
        let both = try CLI.run(["explain", "--db", db, "--account", "acct_42", "--by", "day", "--json"] + may)
        #expect(both.status != 0 && both.stderr.contains("usage --account acct_42 --group-by day,model_id,token_type --json"), "\(both.stderr)")
        let verify = try json(try CLI.run(["verify", "--db", db, "--account", "acct_42", "--group-by", "day", "--json"] + may))
        #expect(verify["ok"] == .bool(true) && verify["drift"] == .int(0))
        #expect(verify["days"]?.arrayValue?.count == 31)
        let meters = try json(try CLI.run(["meters", "--db", db, "--json"]))
        #expect(meters["meters"]?.arrayValue?.first?["unit"] == .null)
        let set = try CLI.run(["meters", "set", "--db", db, "claude_tokens", "--unit", "tokens", "--rollup-dimensions", "token_type", "--json"])
        #expect(try json(set)["rollup_dimensions"] == .array([.string("token_type")]))
        let bySource = try json(try CLI.run(["usage", "--db", db, "--account", "acct_42", "--group-by", "dim.source", "--json"] + may))
        #expect(bySource["source"] == .string("raw"))
        let q = try dir.write(
            "q.json",
            #"{"account_id":"acct_42","from":"2026-05-01T00:00:00Z","to":"2026-06-01T00:00:00Z","filters":[{"field":"token_type","op":"in","value":["input","output"]}],"group_by":["model_id"],"metrics":["sum","count"]}"#
        )
        let jq = try CLI.run(["query", "json", "--db", db, "--json", q])
        #expect(jq.stdout.contains(#"{"model_id":"s","sum":150,"count":2}"#), "\(jq.stdout)\(jq.stderr)")
        let list = try json(try CLI.run(["periods", "--db", db, "--account", "acct_42", "--json"]))
        #expect(list["periods"]?.arrayValue?.count == 1)
    }

    @Test func dbComesFromTheEnvironmentOrTheWorkingDirectory() throws {
        let file = try dir.write("e.ndjson", #"{"event_id":"x","account_id":"a","meter_id":"m","quantity":3,"timestamp":"2026-05-01T00:00:00Z"}"# + "\n")
        #expect(try CLI.run(["ingest", file], cwd: dir.path).status == 0)
        #expect(FileManager.default.fileExists(atPath: dir.path("usagebox.db")))
        let env = try CLI.run(["usage", "--account", "a", "--json"] + may, env: ["USAGEBOX_DB": dir.path("usagebox.db")])
        #expect(env.stdout.contains("\"sum\":3"))
    }

    /// A read of a mistyped store path answered from a new empty store (no usage, no runs) and
    /// left the file behind: commands that only read, or reconcile against what is stored, refuse
    /// a path with no store; ingest and `meters set` create one.
    @Test func aReadOfAPathWithNoStoreIsRefusedAndCreatesNothing() throws {
        let missing = dir.path("typo.db")
        for args in [
            ["usage", "--account", "a"] + may, ["verify", "--account", "a"] + may, ["reconcile", "list"], ["reconcile", "show", "rec_1"],
            ["query", "sql", "SELECT 1"], ["meters"],
        ] {
            let r = try CLI.run(args + ["--db", missing])
            #expect(r.status == 1 && r.stderr.contains("no store at \(missing)"), "\(args): \(r.stderr)")
        }
        #expect(try CLI.run(["usage", "--account", "a"] + may, env: ["USAGEBOX_DB": missing]).stderr.contains("no store at"))
        for keys in [["keys", "list"], ["keys", "revoke", "key_1"]] {
            #expect(try CLI.run(keys + ["--db", missing]).stderr.contains("no store at"), "\(keys)")
        }
        let backup = try CLI.run(["backup", "--db", missing, "--to", dir.path("b.db")])
        #expect(backup.status == 1 && backup.stderr.contains("no store at") && !FileManager.default.fileExists(atPath: dir.path("b.db")))
        #expect(!FileManager.default.fileExists(atPath: missing))
        #expect(try CLI.run(["meters", "set", "--db", missing, "m", "--unit", "tokens"]).status == 0)
        #expect(try CLI.run(["usage", "--db", missing, "--account", "a"] + may).status == 0)
    }

    @Test func reconcileFromTheCommandLine() throws {
        #expect(try CLI.run(["demo", "--db", db, "--data-only"]).status == 0)
        let invoice = try dir.write(
            "may.json",
            String(
                decoding: try Data(
                    contentsOf: URL(fileURLWithPath: #filePath)
                        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                        .appendingPathComponent("Plugins/Anthropic/Examples/cost_report_2026_05.json")), as: UTF8.self))
        let args = ["reconcile", "--db", db, "--invoice", invoice] + may
        let md = try CLI.run(args + ["--vendor", "anthropic", "--account", "acct_42", "--format", "markdown"])
        #expect(
            md.status == 0 && md.stdout.hasPrefix("# Reconciliation rec_")
                && md.stdout.contains("| claude-sonnet-4-5 | 191,400,000 | 197,920,000 | +6,520,000 |"))
        let auto = try CLI.run(args + ["--vendor", "auto", "--format", "json"])
        #expect(auto.stderr.contains("--vendor auto: anthropic (admin-cost-report)"))
        let report = try json(auto)
        #expect(report["account_id"] == .null && report["corrections"] == .array([]), "without an account nothing is attributable")
        #expect(report["verdict"] == .string("conclusive"))
        let badRules = try dir.write("rules.yaml", "version: 1\nrules:\n  - id: x\n    when: {tokn_type: input}\n    class: pass_through\n")
        let r = try CLI.run(args + ["--vendor", "anthropic", "--rules", badRules])
        #expect(r.status == 1 && r.stderr.contains("rules.yaml:4:") && r.stderr.contains("unknown condition"), "\(r.stderr)")
        #expect(r.stderr.contains("(field: rules)"), "the option given, not the API's rules_yaml: \(r.stderr)")
        let badCard = try dir.write(
            "card.yaml",
            "schema: ratecard/v1\nvendor: x\ncurrency: USD\ncard_version: \"1\"\nmodels:\n  m:\n    prices:\n      - {from: \"2026-01-01\", rates: {input: 3}, src: a}\n"
        )
        let c = try CLI.run(args + ["--vendor", "anthropic", "--rate-card", badCard])
        #expect(c.status == 1 && c.stderr.contains("card.yaml:8:") && c.stderr.contains("written as a number"), "\(c.stderr)")
        #expect(c.stderr.contains("(field: rate_card)"), "\(c.stderr)")
        let byDay = try CLI.run(args + ["--vendor", "anthropic", "--account", "acct_42", "--by", "day"])
        #expect(byDay.status == 0 && byDay.stdout.contains("by day (UTC):") && byDay.stdout.contains("2026-05-17  claude-sonnet-4-5  input"), "\(byDay.stderr)")
        let recorded = try json(try CLI.run(args + ["--vendor", "anthropic", "--account", "acct_42", "--json"]))
        let noStep = try CLI.run(["ratecards", "propose", "--from-report", recorded["id"]!.stringValue!, "--db", db])
        #expect(noStep.status == 1 && noStep.stderr.contains("found no price step"), "\(noStep.stderr)")
        let apply = try CLI.run(args + ["--vendor", "anthropic", "--account", "acct_42", "--apply", "--format", "json"])
        #expect(try json(apply)["applied"] == .bool(true))
        // Drift stops the run with exit 3: a rollup changed behind the store's back.
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        sqlite.arguments = [db, "UPDATE rollup_hour SET sum = sum + 1 WHERE (key_id, hour) = (SELECT key_id, hour FROM rollup_hour LIMIT 1)"]
        try sqlite.run()
        sqlite.waitUntilExit()
        let drift = try CLI.run(args + ["--vendor", "anthropic", "--account", "acct_42"])
        #expect(drift.status == 3 && drift.stderr.contains("verify found drift"), "\(drift.stderr)")
        #expect(try CLI.run(args + ["--vendor", "anthropic", "--account", "acct_42", "--allow-drift"]).status == 0)
        let vendors = try json(try CLI.run(["vendors", "--json"]))
        #expect(vendors["vendors"]?.arrayValue?.first?["formats"] == .array([.string("csv"), .string("json")]))
        #expect(try CLI.run(["ratecards", "show", "anthropic"]).stdout.contains("card_version: \"2026-11-30.1\""))
    }

    @Test func reconcileRefusesToApplyAnInconclusiveRunAndRevertsAnAppliedOne() throws {
        #expect(try CLI.run(["demo", "--db", db, "--data-only"]).status == 0)
        let text = String(
            decoding: try Data(
                contentsOf: URL(fileURLWithPath: #filePath)
                    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                    .appendingPathComponent("Plugins/Anthropic/Examples/cost_report_2026_05.json")), as: UTF8.self)
        let page = try dir.write("page1.json", text.replacingOccurrences(of: "\"has_more\": false", with: "\"has_more\": true"))
        let dates = ["--from", "2026-05-01", "--to", "2026-06-01", "--vendor", "anthropic", "--account", "acct_42", "--db", db]
        let refused = try CLI.run(["reconcile", "--invoice", page, "--apply"] + dates)
        #expect(refused.status == 5 && refused.stderr.contains("inconclusive") && refused.stdout.contains("VERDICT: INCONCLUSIVE"), "\(refused.stderr)")
        #expect(refused.stdout.contains("to make it conclusive: fetch every page"))
        let full = try dir.write("may.json", text)
        let applied = try json(try CLI.run(["reconcile", "--invoice", full, "--apply", "--json"] + dates))
        #expect(applied["verdict"] == .string("conclusive") && applied["applied"] == .bool(true))
        let id = try #require(applied["id"]?.stringValue)
        let again = try CLI.run(["reconcile", "apply", id, "--db", db])
        #expect(again.status == 0 && again.stdout.contains("duplicates 1"), "\(again.stderr)")
        let reverted = try CLI.run(["reconcile", "revert", id, "--db", db, "--json"])
        let revertedJSON = try json(reverted)
        #expect(reverted.status == 0 && revertedJSON["accepted"] == .int(1), "\(reverted.stderr)")
        let usage = try json(
            try CLI.run(["usage", "--db", db, "--account", "acct_42", "--from", "2026-05-01T00:00:00Z", "--to", "2026-06-01T00:00:00Z", "--json"]))
        #expect(usage["groups"]?.arrayValue?.first?["sum"] == .int(321_640_000), "the revert took the correction back")
        // Each writing command seals what it wrote as it ends, as ingest does (apply's and revert's
        // corrections were left in an open segment).
        let explained = try json(
            try CLI.run(["explain", "--db", db, "--account", "acct_42", "--from", "2026-05-01T00:00:00Z", "--to", "2026-06-01T00:00:00Z", "--json"]))
        let segments = explained["segments"]?.arrayValue ?? []
        #expect(segments.count >= 3 && segments.allSatisfy { $0["sealed_at"] != nil && $0["sealed_at"] != .null }, "\(segments)")
        let offset = try CLI.run([
            "reconcile", "--invoice", full, "--db", db, "--vendor", "anthropic", "--from", "2026-05-01T00:00:00+02:00", "--to", "2026-06-01",
        ])
        #expect(offset.status == 1 && offset.stderr.contains("UTC"))
    }

    @Test func rulesTestRunsATeamsExamples() throws {
        let good = try dir.write(
            "team.yaml",
            """
            version: 1
            rules:
              - id: evals-are-overhead
                when: {account: "acct_internal*"}
                class: pass_through
                reason: internal_evals
                examples:
                  - {model: claude-sonnet-4-5, token_type: input, account: acct_internal_1, quantity: 5000, expect: pass_through}
                  - {model: claude-sonnet-4-5, token_type: input, account: acct_42, quantity: 5000, expect: metering_gap, expect_rule: metered-residual}
            """)
        let pass = try CLI.run(["rules", "test", good])
        #expect(pass.status == 0 && pass.stdout.contains("2 passed, 0 failed"), "\(pass.stdout)\(pass.stderr)")
        let bad = try dir.write(
            "bad.yaml",
            """
            version: 1
            rules:
              - id: everything-is-overhead
                when: {}
                class: pass_through
                examples:
                  - {model: claude-sonnet-4-5, token_type: input, account: acct_42, quantity: 520000, expect: metering_gap}
            """)
        let fail = try CLI.run(["rules", "test", bad])
        #expect(
            fail.status == 1 && fail.stdout.contains("FAIL") && fail.stdout.contains("bad.yaml:7") && fail.stdout.contains("expected metering_gap"),
            "\(fail.stdout)")
        #expect(try CLI.run(["rules"]).stdout.contains("id: metered-residual"), "plain `rules` prints the defaults")
        // A name no card knows is warned (tester N), unless the card the rules run against names it.
        let own = try dir.write(
            "own.yaml",
            """
            version: 1
            rules:
              - id: finetune-overhead
                when: {model: acme-ft-1, token_type: audio_input}
                class: pass_through
            """)
        let warned = try CLI.run(["rules", "test", own, "--json"])
        let warnings = try JSONParser.parse(warned.stdout)["warnings"]?.arrayValue ?? []
        #expect(warned.status == 0 && warnings.count == 2, "\(warned.stdout)")
        let card = try dir.write(
            "acme.yaml",
            """
            schema: ratecard/v1
            vendor: acme
            currency: USD
            unit: per_million_tokens
            card_version: "1"
            sources:
              acme_pricing: {url: "https://acme.example/pricing", retrieved: "2026-11-01"}
            token_types: [input, output, audio_input]
            models:
              acme-ft-1:
                prices:
                  - {from: "2026-01-01", rates: {input: "1", output: "2", audio_input: "3"}, src: [acme_pricing]}
            """)
        let known = try CLI.run(["rules", "test", own, "--rate-card", card])
        #expect(known.status == 0 && !known.stdout.contains("warning:"), "\(known.stdout)\(known.stderr)")
    }

    /// `export focus --output` writes where the path leads, as the shell's `>` does: it replaced a
    /// symlink (or a device, `/dev/null` as root) with a new file (tester O2).
    @Test func exportWritesThroughTheOutputPath() throws {
        let events = try dir.write(
            "e.ndjson",
            #"{"event_id":"e1","account_id":"acct_1","meter_id":"claude_tokens","model_id":"claude-sonnet-4-5","quantity":5,"unit":"tokens","timestamp":"2026-05-02T00:00:00Z","dimensions":{"token_type":"input"}}"#
                + "\n")
        #expect(try CLI.run(["ingest", "--db", db, events]).status == 0)
        let target = try dir.write("target.csv", "old\n"), link = dir.path("link.csv")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let r = try CLI.run(["export", "focus", "--db", db, "--output", link] + may)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
        #expect(try String(contentsOfFile: target, encoding: .utf8).hasPrefix("AvailabilityZone,BilledCost,"))
    }

    @Test func demoTellsTheKataFromAnyDirectory() throws {
        let r = try CLI.run(["demo"], cwd: "/")
        #expect(r.status == 0, "\(r.stderr)")
        for expected in [
            "\"sum\": 42180000", "\"sum\": 191400000", "\"sum\": 88060000", "\"count\": 28755", "\"rollup_sum\": 321640000",
            "\"drift\": 0", "\"sum\": 122900000", "\"count\": 14378", "\"sum\": 68500000", "\"count\": 14377", "chain head",
            "claude-sonnet-4-5    191,400,000     197,920,000  +6,520,000", "TOTAL                321,640,000     328,160,000  +6,520,000",
            "cache_read +6,000,000 tokens ($1.80): pass_through", "input +520,000 tokens ($1.56): metering_gap",
            "recon_may_2026_vendor_anthropic", "1 duplicate(s), 0 new",
            "claude-sonnet-4-5 input under-metered since 2026-05-17 on acct_42: +520,000 tokens over 15 day(s)",
            "TOTAL              321,640,000      520,000  322,160,000  45,898",
        ] {
            #expect(r.stdout.contains(expected), "demo output lacks \(expected)")
        }
    }
}
