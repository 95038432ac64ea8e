import Foundation
import Metering

/// Stage 5 (continued): whether the meter that is read is the meter the invoice bills. An
/// invoice for a whole organisation compared with one account's meter would make every other
/// account's traffic look like that account's under-metering, and its absence like over-metering.
enum ScopeCheck {
    static func assess(_ o: ReconciliationOptions, vendor: VendorLedger, meter: MeterLedger, card: any RateCardConverter) -> [EvidenceReason] {
        var reasons: [EvidenceReason] = []
        let invoiceModels = Set(vendor.cells.keys.map(\.model))
        func visible(_ accounts: [String: Int64]) -> [EvidenceReason.AccountTotal] {
            accounts.filter { o.scope.allows($0.key) }.sorted { $0.key < $1.key }.map { EvidenceReason.AccountTotal(accountID: $0.key, metered: $0.value) }
        }
        // A key that may not see every account learns nothing of the others: not their totals,
        // not how many there are, not whether any metered a model (a reader probing one-line
        // invoices day by day learnt which days another account used a model). What it cannot
        // check is held whatever the others metered (`invoice_scope_unchecked`).
        let seesEveryAccount = o.scope == .all
        func listed(_ shown: [EvidenceReason.AccountTotal]) -> String { shown.map { "\($0.accountID): \($0.metered)" }.joined(separator: ", ") }

        if let account = o.attribution.account, !meter.accountsWithUsage.contains(account) {
            let others = meter.accountsWithUsage.reduce(into: [String: Int64]()) { out, a in
                out[a] = meter.everyAccount[a]?.values.reduce(0, &+) ?? 0
            }
            let shown = visible(others)
            reasons.append(
                .init(
                    code: "no_metered_usage", effect: .inconclusive, accountID: account,
                    detail: "\(account) has no events in the period: a mistyped account and a collector that stopped look alike. "
                        + (shown.isEmpty
                            ? "No account this key may see has usage."
                            : "Accounts with usage: \(shown.map(\.accountID).joined(separator: ", "))."),
                    remedy: "check --account; if the account really sent nothing, find out why before correcting", accounts: shown))
        }

        if case let .single(account) = o.attribution, o.invoiceScope == .asGiven {
            var others: [String: Int64] = [:]
            for (a, models) in meter.everyAccount where a != account {
                let tokens = models.filter { invoiceModels.contains($0.key) }.values.reduce(0, &+)
                if tokens > 0 { others[a] = tokens }
            }
            let shown = visible(others)
            if !shown.isEmpty {
                reasons.append(
                    .init(
                        code: "other_accounts_in_scope", effect: .inconclusive, accountID: account,
                        detail: "other accounts metered the invoice's models in the period (\(listed(shown))), so the invoice may bill their usage too",
                        remedy: "pass --account-map to attribute the invoice's lines, or --invoice-scope account if the invoice is \(account)'s alone",
                        accounts: shown))
            } else if !seesEveryAccount {
                reasons.append(
                    .init(
                        code: "invoice_scope_unchecked", effect: .inconclusive, accountID: account,
                        detail: "this key may not see every account, so whether others metered the invoice's models in the period "
                            + "(and the invoice bills their usage too) cannot be checked with it",
                        remedy: "pass --invoice-scope account if the invoice is \(account)'s alone, or run the reconciliation with an admin key"))
            }
        }

        // The invoice itself names several tenants (workspaces, projects; lines without one are the
        // default's): an organisation's bill may hold other customers' usage even when no other
        // account is metered here (their traffic may go unmetered, or through another meter).
        if case let .single(account) = o.attribution, o.invoiceScope == .asGiven,
            let (key, values) = vendor.tenantValues.filter({ $0.value.count > 1 }).min(by: { $0.key < $1.key })
        {
            let named = values.sorted().map { $0.isEmpty ? "none (the default)" : $0 }
            reasons.append(
                .init(
                    code: "several_attributions_in_invoice", effect: .inconclusive, accountID: account,
                    detail: "the invoice's usage lines name \(named.count) \(key) values (\(named.prefix(5).joined(separator: ", "))"
                        + "\(named.count > 5 ? ", …" : "")), so it may bill other accounts' usage besides \(account)'s",
                    remedy: "pass --account-map to attribute the invoice's lines, or --invoice-scope account if every line is \(account)'s"))
        }

        // `--invoice-scope account` says every line is the account's; an invoice naming several
        // tenants while other accounts metered its models says it may not be: a gap above the
        // account's meter may be theirs. Two other accounts summing to the gap, or a real loss
        // plus another's usage, read as the account's under-metering (+64,569,593 and +58,652,693
        // proposed: tester Q2). Held for a key that sees every account (it may know the others).
        if case let .single(account) = o.attribution, o.invoiceScope == .account, seesEveryAccount,
            let (key, values) = vendor.tenantValues.filter({ $0.value.count > 1 }).min(by: { $0.key < $1.key })
        {
            for model in invoiceModels.sorted() {
                let others = meter.everyAccount.filter { $0.key != account }.compactMapValues { models in models[model].flatMap { $0 > 0 ? $0 : nil } }
                guard !others.isEmpty else { continue }
                let shown = visible(others)
                reasons.append(
                    .init(
                        code: "several_attributions_in_invoice", effect: .blocksPositive, modelID: model, accountID: account,
                        detail: "--invoice-scope account says the invoice is \(account)'s alone, but its usage lines name \(values.count) \(key) values "
                            + "and other accounts metered \(model) (\(listed(shown))): a gap above \(account)'s meter may be their usage",
                        remedy: "pass --account-map to attribute the invoice's lines (several workspaces or projects may map to one account)",
                        accounts: shown))
            }
        }

        if !meter.otherMeters.isEmpty {
            // The other meters may be another vendor's traffic (then reading one is right) or this
            // invoice's too (then the vendor billing more than this meter is no under-metering).
            reasons.append(
                .init(
                    code: "other_meters_in_scope", effect: .blocksPositive,
                    detail: "--meter-id \(o.meterID ?? "") compares one meter, and the invoice's models are also metered on "
                        + meter.otherMeters.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value) tokens)" }.joined(separator: ", ")
                        + ": if the invoice bills those too, the vendor's excess is theirs",
                    remedy: "send the dimension vendor on every event so each meter's traffic says who served it"))
        }

        if case let .mapped(map, only) = o.attribution {
            // An account the map sends lines to that has no events at all: a typo in the map and a
            // dead collector look alike.
            let attributed = Set(vendor.cells.keys.compactMap(\.account))
            for a in attributed.sorted() where only == nil && !meter.accountsWithUsage.contains(a) {
                reasons.append(
                    .init(
                        code: "no_metered_usage", effect: .blocksAccount, accountID: a,
                        detail: "the account map sends invoice lines to \(a), which has no events in the period",
                        remedy: "check the account map's entry for \(a)"))
            }
            let mapped = Set(map.values)
            var unmapped: [String: [String: Int64]] = [:]
            for (a, models) in meter.everyAccount.sorted(by: { $0.key < $1.key }) where !mapped.contains(a) {
                for (model, tokens) in models where invoiceModels.contains(model) && tokens > 0 { unmapped[model, default: [:]][a] = tokens }
                guard only == nil, o.scope.allows(a), models.contains(where: { invoiceModels.contains($0.key) && $0.value > 0 }) else { continue }
                reasons.append(
                    .init(
                        code: "account_not_in_map", effect: .blocksNegative, accountID: a,
                        detail: "\(a) meters the invoice's models but no account map entry names it: the vendor may bill its usage under an unmapped key",
                        remedy: "add \(a)'s workspace, project or key to the account map"))
            }
            // Its usage, billed under a mapped workspace, reads as that account's under-metering
            // (+3,050,000 proposed for a 1,500,000 loss): no mapped account's excess of that model
            // is a correction while an account the map does not name meters it.
            for (model, accounts) in unmapped.sorted(by: { $0.key < $1.key }) {
                let shown = visible(accounts)
                guard !shown.isEmpty else { continue }
                reasons.append(
                    .init(
                        code: "unmapped_account_meters_model", effect: .blocksPositive, modelID: model,
                        detail: "\(model) is metered by accounts no account map entry names (\(listed(shown))): the vendor may bill "
                            + "their usage under a mapped workspace, project or key, so a mapped account's excess may be theirs",
                        remedy: "add those accounts' workspaces, projects or keys to the account map", accounts: shown))
            }
            // Accounts this key may not see are not checked, and a mapped account's excess may be theirs.
            if !seesEveryAccount {
                reasons.append(
                    .init(
                        code: "invoice_scope_unchecked", effect: .blocksPositive,
                        detail: "this key may not see every account, so whether accounts no account map entry names meter the invoice's "
                            + "models (and the vendor bills their usage under a mapped workspace, project or key) cannot be checked with it",
                        remedy: "run the reconciliation with an admin key"))
            }
        }

        // A model metered in tokens at another scale (`tokens_k`), or only in another unit: that
        // usage is in the bill and not in the tokens read, so neither side of the model can be
        // trusted to a correction. A request counter beside the model's token meter counts the
        // same traffic again, and stays out of scope only.
        let metered = Set(meter.cells.filter { $0.value != 0 }.map(\.key.model))
        for (model, meters) in meter.otherUnits.sorted(by: { $0.key < $1.key })
        where !metered.contains(model) || meters.values.contains(where: MeterLedger.isScaledTokens) {
            reasons.append(
                .init(
                    code: "metered_in_other_units", effect: .blocksModel, modelID: model,
                    detail: "\(model) is metered on "
                        + meters.sorted { $0.key < $1.key }.map { "\($0.key) (unit \($0.value))" }.joined(separator: ", ")
                        + ", not in tokens: the invoice bills that usage and the tokens compared do not hold it",
                    remedy: "meter \(model) in tokens, or reconcile that meter's usage by hand"))
        }

        for model in meter.untypedModels.sorted() {
            reasons.append(
                .init(
                    code: "untyped_meter_usage", effect: .note, modelID: model,
                    detail: "\(model) has metered usage without a token_type; it is compared per model, not per token type",
                    remedy: "send token_type on every event"))
        }

        // A token type the meter records and the vendor neither bills nor prices for the model: the
        // volume is likely billed under another name (reasoning inside output), so neither side of
        // the model can be trusted to a correction.
        var flagged = Set<String>()
        for key in meter.cells.keys.sorted() where meter.cells[key, default: 0] > 0 {
            // Reasoning on a model the vendor bills is judged whatever the card lists (a FOCUS
            // export's card lists no models: its output, reasoning included, was corrected up by
            // the reasoning the meter records apart, billing it twice).
            guard let tt = key.tokenType,
                card.models.contains(key.model) || (tt == .reasoning && vendor.cells.keys.contains { $0.model == key.model }),
                !vendor.cells.keys.contains(where: { $0.model == key.model && $0.tokenType == tt }),
                !card.prices(model: key.model, tokenType: tt, date: o.range.from),
                flagged.insert("\(key.model)|\(tt.rawValue)").inserted
            else { continue }
            let detail = "the meter records \(tt.rawValue) for \(key.model), which the vendor's card does not price: it may be billed under another token type"
            let remedy = "map the meter's token type onto the vendor's (e.g. reasoning → output) or add it to the card"
            guard tt == .reasoning else {
                reasons.append(
                    .init(code: "token_type_not_billed_by_vendor", effect: .blocksModel, modelID: key.model, tokenType: tt, detail: detail, remedy: remedy))
                continue
            }
            // Vendors bill reasoning inside output: it may stand in output's gap (a meter that
            // splits it out) and nowhere else, so an outage of the model's input is still corrected.
            reasons.append(
                .init(code: "token_type_not_billed_by_vendor", effect: .blocksCell, modelID: key.model, tokenType: tt, detail: detail, remedy: remedy))
            reasons.append(
                .init(
                    code: "token_type_not_billed_by_vendor", effect: .blocksCell, modelID: key.model, tokenType: .output,
                    detail: detail + " (vendors bill reasoning inside output, so \(key.model)'s output is held with it)", remedy: remedy))
        }
        return reasons
    }

    /// `--invoice-scope account` says every line is the account's; a model billed above its meter
    /// by what another account metered of it (one token type's gap, or the model's gaps together,
    /// within their tolerance or a thousandth) says otherwise. An org-wide invoice of two
    /// workspaces proposed +43,352,335 Haiku input on acct_42: acct_43's metered Haiku, token for
    /// token (tester Q). Only for a key that sees every account (another's totals are not a
    /// scoped key's to learn).
    static func gapMatchesAnotherAccount(_ o: ReconciliationOptions, diff: GapDiff, meter: MeterLedger) -> [EvidenceReason] {
        guard o.invoiceScope == .account, o.scope == .all, case let .single(account) = o.attribution else { return [] }
        return diff.models.compactMap { m -> EvidenceReason? in
            let others: [(account: String, tokens: Int64)] = meter.everyAccount.compactMap { a, models in
                guard a != account, let tokens = models[m.modelID], tokens > 0 else { return nil }
                return (a, tokens)
            }
            guard let (other, tokens) = others.sorted(by: { $0.account < $1.account }).first(where: { m.isAboveTheMeter(by: $0.tokens) }) else { return nil }
            return EvidenceReason(
                code: "gap_matches_another_accounts_usage", effect: .blocksPositive, modelID: m.modelID, accountID: account,
                detail: "--invoice-scope account says the invoice is \(account)'s alone, and it bills \(m.modelID) above \(account)'s meter "
                    + "by what \(other) metered of it (\(tokens) tokens): an invoice that bills \(other)'s usage too looks like that",
                remedy: "pass --account-map to attribute the invoice's lines, or correct by hand if the usage is \(account)'s",
                accounts: [EvidenceReason.AccountTotal(accountID: other, metered: tokens)])
        }
    }

}

extension ReconciliationReport.ModelRow {
    /// Whether the vendor bills the model above the meter by `tokens` (one token type's gap, or
    /// the model's gaps together, within their tolerance or a thousandth of `tokens`): usage the
    /// meter holds elsewhere (under another vendor's label, on another account) looks like that.
    func isAboveTheMeter(by tokens: Int64) -> Bool {
        let rows = tokenTypes.filter { $0.gap > 0 && $0.beyondTolerance }
        guard !rows.isEmpty, tokens > 0 else { return false }
        let together = (gap: rows.reduce(Int64(0)) { $0 &+ $1.gap }, tolerance: rows.reduce(Int64(0)) { $0 &+ max($1.tolerance, 0) })
        return (rows.map { ($0.gap, max($0.tolerance, 0)) } + [together]).contains { gap, tolerance in
            DailyEvidence.distance(gap, tokens) <= UInt64(max(tolerance, tokens / 1000))
        }
    }
}
