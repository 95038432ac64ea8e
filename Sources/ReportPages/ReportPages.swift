import Foundation
public import Metering
import Mustache
public import ReconCore

/// The pages a reviewer opens: the reconciliation report (a self-contained file from
/// `reconcile --format html`, and the same page under `/ui/`), the index of runs, an account's
/// daily drift watch and the sign-in form. Rendered by Mustache templates (every value escaped);
/// charts are inline SVG whose geometry is computed here. No script, nothing loaded from elsewhere.
public enum ReportPages {
    static let library: MustacheLibrary = {
        var templates: [String: MustacheTemplate] = [:]
        for (name, bytes) in [
            ("page", PackageResources.page_mustache), ("report", PackageResources.report_mustache),
            ("index", PackageResources.index_mustache), ("account", PackageResources.account_mustache),
            ("login", PackageResources.login_mustache), ("error", PackageResources.error_mustache),
        ] {
            do {
                templates[name] = try MustacheTemplate(string: String(decoding: bytes, as: UTF8.self))
            } catch {
                preconditionFailure("template \(name) does not parse: \(error)")
            }
        }
        return MustacheLibrary(templates: templates)
    }()

    static func render(_ name: String, _ context: [String: Any]) -> String {
        library.render(context, withTemplate: name) ?? ""
    }

    /// A whole page: the shell around a body; `who` (the signed-in key) adds the navigation.
    /// Characters that reorder or hide text are shown as U+FFFD: escaping leaves them, and
    /// `may\u{202E}gnp.json` read as `mayjson.png` (tester S); a zero-width space or joiner made
    /// two names that differ look alike (tester S2).
    static func page(title: String, body: String, who: String?) -> String {
        var context: [String: Any] = ["title": title, "body": body]
        if let who { context["nav"] = ["who": who] }
        let html = render("page", context)
        guard html.unicodeScalars.contains(where: hidesOrReordersText) else { return html }
        var out = String.UnicodeScalarView()
        for c in html.unicodeScalars { out.append(hidesOrReordersText(c) ? "\u{FFFD}" : c) }
        return String(out)
    }

    /// Bidirectional controls and every other format character (zero-width spaces and joiners,
    /// U+FEFF, the soft hyphen), line and paragraph separators, and the blank fillers that render
    /// as nothing (U+034F, the Hangul fillers).
    static func hidesOrReordersText(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .format, .lineSeparator, .paragraphSeparator: return true
        default: return [0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0].contains(c.value)
        }
    }

    /// The reconciliation report as one self-contained HTML page.
    public static func report(_ r: ReconciliationReport, who: String? = nil) -> String {
        page(title: "\(r.vendor) reconciliation \(r.id)", body: render("report", reportContext(r)), who: who)
    }

    /// A page saying what went wrong (a page the key may not see, an unknown run).
    public static func error(_ message: String, who: String) -> String {
        page(title: "UsageBox", body: render("error", ["message": message]), who: who)
    }

    public static func login(error: String?, next: String) -> String {
        var context: [String: Any] = ["next": next]
        if let error { context["error"] = error }
        return page(title: "UsageBox: sign in", body: render("login", context), who: nil)
    }

    /// The runs a key may see (as `GET /v1/reconciliations` lists them), by vendor and month.
    /// One page of the runs a key may see (`after` the page before's cursor, if any), with a link
    /// to the next when more follow.
    public static func index(_ list: ReconciliationList, after cursor: ReconciliationList.Cursor?, who: String, defaultAccount: String) -> String {
        let runs = list.reconciliations
        let sorted = runs.sorted { ($0.createdAt.microseconds, $0.id) > ($1.createdAt.microseconds, $1.id) }
        var groups: [(String, String, [ReconciliationSummary])] = []
        for run in sorted {
            if let i = groups.firstIndex(where: { $0.0 == run.vendor && $0.1 == run.month }) {
                groups[i].2.append(run)
            } else {
                groups.append((run.vendor, run.month, [run]))
            }
        }
        let context: [String: Any] = [
            "runCount": String(runs.count), "defaultAccount": defaultAccount, "defaultMonth": sorted.first?.month ?? "",
            "paged": cursor != nil, "before": cursor?.before.rfc3339 ?? "",
            "hasOlder": list.next != nil, "older": list.next.map { "/ui/?before=\($0.before.rfc3339)&before_id=\($0.beforeID)" } ?? "",
            "groups": groups.map { g -> [String: Any] in
                [
                    "vendor": g.0, "month": g.1,
                    "runs": g.2.map { r -> [String: Any] in
                        [
                            "id": r.id, "account": r.accountLabel, "verdict": r.verdict.rawValue, "gap": Format.signed(r.gap),
                            "corrections": String(r.corrections),
                            "applied": r.appliedState, "createdAt": r.createdAt.rfc3339,
                        ]
                    },
                ]
            },
        ]
        return page(title: "UsageBox: reconciliations", body: render("index", context), who: who)
    }

    /// An account's month: each day's rollups against its raw events, drift marked.
    public static func account(_ account: String, month: String, verify: VerifyReport, who: String) -> String {
        let days = verify.days ?? []
        let drifted = days.filter { $0.drift != 0 }
        let context: [String: Any] = [
            "account": account, "month": month, "mode": verify.mode.rawValue,
            "verdictClass": verify.ok ? "conclusive" : "inconclusive",
            "headline": verify.ok
                ? "No drift: every day's rollups equal its raw events (\(verify.segmentsChecked) segment(s) checked)."
                : "DRIFT on \(drifted.count) day(s), \(Format.grouped(verify.drift)) in all; \(verify.segmentsCorrupt) corrupt segment(s).",
            "chart": Charts.driftWatch(days),
            "days": days.map { d -> [String: Any] in
                [
                    "day": d.day, "rollup": Format.grouped(d.rollupSum), "raw": Format.grouped(d.rawSum), "drift": Format.grouped(d.drift),
                    "driftClass": d.drift == 0 ? "" : "pos",
                ]
            },
        ]
        return page(title: "UsageBox: \(account) \(month)", body: render("account", context), who: who)
    }
}

/// Numbers as a reviewer reads them.
enum Format {
    static func grouped(_ v: Int64) -> String { DigitGrouping.grouped(v, minus: "−") }

    static func signed(_ v: Int64) -> String { v > 0 ? "+" + grouped(v) : grouped(v) }

    static func money(_ a: ExactAmount) -> String { ExactDecimal.format(a.value) }

    static func money(_ a: ExactAmount, _ currency: String) -> String { "\(currency) \(money(a))" }
}
