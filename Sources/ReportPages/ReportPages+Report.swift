import Foundation
import Metering
import ReconCore

extension ReportPages {
    /// Everything the report template shows, as strings already formatted (the template escapes them).
    static func reportContext(_ r: ReconciliationReport) -> [String: Any] {
        let blocking = r.reasons.filter { $0.effect == .inconclusive }
        let limits = r.reasons.filter { $0.effect != .inconclusive }
        let currency = r.invoice.currency
        func reason(_ x: EvidenceReason) -> [String: Any] {
            var out: [String: Any] = ["code": x.code, "detail": x.detail]
            if let remedy = x.remedy { out["remedy"] = remedy }
            if let label = x.effectLabel { out["effect"] = label }
            return out
        }
        func gapClass(_ gap: Int64) -> String { gap > 0 ? "pos" : gap < 0 ? "neg" : "" }
        var context: [String: Any] = [
            "id": r.id, "vendor": r.vendor, "period": "\(r.from.dayString) – \(r.to.dayString)",
            "scope": (r.accountID.map { "account \($0)" } ?? "every account the run could see")
                + (r.invoiceScope == .account ? " (the invoice asserted to be this account's alone)" : ""),
            "runBy": r.runBy, "createdAt": r.createdAt.rfc3339,
            "verdictClass": r.isConclusive ? "conclusive" : "inconclusive",
            "verdictHeadline": r.isConclusive
                ? "Conclusive: \(r.proposalSummary)."
                : "INCONCLUSIVE: no corrections proposed. The evidence does not allow them:",
            "blocking": blocking.map(reason), "hasBlocking": !blocking.isEmpty,
            "limits": limits.map(reason), "hasLimits": !limits.isEmpty,
            "bars": Charts.modelBars(r.models, currency: currency),
            "models": r.models.map { m -> [String: Any] in
                [
                    "model": m.modelID, "metered": Format.grouped(m.metered), "vendor": Format.grouped(m.vendor), "gap": Format.signed(m.gap),
                    "gapClass": gapClass(m.gap), "gapPct": m.gapPct.map { $0 + "%" } ?? "—", "vendorAmount": Format.money(m.vendorAmount),
                    "gapAmount": Format.money(m.gapAmount),
                ]
            },
            "total": [
                "metered": Format.grouped(r.total.metered), "vendor": Format.grouped(r.total.vendor), "gap": Format.signed(r.total.gap),
                "gapPct": ReconciliationReport.gapPercent(gap: r.total.gap, metered: r.total.metered).map { $0 + "%" } ?? "—",
                "vendorAmount": Format.money(r.invoice.amount), "gapAmount": Format.money(r.total.gapAmount),
            ],
            "shape": r.shape.rawValue,
            "tokenTypes": r.models.flatMap { m in
                m.tokenTypes.map { t -> [String: Any] in
                    [
                        "model": m.modelID, "tokenType": t.tokenType?.rawValue ?? "(all)", "metered": Format.grouped(t.metered),
                        "vendor": Format.grouped(t.vendor), "gap": Format.signed(t.gap), "gapClass": gapClass(t.gap),
                        "tolerance": Format.grouped(t.tolerance), "vendorAmount": Format.money(t.vendorAmount), "gapAmount": Format.money(t.gapAmount),
                    ]
                }
            },
            "daily": Charts.daily(r),
            "findings": r.findings.map { f -> [String: Any] in
                var out: [String: Any] = [
                    "model": f.modelID, "tokenType": f.tokenType?.rawValue ?? "(all)", "account": f.accountID ?? "—",
                    "quantity": Format.signed(f.quantity), "amount": Format.money(f.amount), "gapClass": f.gapClass.rawValue, "rule": f.decidedBy,
                    "reason": f.reason, "since": f.gapSince.map { "\($0)\(f.gapDays.map { " (\($0) days)" } ?? "")" } ?? "",
                ]
                if !f.blockedBy.isEmpty { out["blockedBy"] = f.blockedBy.joined(separator: ", ") }
                return out
            },
            "corrections": r.corrections.map { c -> [String: Any] in
                [
                    "eventID": c.eventID, "account": c.accountID, "model": c.modelID ?? "—", "tokenType": c.dimensions["token_type"] ?? "—",
                    "quantity": Format.signed(c.quantity), "ref": c.correctionRef, "reason": c.dimensions["reason"] ?? "",
                ]
            },
            "appliedLine": r.applied
                ? "Applied\(r.appliedAt.map { " at \($0.rfc3339)" } ?? ""): \(r.appliedEventIDs.count) correction event(s) posted."
                    + (r.revertedAt.map { " Reverted at \($0.rfc3339)." } ?? "")
                : (r.corrections.isEmpty ? "Nothing to apply." : "Not applied: usagebox reconcile apply \(r.id) posts them."),
            "held": r.held.map { h -> [String: Any] in
                [
                    "account": h.correction.accountID, "model": h.correction.modelID ?? "—", "quantity": Format.signed(h.correction.quantity),
                    "detail": h.detail,
                ]
            },
            "hasHeld": !r.held.isEmpty,
            "unmapped": r.unmapped.map { u -> [String: Any] in
                [
                    "location": u.location,
                    "what": u.description ?? [u.vendorModel, u.vendorTokenType].compactMap { $0 }.joined(separator: " / "),
                    "amount": u.amount.map(Format.money) ?? "—", "currency": u.currency, "reason": u.reason,
                ]
            },
            "outOfScope": r.meteredOutOfScope.map { o -> [String: Any] in
                ["model": o.modelID ?? "(none)", "meter": o.meterID ?? "—", "tokens": Format.grouped(o.tokens), "reason": o.reason]
            },
            "hasOutOfScope": !r.meteredOutOfScope.isEmpty,
            "files": r.invoice.files.map { ["name": $0.name, "parser": $0.parser, "sha256": $0.sha256] },
            "invoiceAmount": Format.money(r.invoice.amount, currency), "invoiceLines": String(r.invoice.lines), "invoiceFormat": r.invoice.format,
            "cardVendor": r.rateCard.vendor, "cardVersion": r.rateCard.version, "cardSha": r.rateCard.sha256,
            "rules": r.rules.chain.joined(separator: " → "), "rulesSha": r.rules.sha256,
            "verifyLine": "\(r.verify.mode.rawValue): " + (r.verify.ok ? "ok, no drift" : "DRIFT \(Format.grouped(r.verify.drift)) (run allowed it)"),
            "coverageLine":
                "\(r.coverage.coveredDays) of \(r.coverage.periodDays) day(s) covered (\(r.coverage.basis.replacingOccurrences(of: "_", with: " ")))"
                + (r.coverage.pages.isEmpty ? "" : ", \(r.coverage.pages.count) page(s)"),
        ]
        if let factor = r.impliedFactor { context["impliedFactor"] = factor }
        if !r.unmeteredTokenTypes.isEmpty { context["unmetered"] = r.unmeteredTokenTypes.map(\.rawValue).joined(separator: ", ") }
        return context
    }
}

