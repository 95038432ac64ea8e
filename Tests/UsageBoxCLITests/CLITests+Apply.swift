import ExactJSON
import Foundation
import Metering
import Testing
import UsageBoxApp

extension CLITests {
    /// `reconcile apply ID` on a run holding a large correction for review printed "applied …:
    /// accepted 1" and nothing of the held one, where `reconcile … --apply` names it.
    @Test func applyingARecordedRunNamesTheCorrectionsItHeld() throws {
        // The kata month, with Opus output lost May 5–25: a gap large enough to be held for review.
        var lines: [String] = []
        for e in DemoData.events() {
            let day = Int(e.timestamp.dayString.suffix(2)) ?? 0
            if e.modelID == "claude-opus-4-8", e.dimensions.contains(where: { $0.key == "token_type" && $0.value == "output" }), (5...25).contains(day) {
                continue
            }
            lines.append(
                JSONWriter.write(
                    .object([
                        ("event_id", .string(e.eventID)), ("account_id", .string(e.accountID)), ("meter_id", .string(e.meterID)),
                        ("model_id", .string(e.modelID ?? "")), ("quantity", .int(e.quantity)), ("unit", .string(e.unit ?? "tokens")),
                        ("timestamp", .string(e.timestamp.rfc3339)),
                        ("dimensions", .object(e.dimensions.map { ($0.key, JSONValue.string($0.value)) })),
                    ])))
        }
        let events = try dir.write("events.ndjson", lines.joined(separator: "\n") + "\n")
        #expect(try CLI.run(["ingest", "--db", db, "--progress", "none", events]).status == 0)
        let invoice = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Plugins/Anthropic/Examples/cost_report_2026_05.json").path
        let run = try json(
            try CLI.run([
                "reconcile", "--invoice", invoice, "--db", db, "--vendor", "anthropic", "--from", "2026-05-01", "--to", "2026-06-01", "--account",
                "acct_42", "--json",
            ]))
        #expect(run["held"]?.arrayValue?.count == 1, "\(run["held"] ?? .null)")
        let id = try #require(run["id"]?.stringValue)
        let applied = try CLI.run(["reconcile", "apply", id, "--db", db])
        #expect(
            applied.status == 0 && applied.stdout.contains("1 held correction(s) not posted") && applied.stdout.contains("--confirm-large"), "\(applied.stdout)"
        )
        let confirmed = try CLI.run(["reconcile", "apply", id, "--db", db, "--confirm-large"])
        #expect(confirmed.status == 0 && !confirmed.stdout.contains("held correction"), "\(confirmed.stdout)")
        // The recorded run, listed: applied, its proposed correction counted (the held one apart).
        let listed = try CLI.run(["reconcile", "list", "--db", db])
        let row = listed.stdout.split(separator: "\n").first { $0.hasPrefix(id) }.map(String.init) ?? ""
        #expect(
            listed.status == 0 && row.contains("anthropic") && row.contains("2026-05") && row.contains("acct_42") && row.contains("yes"),
            "\(listed.stdout) \(listed.stderr)")
        let runs = try json(try CLI.run(["reconcile", "list", "--db", db, "--json"]))["reconciliations"]?.arrayValue ?? []
        #expect(
            runs.map { $0["id"]?.stringValue } == [id] && runs.first?["applied"] == .bool(true)
                && runs.first?["corrected_accounts"] == .array([.string("acct_42")]))
        #expect(try CLI.run(["reconcile", "list", "--db", db, "--account", "acct_7"]).stdout.contains("no recorded reconciliations"))
        #expect(
            try CLI.run(["reconcile", "list", "--db", db, "--before", "2026-01-01"]).stdout.contains("no recorded reconciliations before 2026-01-01T00:00:00Z"))
        // A full page with nothing after it says no more (it printed a cursor to an empty page).
        let only = try CLI.run(["reconcile", "list", "--db", db, "--limit", "1"])
        #expect(only.status == 0 && only.stdout.contains(id) && !only.stdout.contains("more:"), "\(only.stdout)")
        // With a second run, the first page says where the next starts, as the flags take it.
        let again = try json(
            try CLI.run([
                "reconcile", "--invoice", invoice, "--db", db, "--vendor", "anthropic", "--from", "2026-05-01", "--to", "2026-06-01", "--account",
                "acct_42", "--json",
            ]))
        let newer = try #require(again["id"]?.stringValue)
        let page = try CLI.run(["reconcile", "list", "--db", db, "--limit", "1"])
        #expect(page.stdout.contains(newer) && !page.stdout.contains(id), "\(page.stdout)")
        let more = try #require(page.stdout.split(separator: "\n").last { $0.hasPrefix("more: ") }, "\(page.stdout)")
        let flags = more.split(separator: " ").map(String.init).drop { $0 != "--before" }
        let next = try CLI.run(["reconcile", "list", "--db", db, "--limit", "1"] + flags)
        #expect(next.status == 0 && next.stdout.contains(id) && !next.stdout.contains(newer) && !next.stdout.contains("more:"), "\(next.stdout) \(next.stderr)")
        let alone = try CLI.run(["reconcile", "list", "--db", db, "--before-id", id])
        #expect(alone.status != 0 && alone.stderr.contains("--before-id goes with --before"), "\(alone.stderr)")
        // And shown again as it stands now, in run's forms.
        let shown = try json(try CLI.run(["reconcile", "show", id, "--db", db, "--json"]))
        #expect(shown["id"]?.stringValue == id && shown["applied"] == .bool(true) && shown["applied_event_ids"]?.arrayValue?.count == 2)
        let table = try CLI.run(["reconcile", "show", id, "--db", db, "--by", "day"])
        #expect(table.status == 0 && table.stdout.contains("claude-opus-4-8") && table.stdout.contains("2026-05-25"), "\(table.stdout)")
        let unknown = try CLI.run(["reconcile", "show", "rec_none", "--db", db])
        #expect(unknown.status != 0 && unknown.stderr.contains("no reconciliation rec_none"), "\(unknown.stderr)")
        let notAnAccount = try CLI.run(["reconcile", "list", "--db", db, "--account", ""])
        #expect(notAnAccount.status != 0 && notAnAccount.stderr.contains("--account"), "\(notAnAccount.stderr)")
        let refused = try CLI.run(["reconcile", "list", "--db", db, "--limit", "0"])
        #expect(refused.status != 0 && refused.stderr.contains("--limit is a whole number from 1 to 200"), "\(refused.stderr)")
    }
}

