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
    }
}
