import Foundation
public import ReconCore

extension Rendering {
    static func signed(_ v: Int64) -> String { v > 0 ? "+" + TextTable.grouped(v) : TextTable.grouped(v) }

    /// The kata's step-3 table, then token types, findings, unmapped lines and corrections.
    public static func reconciliation(_ r: ReconciliationReport) -> String {
        var out: [String] = []
        out.append("Reconciliation \(r.id): \(r.vendor), \(r.range.from.rfc3339) – \(r.range.to.rfc3339)\(r.accountID.map { ", account \($0)" } ?? "")")
        out.append("invoice \(r.invoice.files.map(\.name).joined(separator: ", ")) (\(r.invoice.format), \(r.invoice.lines) lines, "
                   + "\(r.invoice.currency) \(ExactDecimal.format(r.invoice.amount))), rate card \(r.rateCard.vendor) \(r.rateCard.version), "
                   + "verify \(r.verify.mode.rawValue): \(r.verify.ok ? "ok" : "DRIFT \(r.verify.drift)")")
        out.append("")
        var rows = r.models.map { m in
            [m.modelID, TextTable.grouped(m.metered), TextTable.grouped(m.vendor), signed(m.gap),
             ReconciliationReport.gapPercent(gap: m.gap, metered: m.metered).map { $0 + "%" } ?? "—", "$" + ExactDecimal.format(m.gapAmount)]
        }
        rows.append(["TOTAL", TextTable.grouped(r.total.metered), TextTable.grouped(r.total.vendor), signed(r.total.gap),
                     ReconciliationReport.gapPercent(gap: r.total.gap, metered: r.total.metered).map { $0 + "%" } ?? "—",
                     "$" + ExactDecimal.format(r.models.reduce(Decimal(0)) { $0 + $1.gapAmount })])
        out.append(TextTable(headers: ["model", "metered (you)", "vendor invoice", "gap", "gap %", "gap $"], rows: rows,
                             rightAligned: [1, 2, 3, 4, 5]).render())
        out.append("")
        out.append("shape: \(r.shape.rawValue)" + (r.impliedFactor.map { " (implied factor \(ExactDecimal.format($0, scale: 4)))" } ?? "")
                   + (r.unmeteredTokenTypes.isEmpty ? "" : "; billed but never metered: \(r.unmeteredTokenTypes.map(\.rawValue).joined(separator: ", "))"))
        out.append("")
        out.append("by token type:")
        out.append(TextTable(headers: ["model", "token type", "metered", "vendor", "gap", "tolerance", "vendor $", "gap $"], rows: r.models.flatMap { m in
            m.tokenTypes.map { t in
                [m.modelID, t.tokenType?.rawValue ?? "(all)", TextTable.grouped(t.metered), TextTable.grouped(t.vendor), signed(t.gap),
                 TextTable.grouped(t.tolerance), ExactDecimal.format(t.vendorAmount), ExactDecimal.format(t.gapAmount)]
            }
        }, rightAligned: [2, 3, 4, 5, 6, 7]).render())
        out.append("")
        if r.findings.isEmpty {
            out.append("findings: none: the invoice matches the meter")
        } else {
            out.append("findings:")
            out.append(TextTable(headers: ["model", "token type", "account", "gap", "gap $", "class", "rule", "reason"], rows: r.findings.map { f in
                [f.modelID, f.tokenType?.rawValue ?? "(all)", f.accountID ?? "(unattributed)", signed(f.quantity), ExactDecimal.format(f.amount),
                 f.gapClass.rawValue, f.rule, f.reason]
            }, rightAligned: [3, 4]).render())
        }
        if !r.unmapped.isEmpty {
            out.append("")
            out.append("unmapped (kept, never converted to tokens): \(r.invoice.currency) \(ExactDecimal.format(r.invoice.unmappedAmount))")
            out.append(TextTable(headers: ["where", "what", "amount", "reason"], rows: r.unmapped.map { u in
                [u.location, u.description ?? u.vendorModel ?? "", u.amount.map { "\(u.currency) \(ExactDecimal.text($0))" } ?? "", u.reason]
            }, rightAligned: [2]).render())
        }
        out.append("")
        if r.corrections.isEmpty {
            out.append("proposed corrections: none")
        } else {
            out.append("proposed corrections\(r.applied ? " (applied)" : " (not applied; --apply posts them)"):")
            out.append(TextTable(headers: ["event_id", "account", "meter", "model", "token type", "quantity", "correction_ref"], rows: r.corrections.map { c in
                [c.eventID, c.accountID, c.meterID, c.modelID ?? "", c.dimension("token_type") ?? "", signed(c.quantity), c.correctionRef ?? ""]
            }, rightAligned: [5]).render())
        }
        return out.joined(separator: "\n")
    }

