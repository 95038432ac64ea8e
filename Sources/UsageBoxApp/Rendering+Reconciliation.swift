import Foundation
public import ReconCore

extension Rendering {
    static func signed(_ v: Int64) -> String { v > 0 ? "+" + TextTable.grouped(v) : TextTable.grouped(v) }
    static func money(_ a: ExactAmount) -> String { ExactDecimal.format(a.value) }

    /// The verdict first: conclusive or not and why, what is proposed, what is held.
    static func verdictLines(_ r: ReconciliationReport) -> [String] {
        var out: [String] = []
        if r.isConclusive {
            out.append("VERDICT: conclusive: \(r.proposalSummary)")
        } else {
            out.append("VERDICT: INCONCLUSIVE: no corrections proposed; the evidence does not allow them:")
        }
        for reason in r.reasons where reason.effect == .inconclusive {
            out.append("  - \(reason.code): \(reason.detail)")
            if let remedy = reason.remedy { out.append("    to make it conclusive: \(remedy)") }
        }
        let limits = r.reasons.filter { $0.effect != .inconclusive }
        if !limits.isEmpty {
            out.append("limits on the evidence:")
            for reason in limits {
                let effect = reason.effectLabel.map { " [\($0)]" } ?? ""
                out.append("  - \(reason.code)\(effect): \(reason.detail)" + (reason.remedy.map { " (\($0))" } ?? ""))
            }
        }
        return out
    }