/// Chart geometry: pixels computed from exact figures (Double is fine for pixels, never for money).
enum Charts {
    static func px(_ v: Double) -> String { String(format: "%.1f", v) }

    /// Two bars per model, metered above vendor, on one scale.
    static func modelBars(_ models: [ReconciliationReport.ModelRow], currency: String) -> [String: Any] {
        let label = 230.0, area = 470.0, rowH = 46.0, barH = 14.0
        let top = models.map { max($0.metered, $0.vendor) }.max() ?? 0
        let scale = top > 0 ? area / Double(top) : 0
        let rows = models.enumerated().map { i, m -> [String: Any] in
            let y = Double(i) * rowH + 8
            return [
                "label": m.modelID, "labelY": px(y + barH), "x": px(label), "meteredY": px(y), "vendorY": px(y + barH + 2),
                "meteredW": px(max(Double(m.metered) * scale, 0)), "vendorW": px(max(Double(m.vendor) * scale, 0)), "barH": px(barH),
                "valueX": px(label + area + 10), "metered": Format.grouped(m.metered), "vendorValue": Format.grouped(m.vendor),
                "gap": Format.signed(m.gap), "gapAmount": "\(currency) \(Format.money(m.gapAmount))",
            ]
        }
        return ["width": "960", "height": px(Double(max(models.count, 1)) * rowH + 10), "rows": rows]
    }