extension CLITests {
    /// `ratecards propose` on a run priced with a proposed card (`--rate-card FILE`) builds on that
    /// card: it was proposed against the shipped one, undoing the first proposal's rows (tester U).
    @Test func proposingFromARunOnAProposedCardKeepsItsRows() throws {
        func volume(_ d: Int) -> Int64 { 2_000_000 + 43_000 * Int64(d % 5) }
        let models = [("claude-sonnet-4-5", Decimal(3)), ("claude-haiku-4-5", Decimal(1))]
        let events = models.flatMap { model, _ in
            (1...31).map { d in
                JSONWriter.write(
                    .object([
                        ("event_id", .string("\(model)-\(d)")), ("account_id", .string("acct_42")), ("meter_id", .string("claude_tokens")),
                        ("model_id", .string(model)), ("quantity", .int(volume(d))), ("unit", .string("tokens")),
                        ("timestamp", .string("2026-05-\(String(format: "%02d", d))T12:00:00Z")),
                        ("dimensions", .object([("token_type", .string("input")), ("vendor", .string("anthropic"))])),
                    ]))
            }
        }
        #expect(try CLI.run(["ingest", "--db", db, "--progress", "none", try dir.write("events.ndjson", events.joined(separator: "\n") + "\n")]).status == 0)
        /// A cost report of May: Sonnet input 10 % up from May 16, and Haiku's from `haikuFrom`.
        func bill(_ name: String, haikuFrom: Int) throws -> String {
            let days = (1...31).map { d -> JSONValue in
                let day = "2026-05-\(String(format: "%02d", d))"
                let rows = models.map { model, price -> JSONValue in
                    let up = model == "claude-sonnet-4-5" ? d >= 16 : d >= haikuFrom
                    let cents = "\(Decimal(volume(d)) * price * (up ? Decimal(string: "1.1")! : 1) / 10_000)"
                    return .object([
                        ("amount", .string(cents)), ("list_amount", .string(cents)), ("currency", .string("USD")), ("cost_type", .string("tokens")),
                        ("model", .string(model)), ("token_type", .string("uncached_input_tokens")), ("service_tier", .string("standard")),
                        ("context_window", .string("0-200k")), ("workspace_id", .null), ("description", .string("test row")),
                    ])
                }
                return .object([("starting_at", .string(day + "T00:00:00Z")), ("ending_at", .string(day + "T23:59:59Z")), ("results", .array(rows))])
            }
            return try dir.write(name, JSONWriter.write(.object([("data", .array(days)), ("has_more", .bool(false)), ("next_page", .null)])))
        }
        let reconcile = ["reconcile", "--db", db, "--vendor", "anthropic", "--account", "acct_42", "--json"] + may
        let first = try json(try CLI.run(reconcile + ["--invoice", try bill("first.json", haikuFrom: 99)]))
        let card = dir.path("proposed.yaml")
        let proposed = try CLI.run(["ratecards", "propose", "--from-report", try #require(first["id"]?.stringValue), "--db", db, "--output", card])
        #expect(proposed.status == 0 && proposed.stderr.contains("wrote"), "\(proposed.stderr)")
        // The vendor's next change (Haiku from May 20), reconciled on the proposed card.
        let second = try json(try CLI.run(reconcile + ["--invoice", try bill("second.json", haikuFrom: 20), "--rate-card", card]))
        #expect(second["price_steps"]?.arrayValue?.count == 1, "\(second["price_steps"] ?? .null)")
        let again = try CLI.run(["ratecards", "propose", "--from-report", try #require(second["id"]?.stringValue), "--db", db])
        #expect(again.status == 0, "\(again.stderr)")
        // Both rows: Sonnet's from the first proposal, Haiku's from this one.
        let rows = again.stdout.split(separator: "\n")
        #expect(rows.contains { $0.contains("{from: \"2026-05-16\"") && $0.contains("input: \"3.3\"") }, "\(again.stdout)")
        #expect(rows.contains { $0.contains("{from: \"2026-05-20\"") && $0.contains("input: \"1.1\"") }, "\(again.stdout)")
    }
}