    /// The verdict, the kata's step-3 table, then token types, findings, unmapped lines and corrections.
    public static func reconciliation(_ r: ReconciliationReport) -> String {
        var out: [String] = []
        out.append(
            "Reconciliation \(r.id): \(r.vendor), \(r.from.rfc3339) – \(r.to.rfc3339)\(r.accountID.map { ", account \($0)" } ?? "")"
                + (r.invoiceScope == .account ? " (invoice asserted to be this account's alone)" : ""))
        out += verdictLines(r)
        out.append("")
        out.append(
            "invoice \(r.invoice.files.map(\.name).joined(separator: ", ")) (\(r.invoice.format), \(r.invoice.lines) lines, "
                + "\(r.invoice.currency) \(money(r.invoice.amount))), rate card \(r.rateCard.vendor) \(r.rateCard.version), "
                + "verify \(r.verify.mode.rawValue): \(r.verify.ok ? "ok" : "DRIFT \(r.verify.drift)")")
        out.append(
            "coverage: \(r.coverage.coveredDays) of \(r.coverage.periodDays) day(s) (\(r.coverage.basis.replacingOccurrences(of: "_", with: " ")))"
                + (r.coverage.pages.isEmpty ? "" : ", \(r.coverage.pages.count) page(s), last has_more \(r.coverage.pages.last!.hasMore)"))
        out.append("")
        var rows = r.models.map { m in
            [
                m.modelID, TextTable.grouped(m.metered), TextTable.grouped(m.vendor), signed(m.gap), m.gapPct.map { $0 + "%" } ?? "—",
                "$" + money(m.gapAmount),
            ]
        }
        rows.append([
            "TOTAL", TextTable.grouped(r.total.metered), TextTable.grouped(r.total.vendor), signed(r.total.gap),
            ReconciliationReport.gapPercent(gap: r.total.gap, metered: r.total.metered).map { $0 + "%" } ?? "—",
            "$" + money(r.total.gapAmount),
        ])
        out.append(
            TextTable(
                headers: ["model", "metered (you)", "vendor invoice", "gap", "gap %", "gap $"], rows: rows,
                rightAligned: [1, 2, 3, 4, 5]
            ).render())
        out.append("")
        out.append(
            "shape: \(r.shape.rawValue)" + (r.impliedFactor.map { " (implied factor \($0))" } ?? "")
                + (r.unmeteredTokenTypes.isEmpty ? "" : "; billed but never metered: \(r.unmeteredTokenTypes.map(\.rawValue).joined(separator: ", "))"))
        out.append("")
        out.append("by token type:")
        out.append(
            TextTable(
                headers: ["model", "token type", "metered", "vendor", "gap", "tolerance", "vendor $", "gap $"],
                rows: r.models.flatMap { m in
                    m.tokenTypes.map { t in
                        [
                            m.modelID, t.tokenType?.rawValue ?? "(all)", TextTable.grouped(t.metered), TextTable.grouped(t.vendor), signed(t.gap),
                            TextTable.grouped(t.tolerance), money(t.vendorAmount), money(t.gapAmount),
                        ]
                    }
                }, rightAligned: [2, 3, 4, 5, 6, 7]
            ).render())
        out.append("")
        if r.findings.isEmpty {
            // An inconclusive run may have read nothing to compare: "matches" would be a verdict.
            let unlimited = r.verdict == .conclusive && r.reasons.allSatisfy { $0.effect == .note }
            out.append(unlimited ? "findings: none: the invoice matches the meter" : "findings: none (see the limits on the evidence above)")
        } else {
            out.append("findings:")
            out.append(
                TextTable(
                    headers: ["model", "token type", "account", "gap", "gap $", "since", "class", "decided by", "reason"],
                    rows: r.findings.map { f in
                        [
                            f.modelID, f.tokenType?.rawValue ?? "(all)", f.accountID ?? "(unattributed)", signed(f.quantity), money(f.amount),
                            f.gapSince.map { "\($0) (\(f.gapDays ?? 0)d)" } ?? "", f.gapClass.rawValue, f.decidedBy, findingReason(f),
                        ]
                    }, rightAligned: [3, 4]
                ).render())
        }
        for step in r.priceSteps {
            out.append("")
            out.append(
                step.kind == .oneModel
                    ? "price step on \(step.date), one model: the implied price of every token type of \(step.rates[0].modelID) moved by one ratio "
                        + "while the meter did not; a price change the card lacks or a steady loss of its requests from that day (held): if the "
                        + "vendor's price list moved, `usagebox ratecards propose --from-report \(r.id)`:"
                    : step.kind == .oneTokenType
                        ? "price step on \(step.date), \(step.movedAlone ?? ""): off the meter by one share every day to the period's end; "
                            + "a price the card lacks or a steady loss from that day (held): if the vendor's price list moved, "
                            + "`usagebox ratecards propose --from-report \(r.id)`:"
                        : "price step on \(step.date): the vendor's implied price changed for \(step.rates.count) model × token type(s) while the meter did not "
                            + "(a pricing gap: fix the card, `usagebox ratecards propose --from-report \(r.id)`):")
            out.append(
                TextTable(
                    headers: ["model", "token type", "before /1M", "from \(step.date) /1M"],
                    rows: step.rates.map {
                        [$0.modelID, $0.tokenType?.rawValue ?? "(all)", $0.beforePerMillion, $0.afterPerMillion]
                    }, rightAligned: [2, 3]
                ).render())
        }
        if !r.unattributed.isEmpty {
            out.append("")
            out.append("vendor volume on no account (blocks over-metering corrections of its model and token type):")
            out.append(
                TextTable(
                    headers: ["model", "token type", "vendor", "vendor $"],
                    rows: r.unattributed.map {
                        [$0.modelID, $0.tokenType?.rawValue ?? "(all)", TextTable.grouped($0.vendor), money($0.vendorAmount)]
                    }, rightAligned: [2, 3]
                ).render())
        }
        if !r.unmapped.isEmpty {
            out.append("")
            out.append("unmapped (kept, never converted to tokens): \(r.invoice.currency) \(money(r.invoice.unmappedAmount))")
            out.append(
                TextTable(
                    headers: ["where", "what", "amount", "reason"],
                    rows: r.unmapped.map { u in
                        [u.location, u.description ?? u.vendorModel ?? "", u.amount.map { "\(u.currency) \($0)" } ?? "", u.reason]
                    }, rightAligned: [2]
                ).render())
        }
        if !r.meteredOutOfScope.isEmpty {
            out.append("")
            out.append("metered, out of scope (not compared):")
            out.append(
                TextTable(
                    headers: ["model", "meter", "tokens", "reason"],
                    rows: r.meteredOutOfScope.map {
                        [$0.modelID ?? "(none)", $0.meterID ?? "", TextTable.grouped($0.tokens), $0.reason]
                    }, rightAligned: [2]
                ).render())
        }
        out.append("")
        out += correctionLines(r)
        return out.joined(separator: "\n")
    }

    static func findingReason(_ f: ReconciliationReport.Finding) -> String {
        if !f.blockedBy.isEmpty { return "blocked: \(f.blockedBy.joined(separator: ", "))" }
        if let other = f.pairedWith { return "\(f.reason) (with \(other.rawValue); the pair nets \(f.pairAmount.map(money) ?? "0"))" }
        return f.reason
    }