    /// The same report for a review, in Markdown.
    public static func reconciliationMarkdown(_ r: ReconciliationReport) -> String {
        func table(_ headers: [String], _ rows: [[String]]) -> String {
            (["| " + headers.joined(separator: " | ") + " |", "|" + headers.map { _ in "---" }.joined(separator: "|") + "|"]
             + rows.map { "| " + $0.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |" }).joined(separator: "\n")
        }
        var out = ["# Reconciliation \(r.id)", "",
                   "- vendor: **\(r.vendor)**, period \(r.range.from.rfc3339) – \(r.range.to.rfc3339)\(r.accountID.map { ", account `\($0)`" } ?? "")",
                   "- invoice: \(r.invoice.files.map { "`\($0.name)` (\($0.parser), sha256 `\($0.sha256.prefix(12))…`)" }.joined(separator: ", ")), "
                   + "\(r.invoice.lines) lines, \(r.invoice.currency) \(ExactDecimal.format(r.invoice.amount)), unmapped \(ExactDecimal.format(r.invoice.unmappedAmount))",
                   "- rate card: \(r.rateCard.vendor) `\(r.rateCard.version)`; rules `\(r.rules.file)`; verify \(r.verify.mode.rawValue): \(r.verify.ok ? "ok" : "drift \(r.verify.drift)")",
                   "- shape: **\(r.shape.rawValue)**" + (r.unmeteredTokenTypes.isEmpty ? "" : "; billed but never metered: \(r.unmeteredTokenTypes.map(\.rawValue).joined(separator: ", "))"),
                   "", "## Per model", ""]
        out.append(table(["model", "metered", "vendor", "gap", "gap %", "vendor $", "gap $"], r.models.map { m in
            [m.modelID, TextTable.grouped(m.metered), TextTable.grouped(m.vendor), signed(m.gap),
             ReconciliationReport.gapPercent(gap: m.gap, metered: m.metered) ?? "—", ExactDecimal.format(m.vendorAmount), ExactDecimal.format(m.gapAmount)]
        } + [["**TOTAL**", TextTable.grouped(r.total.metered), TextTable.grouped(r.total.vendor), signed(r.total.gap),
              ReconciliationReport.gapPercent(gap: r.total.gap, metered: r.total.metered) ?? "—", "", ""]]))
        out += ["", "## Findings", ""]
        out.append(r.findings.isEmpty ? "None." : table(["model", "token type", "account", "gap", "gap $", "class", "rule", "reason"], r.findings.map { f in
            [f.modelID, f.tokenType?.rawValue ?? "", f.accountID ?? "—", signed(f.quantity), ExactDecimal.format(f.amount), f.gapClass.rawValue, f.rule, f.reason]
        }))
        out += ["", "## Unmapped lines", ""]
        out.append(r.unmapped.isEmpty ? "None." : table(["where", "what", "amount", "reason"], r.unmapped.map { u in
            [u.location, u.description ?? u.vendorModel ?? "", u.amount.map { "\(u.currency) \(ExactDecimal.text($0))" } ?? "", u.reason]
        }))
        out += ["", "## Proposed corrections", ""]
        out.append(r.corrections.isEmpty ? "None." : table(["event_id", "account", "meter", "model", "token type", "quantity", "correction_ref"], r.corrections.map { c in
            [c.eventID, c.accountID, c.meterID, c.modelID ?? "", c.dimension("token_type") ?? "", signed(c.quantity), c.correctionRef ?? ""]
        }))
        out.append("")
        out.append(r.applied ? "Applied." : "Not applied.")
        return out.joined(separator: "\n") + "\n"
    }
}
