import ExactJSON
import Foundation
public import Metering
import ReconCore
import VendorAnthropic

/// The kata, told step by step on a store: what `usagebox demo` prints.
public struct KataDemo: Sendable {
    public var store: any MeterStore
    public var log: (any ReconciliationLog)?
    public var write: @Sendable (String) -> Void

    public init(store: any MeterStore, log: (any ReconciliationLog)? = nil, write: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.log = log
        self.write = write
    }

    static let host = "http://127.0.0.1:8080"
    static let period = "from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z"

    /// Loads the kata's month into the store.
    public func load() async throws -> IngestResponse {
        let events = DemoData.events()
        var total = IngestResponse()
        var i = 0
        while i < events.count {
            let batch = events[i..<min(i + 10_000, events.count)].map { IngestItem.event($0) }
            total.add(try await store.ingest(batch))
            i += 10_000
        }
        try await store.sealOpenSegments()
        return total
    }

    public func run() async throws {
        let loaded = try await load()
        let account = DemoData.account
        let range = try TimeRange(from: DemoData.from, to: DemoData.to)
        write(
            "Loaded the kata's May 2026 for \(account): \(TextTable.grouped(Int64(loaded.accepted))) events accepted, "
                + "\(loaded.duplicates) duplicates, \(loaded.rejected) rejected.\n")

        step(
            "Step 1: pull what you recorded, grouped by model",
            curl: "/v1/accounts/\(account)/usage?\(Self.period)&group_by=model_id",
            cli: "usagebox usage --account \(account) --from 2026-05-01T00:00:00Z --to 2026-06-01T00:00:00Z --group-by model_id")
        let byModel = try await store.usage(UsageQuery(scope: .accounts([account]), range: range, groupBy: [.modelID]))
        write(JSONWriter.write(byModel.jsonValue, pretty: true))
        write("")
        write(Rendering.usage(byModel))
        write("")

        step(
            "Step 2: verify your own numbers first",
            curl: "/v1/accounts/\(account)/verify?\(Self.period)",
            cli: "usagebox verify --account \(account) --from 2026-05-01T00:00:00Z --to 2026-06-01T00:00:00Z")
        let verify = try await store.verify(VerifyRequest(account: account, range: range, mode: .deep))
        write(JSONWriter.write(verify.jsonValue, pretty: true))
        write(
            verify.ok
                ? "\nRollups equal raw events: drift 0. Our books are internally consistent.\n"
                : "\nDRIFT: stop here, the problem is on our side.\n")

        step(
            "Step 4: localize with /explain and dimensions",
            curl: "/v1/accounts/\(account)/explain?\(Self.period)",
            cli: "usagebox explain --account \(account) --from 2026-05-01T00:00:00Z --to 2026-06-01T00:00:00Z")
        let explain = try await store.explain(account: account, range: range)
        write(Rendering.explain(explain))
        write("")
        step(
            "…then the Sonnet slice by token_type",
            curl: "/v1/accounts/\(account)/usage?\(Self.period)&model_id=claude-sonnet-4-5&group_by=token_type",
            cli:
                "usagebox usage --account \(account) --from 2026-05-01T00:00:00Z --to 2026-06-01T00:00:00Z --filter model_id=claude-sonnet-4-5 --group-by token_type"
        )
        let byType = try await store.usage(
            UsageQuery(
                scope: .accounts([account]), range: range, groupBy: [.dimension("token_type")],
                filters: [UsageFilter(field: .modelID, op: .eq, values: ["claude-sonnet-4-5"])]))
        write(JSONWriter.write(byType.jsonValue, pretty: true))
        write("")
        write("Metered Sonnet is input plus output only: any cache reads the vendor bills were never sent as events.")
        write("")

        let invoice = AnthropicPlugin.demoCostReport
        step(
            "Step 3 (and 5): lay the meter next to the Anthropic invoice, localize and classify the gap",
            curl: "-X POST \"\(Self.host)/v1/reconciliations?vendor=anthropic&\(Self.period)&account=\(account)\" --data-binary @\(invoice.name)",
            cli: "usagebox reconcile --vendor anthropic --invoice \(invoice.name) --from 2026-05-01T00:00:00Z --to 2026-06-01T00:00:00Z --account \(account)")
        let service = try ReconciliationService()
        let options = ReconciliationOptions(vendor: "anthropic", invoices: [invoice], range: range, account: account, runBy: "demo")
        let (report, _) = try await service.run(options, store: store, log: log, apply: false)
        write(Rendering.reconciliation(report))
        write("")
        for f in report.findings {
            write(
                "  \(f.modelID) \(f.tokenType?.rawValue ?? "") \(Rendering.signed(f.quantity)) tokens ($\(ExactDecimal.format(f.amount.value))): "
                    + "\(f.gapClass.rawValue) (rule \(f.rule), reason \(f.reason))")
        }
        write("")

        step(
            "Daily drift watch: the day the collector started missing events",
            curl: "-X POST \"\(Self.host)/v1/reconciliations?vendor=anthropic&\(Self.period)&account=\(account)\" --data-binary @\(invoice.name)",
            cli: "usagebox reconcile --vendor anthropic --invoice \(invoice.name) --from 2026-05-01 --to 2026-06-01 --account \(account) --by day")
        for f in report.findings where f.gapClass == .meteringGap {
            let since = f.gapSince.map { " since \($0)" } ?? ""
            write(
                "\(f.modelID) \(f.tokenType?.rawValue ?? "") \(f.quantity > 0 ? "under" : "over")-metered\(since) on \(f.accountID ?? "")"
                    + ": \(Rendering.signed(f.quantity)) tokens over \(f.gapDays ?? 0) day(s)")
            let days = report.days.filter { $0.modelID == f.modelID && $0.tokenType == f.tokenType }
            if let start = days.firstIndex(where: { $0.day == f.gapSince }) {
                var excerpt = report
                excerpt.days = Array(days[max(0, start - 2)..<min(days.count, start + 3)])
                write(Rendering.reconciliationDays(excerpt))
            }
        }
        write("")

        step(
            "Step 6: close the loop with a Correction event",
            curl: "-X POST \"\(Self.host)/v1/reconciliations/\(report.id)/apply\"",
            cli: "usagebox reconcile … --apply")
        let applied =
            log != nil
            ? try await service.apply(id: report.id, confirmLarge: false, store: store, log: log!)
            : ApplyAnswer(
                batch: try await store.ingest(report.corrections.map { IngestItem.event($0.event) }), heldNotPosted: report.held.count)
        write(JSONWriter.write(applied.jsonValue))
        if let log {
            let again = try await service.apply(id: report.id, confirmLarge: false, store: store, log: log)
            write("Applying the same report again: \(again.duplicates) duplicate(s), \(again.accepted) new — never a second correction.")
        }
        write("")
        let after = try await store.explain(account: account, range: range)
        write("Re-run /explain: the correction appears with its provenance.")
        write(Rendering.explain(after))
        write("")
        let rerun = try await service.run(options, store: store, log: log, apply: false)
        let sonnet = rerun.report.models.first { $0.modelID == "claude-sonnet-4-5" }
        write(
            "Re-run the reconciliation: Sonnet metered \(TextTable.grouped(sonnet?.metered ?? 0)) vs vendor \(TextTable.grouped(sonnet?.vendor ?? 0)); "
                + "the remaining \(Rendering.signed(sonnet?.gap ?? 0)) is the pass-through cache reads, and no correction is proposed "
                + "(\(rerun.report.corrections.count)).")
    }

    private func step(_ title: String, curl: String, cli: String) {
        write(String(repeating: "=", count: 78))
        write(title)
        if curl.hasPrefix("-X") {
            write("  $ curl \(curl) -H \"Authorization: Bearer $USAGEBOX_KEY\"")
        } else {
            write("  $ curl \"\(Self.host)\(curl)\" -H \"Authorization: Bearer $USAGEBOX_KEY\"")
        }
        write("  $ \(cli)")
        write("")
    }
}