    /// Recorded runs, newest first (`usagebox reconcile list`), as the `/ui/` index lists them.
    /// `after`: the cursor the list was read after, if any (an empty page says so).
    public static func reconciliationList(_ list: ReconciliationList, after cursor: ReconciliationList.Cursor? = nil) -> String {
        let runs = list.reconciliations
        // Where the next page starts, when another follows (the flags take the cursor as printed).
        let more = list.next.map { "\nmore: run this command again with --before \($0.before.rfc3339) --before-id \($0.beforeID)" } ?? ""
        guard !runs.isEmpty else { return "no recorded reconciliations" + (cursor.map { " before \($0.before.rfc3339)" } ?? "") + more }
        return TextTable(
            headers: ["id", "vendor", "month", "account", "verdict", "gap", "corrections", "applied", "created"],
            rows: runs.map { r in
                [
                    r.id, r.vendor, r.month, r.accountLabel, r.verdict.rawValue, signed(r.gap), String(r.corrections),
                    r.appliedState, r.createdAt.rfc3339,
                ]
            }, rightAligned: [5, 6]
        ).render() + more
    }

    /// The day-by-day table: per day × model × token type, metered against the vendor, with the
    /// vendor's implied price (`reconcile --by day`).
    public static func reconciliationDays(_ r: ReconciliationReport) -> String {
        guard !r.days.isEmpty else { return "by day: no usage on either side" }
        return "by day (UTC):\n"
            + TextTable(
                headers: ["day", "model", "token type", "metered", "vendor", "gap", "vendor $", "implied /1M"],
                rows: r.days.map { d in
                    [
                        d.day, d.modelID, d.tokenType?.rawValue ?? "(all)", TextTable.grouped(d.metered), d.vendor.map(TextTable.grouped) ?? "—",
                        d.gap.map(signed) ?? "—", d.vendorAmount.map(money) ?? "—", d.impliedPerMillion ?? "—",
                    ]
                }, rightAligned: [3, 4, 5, 6, 7]
            ).render()
    }

    static func correctionLines(_ r: ReconciliationReport) -> [String] {
        var out: [String] = []
        func table(_ list: [ProposedCorrection]) -> String {
            TextTable(
                headers: ["event_id", "account", "meter", "model", "token type", "quantity", "correction_ref"],
                rows: list.map { c in
                    [c.eventID, c.accountID, c.meterID, c.modelID ?? "", c.tokenType ?? "", signed(c.quantity), c.correctionRef]
                }, rightAligned: [5]
            ).render()
        }
        if r.corrections.isEmpty {
            out.append("proposed corrections: none")
        } else {
            out.append("proposed corrections\(r.applied ? " (applied)" : " (not applied; --apply posts them)"):")
            out.append(table(r.corrections))
        }
        if !r.held.isEmpty {
            out.append("")
            out.append("held for review (posted only by --apply --confirm-large):")
            out.append(table(r.held.map(\.correction)))
            for h in r.held { out.append("  \(h.correction.eventID): \(h.reason): \(h.detail)") }
        }
        return out
    }