    /// Per model and token type, metered and vendor tokens per day on a scale fitted to them, and
    /// the day each gap beyond tolerance began marked.
    static func daily(_ r: ReconciliationReport) -> [[String: Any]] {
        struct Key: Hashable { var model: String, tokenType: String? }
        var keys: [Key] = []
        var cells: [Key: [String: (metered: Int64, vendor: Int64)]] = [:]
        for d in r.days {
            let key = Key(model: d.modelID, tokenType: d.tokenType?.rawValue)
            if cells[key] == nil { keys.append(key) }
            var cell = cells[key, default: [:]][d.day] ?? (0, 0)
            cell.metered = cell.metered &+ d.metered
            cell.vendor = cell.vendor &+ (d.vendor ?? 0)
            cells[key, default: [:]][d.day] = cell
        }
        let days = Array(Set(r.days.map(\.day))).sorted()
        guard days.count >= 2 else { return [] }
        let width = 960.0, height = 190.0, left = 70.0, right = 930.0, top = 26.0, bottom = 160.0
        let step = (right - left) / Double(days.count - 1)
        return keys.map { key -> [String: Any] in
            let series = days.map { cells[key]?[$0] ?? (0, 0) }
            let values = series.flatMap { [$0.metered, $0.vendor] }
            // A scale fitted to the figures, so a gap of a few percent shows.
            let hi = values.max() ?? 0, lo = values.min() ?? 0
            let pad = max((hi - lo) / 10, 1)
            let floor = max(lo - pad, 0), ceiling = hi + pad
            let scale = (bottom - top) / Double(max(ceiling - floor, 1))
            func points(_ values: [Int64]) -> String {
                values.enumerated().map { i, v in "\(px(left + Double(i) * step)),\(px(bottom - Double(v - floor) * scale))" }.joined(separator: " ")
            }
            var out: [String: Any] = [
                "model": key.model + (key.tokenType.map { " · \($0)" } ?? ""), "width": px(width), "height": px(height), "left": px(left),
                "right": px(right), "top": px(top), "bottom": px(bottom), "metered": points(series.map(\.metered)),
                "vendor": points(series.map(\.vendor)), "max": Format.grouped(hi), "min": Format.grouped(floor),
                "ticks": [(0, "start"), (days.count / 2, "middle"), (days.count - 1, "end")].map { i, anchor -> [String: Any] in
                    ["x": px(left + Double(i) * step), "y": px(bottom + 18), "label": days[i], "anchor": anchor]
                },
            ]
            let finding = r.findings.first { $0.modelID == key.model && $0.tokenType?.rawValue == key.tokenType && $0.gapSince != nil }
            if let since = finding?.gapSince, let i = days.firstIndex(of: since) {
                let x = left + Double(i) * step
                out["since"] = [
                    "x": px(x), "top": px(top), "bottom": px(bottom), "labelX": px(x + 4), "labelY": px(top + 10), "day": since,
                    "what": finding?.gapClass.rawValue.replacingOccurrences(of: "_", with: " ") ?? "gap",
                ]
            }
            return out
        }
    }

    /// An account's month: raw usage per day as a line, drift per day as red bars from the axis.
    static func driftWatch(_ days: [VerifyReport.Day]) -> [String: Any] {
        let width = 960.0, height = 200.0, left = 60.0, right = 940.0, top = 22.0, bottom = 170.0
        let step = days.count > 1 ? (right - left) / Double(days.count - 1) : 0
        let top1 = days.map { max($0.rawSum, $0.rollupSum) }.max() ?? 0
        let scale = top1 > 0 ? (bottom - top) / Double(top1) : 0
        let worst = days.map(\.drift).max() ?? 0
        return [
            "width": px(width), "height": px(height), "left": px(left), "right": px(right), "bottom": px(bottom), "max": Format.grouped(top1),
            "usage": days.enumerated().map { i, d in "\(px(left + Double(i) * step)),\(px(bottom - Double(d.rawSum) * scale))" }
                .joined(separator: " "),
            "drifts": days.enumerated().filter { $0.element.drift != 0 }.map { i, d -> [String: Any] in
                let h = max(4, 40 * Double(d.drift) / Double(max(worst, 1)))
                return ["x": px(left + Double(i) * step - 3), "y": px(bottom - h), "w": "6", "h": px(h), "day": d.day, "drift": Format.grouped(d.drift)]
            },
            "ticks": days.isEmpty
                ? []
                : [(0, "start"), (days.count / 2, "middle"), (days.count - 1, "end")].map { i, anchor -> [String: Any] in
                    ["x": px(left + Double(i) * step), "y": px(bottom + 18), "label": days[i].day, "anchor": anchor]
                },
        ]
    }
}