    /// The same report for a review, in Markdown.
    public static func reconciliationMarkdown(_ r: ReconciliationReport) -> String {
        func table(_ headers: [String], _ rows: [[String]]) -> String {
            (["| " + headers.joined(separator: " | ") + " |", "|" + headers.map { _ in "---" }.joined(separator: "|") + "|"]
                + rows.map { "| " + $0.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |" }).joined(separator: "\n")
        }
        var out = ["# Reconciliation \(r.id)", ""]
        out.append("**\(r.isConclusive ? "Conclusive" : "Inconclusive")**: \(r.proposalSummary).")
        out.append("")
        if !r.reasons.isEmpty {
            out.append(
                table(
                    ["reason", "effect", "detail", "what would lift it"],
                    r.reasons.map {
                        [$0.code, $0.effectLabel ?? $0.effect.rawValue, $0.detail, $0.remedy ?? ""]
                    }))
            out.append("")
        }
        out += [
            "- vendor: **\(r.vendor)**, period \(r.from.rfc3339) – \(r.to.rfc3339)\(r.accountID.map { ", account `\($0)`" } ?? "")",
            "- invoice: \(r.invoice.files.map { "`\($0.name)` (\($0.parser), sha256 `\($0.sha256.prefix(12))…`)" }.joined(separator: ", ")), "
                + "\(r.invoice.lines) lines, \(r.invoice.currency) \(money(r.invoice.amount)), unmapped \(money(r.invoice.unmappedAmount))",
            "- coverage: \(r.coverage.coveredDays) of \(r.coverage.periodDays) day(s), \(r.coverage.basis)",
            "- rate card: \(r.rateCard.vendor) `\(r.rateCard.version)`; rules \(r.rules.chain.map { "`\($0)`" }.joined(separator: " → ")); "
                + "verify \(r.verify.mode.rawValue): \(r.verify.ok ? "ok" : "drift \(r.verify.drift)")",
            "- shape: **\(r.shape.rawValue)**"
                + (r.unmeteredTokenTypes.isEmpty ? "" : "; billed but never metered: \(r.unmeteredTokenTypes.map(\.rawValue).joined(separator: ", "))"),
            "", "## Per model", "",
        ]
        out.append(
            table(
                ["model", "metered", "vendor", "gap", "gap %", "vendor $", "gap $"],
                r.models.map { m in
                    [
                        m.modelID, TextTable.grouped(m.metered), TextTable.grouped(m.vendor), signed(m.gap), m.gapPct ?? "—",
                        money(m.vendorAmount), money(m.gapAmount),
                    ]
                } + [
                    [
                        "**TOTAL**", TextTable.grouped(r.total.metered), TextTable.grouped(r.total.vendor), signed(r.total.gap),
                        ReconciliationReport.gapPercent(gap: r.total.gap, metered: r.total.metered) ?? "—", "", money(r.total.gapAmount),
                    ]
                ]))
        out += ["", "## Findings", ""]
        out.append(
            r.findings.isEmpty
                ? "None."
                : table(
                    ["model", "token type", "account", "gap", "gap $", "since", "class", "decided by", "reason"],
                    r.findings.map { f in
                        [
                            f.modelID, f.tokenType?.rawValue ?? "", f.accountID ?? "—", signed(f.quantity), money(f.amount), f.gapSince ?? "",
                            f.gapClass.rawValue,
                            f.decidedBy, findingReason(f),
                        ]
                    }))
        for step in r.priceSteps {
            out += ["", "## Price step on \(step.date)\(step.movedAlone.map { " (\($0): a price change or a steady loss; held)" } ?? "")", ""]
            out.append(
                table(
                    ["model", "token type", "before /1M", "after /1M"],
                    step.rates.map {
                        [$0.modelID, $0.tokenType?.rawValue ?? "", $0.beforePerMillion, $0.afterPerMillion]
                    }))
        }
        out += ["", "## Unmapped lines", ""]
        out.append(
            r.unmapped.isEmpty
                ? "None."
                : table(
                    ["where", "what", "amount", "reason"],
                    r.unmapped.map { u in
                        [u.location, u.description ?? u.vendorModel ?? "", u.amount.map { "\(u.currency) \($0)" } ?? "", u.reason]
                    }))
        if !r.meteredOutOfScope.isEmpty {
            out += ["", "## Metered, out of scope", ""]
            out.append(
                table(
                    ["model", "meter", "tokens", "reason"],
                    r.meteredOutOfScope.map {
                        [$0.modelID ?? "(none)", $0.meterID ?? "", TextTable.grouped($0.tokens), $0.reason]
                    }))
        }
        let correctionRows: ([ProposedCorrection]) -> [[String]] = { list in
            list.map { c in
                [c.eventID, c.accountID, c.meterID, c.modelID ?? "", c.tokenType ?? "", signed(c.quantity), c.correctionRef]
            }
        }
        let headers = ["event_id", "account", "meter", "model", "token type", "quantity", "correction_ref"]
        out += ["", "## Proposed corrections", ""]
        out.append(r.corrections.isEmpty ? "None." : table(headers, correctionRows(r.corrections)))
        if !r.held.isEmpty {
            out += ["", "## Held for review", ""]
            out.append(table(headers, correctionRows(r.held.map(\.correction))))
        }
        if !r.days.isEmpty {
            out += ["", "## By day (UTC)", ""]
            out.append(
                table(
                    ["day", "model", "token type", "metered", "vendor", "gap", "vendor $", "implied /1M"],
                    r.days.map { d in
                        [
                            d.day, d.modelID, d.tokenType?.rawValue ?? "", TextTable.grouped(d.metered), d.vendor.map(TextTable.grouped) ?? "—",
                            d.gap.map(signed) ?? "—", d.vendorAmount.map(money) ?? "—", d.impliedPerMillion ?? "—",
                        ]
                    }))
        }
        out.append("")
        out.append(r.applied ? "Applied." : "Not applied.")
        return out.joined(separator: "\n") + "\n"
    }
}
