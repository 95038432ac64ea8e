import Foundation
import Metering

/// Stage 7: every gap, per cell, classified by the chain (plugin classifiers, the team's rules,
/// the defaults); gaps inside tolerance are `within_tolerance`; stated quantities priced
/// differently from the card are pricing gaps.
enum Classification {
    static func classify(_ diff: GapDiff, chain: ClassifierChain) -> [ReconciliationReport.Finding] {
        var findings: [ReconciliationReport.Finding] = []
        var gapAt: [CellKey: Int] = [:]
        for key in diff.keys {
            let v = diff.vendor[key]
            let vendorTokens = v?.tokens ?? 0
            let metered = diff.metered[key] ?? 0
            let gap = vendorTokens - metered
            guard gap != 0 else { continue }
            let amount = diff.money(gap, key)
            let finding = GapFinding(
                modelID: key.model, tokenType: key.tokenType, accountID: key.account, quantity: gap, amount: amount,
                metered: metered, vendor: vendorTokens, shape: diff.shape,
                unmetered: diff.meteredModelType(key) == 0 && vendorTokens > 0)
            let verdict =
                gap.magnitude <= UInt64(clamping: v?.toleranceTokens ?? 0)
                ? GapClassification(gapClass: .withinTolerance, rule: "tolerance", reason: "within_invoice_rounding", classifier: "engine")
                : chain.classify(finding)
            findings.append(
                .init(
                    modelID: key.model, tokenType: key.tokenType, accountID: key.account, quantity: gap,
                    amount: ExactAmount(amount), metered: metered, vendor: vendorTokens, gapClass: verdict.gapClass,
                    rule: verdict.rule, classifier: verdict.classifier, reason: verdict.reason, blockedBy: []))
            if verdict.gapClass != .withinTolerance { gapAt[key] = findings.count - 1 }
        }
        for (key, i) in gapAt { if let cell = diff.vendor[key] { holdIfADayStatesWhatItsMoneyDoesNot(&findings[i], cell) } }
        for key in diff.vendor.keys.sorted() {
            guard let p = diff.vendor[key]!.pricing else { continue }
            let money = p.money - p.implied
            guard abs(money) > p.halfUnits else { continue }
            let perToken = p.stated > 0 && p.implied != 0 ? p.implied / Decimal(exactly: p.stated) : 0
            let q = perToken == 0 ? 0 : (ExactDecimal.roundedInt64(money / perToken) ?? 0)
            if let m = gapAt[key], !uniformlyDiscounted(diff.vendor[key]!, metered: diff.meteredDaily[key] ?? [:]) {
                holdIfMoneyDisagrees(&findings[m], pricingTokens: q, tolerance: diff.vendor[key]!.toleranceTokens)
            }
            findings.append(
                .init(
                    modelID: key.model, tokenType: key.tokenType, accountID: key.account,
                    quantity: q,
                    amount: ExactAmount(money), metered: diff.metered[key] ?? 0, vendor: p.stated, gapClass: .pricingGap,
                    rule: "stated-quantity", classifier: "engine", reason: "amount_differs_from_quantity_at_card_price",
                    blockedBy: []))
        }
        return findings
    }

    /// A cell's days (buckets) of one token type that state a count and bill money for it, in
    /// time order, each with its UTC day.
    static func countedDays(_ buckets: [(key: VendorCell.BucketKey, bucket: VendorBucket)]) -> [(day: Int64, bucket: VendorBucket)] {
        buckets.sorted { $0.key.from < $1.key.from }
            .filter { $0.bucket.hasStated && $0.bucket.hasAmount && $0.bucket.stated > 0 && $0.bucket.comparedImplied > 0 }
            .map { (Timestamp(microseconds: $0.key.from).day, $0.bucket) }
    }

    /// Whether a day's money departs from its count at a ratio: beyond twice its last digit's half
    /// and half a point (a usage report and a cost report cut at midnight differ by a little every
    /// day, and nothing is disputed by that).
    static func departs(_ d: VendorBucket, usual: Decimal) -> Bool {
        let expected = usual * d.comparedImplied
        return abs(d.amount - expected) > max(2 * d.amountHalfUnits, expected * ReconciliationEngine.leastFactor)
    }

    /// Every day's money at one ratio of a half or more to its count (a discount), while the
    /// count matches the meter on most days: the money agrees with the count (a 20 % discount
    /// beside an outage read "money below the meter, count above it" and held a clean, counted
    /// loss). A count above the meter by a steady share on every day, its money matching the
    /// meter, is the count's (a unit misread, a count inflated 1.25 times), not a discount; so is
    /// a cell of several token types (compared per model).
    static func uniformlyDiscounted(_ cell: VendorCell, metered: [Int64: Int64]) -> Bool {
        guard Set(cell.buckets.keys.map(\.tag)).count == 1 else { return false }
        let days = countedDays(cell.clustered)
        guard days.count >= 2 else { return false }
        let ratios = days.map { $0.bucket.amount / $0.bucket.comparedImplied }.sorted()
        let usual = ratios[ratios.count / 2]
        guard usual > Decimal(string: "0.5")!, usual < 1 - ReconciliationEngine.leastFactor, !days.contains(where: { departs($0.bucket, usual: usual) })
        else { return false }
        // The count of a whole day against the day's meter: a Vertex export of 6-hour windows
        // compared each window with the whole day, matched none, and held a clean, counted loss
        // beside a 20 % discount (tester T).
        var byDay: [Int64: (stated: Int64, tolerance: Decimal)] = [:]
        for d in days {
            let sum = byDay[d.day] ?? (0, 0)
            byDay[d.day] = (sum.stated &+ d.bucket.stated, sum.tolerance + max(d.bucket.tolerance, 0))
        }
        let matching = byDay.filter { day, count in
            let m = metered[day] ?? 0
            return Decimal(exactly: abs(count.stated &- m)) <= max(count.tolerance, Decimal(exactly: m) * ReconciliationEngine.leastFactor)
        }
        return matching.count * 2 >= byDay.count
    }

    /// Days whose money pays for fewer (or more) of their stated tokens than the days around
    /// them do, netted: those tokens are the vendor's count alone (or its money's alone), and a
    /// gap that holds or leaves them out is no gap both confirm. A day's usage report 1,000,000
    /// above its cost report, beside a real outage, was corrected as the outage plus that million
    /// (+7,390,000 proposed for 6,390,000 lost); 1,000,000 below it, as the outage less that
    /// million (+4,011,739 for 5,011,739, with no word of the day). On its own, the month-level
    /// check below holds it.
    /// "Around": the median ratio of money to the count's money (`comparedImplied`: at the card's
    /// price, or as the money is priced where it bills a tier the counts do not name) over the
    /// seven days about it (a week at the period's edges), so a discount on every day, or one that starts
    /// mid-month, disputes nothing (taken from the month's median, a discount from May 12 made
    /// May 1–11 "disputed", and netted against them a real dispute on May 20 was let through).
    /// Per token type: a cell compared per model holds several, each at its own price.
    static func holdIfADayStatesWhatItsMoneyDoesNot(_ f: inout ReconciliationReport.Finding, _ cell: VendorCell) {
        guard f.gapClass == .meteringGap else { return }
        var net: Int64 = 0
        for (_, group) in Dictionary(grouping: cell.clustered, by: \.key.tag) {
            let days = countedDays(group).map(\.bucket)
            guard days.count >= 2 else { continue }
            let ratios = days.map { $0.amount / $0.comparedImplied }
            for (i, d) in days.enumerated() {
                let lower = max(0, min(i - 3, ratios.count - 7))
                let week = ratios[lower..<min(ratios.count, lower + 7)].sorted()
                let usual = week[week.count / 2]
                guard usual > 0, departs(d, usual: usual) else { continue }
                let expected = usual * d.comparedImplied, off = d.amount - expected
                // Stated tokens the money does not pay for (negative: money for tokens not stated).
                let tokens = ExactDecimal.roundedInt64(-off / expected * Decimal(exactly: d.stated)) ?? (off < 0 ? .max : .min)
                let (sum, overflow) = net.addingReportingOverflow(tokens)
                net = overflow ? (tokens > 0 ? .max : .min) : sum
            }
        }
        guard net != 0, net.magnitude > max(UInt64(max(f.metered, 0)) / 1000, 1) else { return }
        f.gapClass = .unexplained
        f.rule = "stated-quantity-conflict"
        f.classifier = "engine"
        // Named by what the days show, whichever way the gap runs.
        f.reason = net > 0 ? "stated_quantity_beyond_its_money_on_some_days" : "stated_quantity_short_of_its_money_on_some_days"
    }

    /// The vendor's money at the card's price matches the meter, or lies on the other side of it,
    /// while its stated quantity does not: the quantity is as likely misread (a unit off by 1,000)
    /// as the meter wrong, so the gap is not corrected. `pricingTokens` is the money's difference
    /// from stated × card price, in tokens: money ÷ price − metered = the gap + `pricingTokens`.
    static func holdIfMoneyDisagrees(_ f: inout ReconciliationReport.Finding, pricingTokens q: Int64, tolerance: Int64) {
        let slack = max(UInt64(max(tolerance, 0)), UInt64(max(f.metered, 0)) / 1000)
        let (moneyGap, overflow) = f.quantity.addingReportingOverflow(q)
        guard q != 0, f.metered > 0, (q > 0) != (f.quantity > 0), !overflow else { return }
        let matches = moneyGap.magnitude <= slack
        // Money confirming only part of the gap is not held: a contract price a few points under
        // the card, on hourly rows, made a real outage's money confirm under half of it, and
        // holding that withheld real outages (tester P2). A class misread is caught per line,
        // by the plugin's reading, instead.
        guard matches || (moneyGap > 0) != (f.quantity > 0) else { return }
        f.gapClass = .unexplained
        f.rule = "stated-quantity-conflict"
        f.classifier = "engine"
        f.reason = matches ? "amount_matches_meter_not_stated_quantity" : "amount_and_stated_quantity_disagree_with_the_meter_both_ways"
    }
}

/// Stage 8: a correction for every metering gap the evidence allows; the others say what
/// blocked them, and large over-metering corrections wait for a person.
struct CorrectionProposal: Sendable {
    typealias Finding = ReconciliationReport.Finding
    var findings: [ReconciliationReport.Finding]
    var corrections: [ProposedCorrection] = []
    var held: [ReconciliationReport.HeldCorrection] = []
    var basis: [ReconciliationReport.MeterBasis] = []

    static func propose(
        _ findings: [ReconciliationReport.Finding], reasons: [EvidenceReason], diff: GapDiff, meter: MeterLedger,
        options o: ReconciliationOptions, vendor: String, vendorOfModel: [String: String] = [:], vendorNames: Set<String>, reportID: String,
        mayBeMisspelt: @escaping @Sendable (String) -> Bool, store: any MeterStore
    ) async throws -> CorrectionProposal {
        var out = CorrectionProposal(findings: findings)
        let units = findings.contains { $0.gapClass == .meteringGap } ? try await MeterLedger.units(store) : [:]
        // Each code once: eight items of one file billed for less are one reason to a finding.
        let inconclusive = reasons.filter { $0.effect == .inconclusive }.map(\.code).firstOfEach
        let ref = ReconciliationEngine.correctionRef(range: o.range, vendor: vendor)
        // A pricing gap read off partial evidence (a page of an export, an invoice for other days)
        // is the missing part's shape as likely as a rate card's: held like a metering gap, so
        // nobody edits a card on it. A line's money against its own stated quantity stands alone.
        // So is a pass-through read off it (a missing page's cache reads were "explained" as
        // shared prompt caching).
        if !inconclusive.isEmpty {
            for i in out.findings.indices
            where [.pricingGap, .passThrough].contains(out.findings[i].gapClass) && !out.findings[i].isEngine("stated-quantity") {
                out.findings[i].gapClass = .unexplained
                out.findings[i].reason = inconclusive[0]
                out.findings[i].blockedBy = inconclusive
            }
        }
        let gaps = out.findings.filter { $0.gapClass == .meteringGap }
        let slots = try await CorrectionSlots.read(
            accounts: Set(gaps.compactMap(\.accountID)), store: store,
            holding: gaps.reduce(into: [:]) { out, f in f.accountID.map { out[$0, default: 0] += 1 } })
        // What each account metered of each model, summed once (filtered per correction, it was
        // quadratic in the accounts of a run).
        var meteredOfModel: [CellKey: Int64] = [:]
        for (k, q) in diff.metered { meteredOfModel[CellKey(model: k.model, tokenType: nil, account: k.account), default: 0] += q }
        // A relabel pair is decided together: blocked, held or proposed as one.
        var groups: [[Int]] = []
        var grouped = Set<Int>()
        for i in out.findings.indices where out.findings[i].gapClass == .meteringGap && !grouped.contains(i) {
            var group = [i]
            if let other = out.findings[i].pairedWith,
                let j = out.findings.indices.first(where: {
                    $0 != i && out.findings[$0].modelID == out.findings[i].modelID
                        && out.findings[$0].accountID == out.findings[i].accountID && out.findings[$0].tokenType == other
                        && out.findings[$0].gapClass == .meteringGap
                })
            {
                group.append(j)
            }
            grouped.formUnion(group)
            groups.append(group)
        }
        for group in groups {
            var blockers = inconclusive
            for i in group {
                let f = out.findings[i]
                if f.accountID == nil { blockers.append("unattributed") }
                for r in reasons where r.applies(to: f) { blockers.append(r.code) }
            }
            blockers = blockers.firstOfEach
            if !blockers.isEmpty {
                for i in group {
                    out.findings[i].gapClass = .unexplained
                    out.findings[i].reason = blockers[0]
                    out.findings[i].blockedBy = blockers
                }
                continue
            }
            // A relabel moves the smaller of the two gaps from one token type to the other: net zero tokens.
            let relabel = group.count == 2 ? group.map { out.findings[$0].quantity.magnitude }.min() : nil
            var proposed: [(ProposedCorrection, Finding)] = []
            for i in group {
                let f = out.findings[i]
                let account = f.accountID!
                let quantity = relabel.map { f.quantity < 0 ? -Int64($0) : Int64($0) } ?? f.quantity
                let rawModels = meter.rawModels[f.modelID] ?? [f.modelID]
                let meterID = try await meterFor(account: account, rawModels: rawModels, options: o, store: store, units: units)
                let cell = CellKey(model: f.modelID, tokenType: f.tokenType, account: account)
                var dims = ["reason": f.reason, "source": "vendor_reconciliation", "reconciliation_id": reportID, "vendor": vendorOfModel[f.modelID] ?? vendor]
                // The id names the account's next correction slot (`CorrectionSlots`): two runs
                // made from one meter state that correct this account claim the same first id, so
                // the store's one writer of the account posts one and answers the other `conflict`
                // — the only guard two processes applying at once share — and apply refuses a run
                // whose account took a correction since (`MeterBasis.slot`, and per cell in the
                // period `MeterBasis.corrections`). The id is given once every group is decided
                // (below): the run's proposed corrections take the first slots, the held ones the
                // next, so applying without --confirm-large leaves no slot empty before a posted one.
                let prior = meter.correctionCounts[cell] ?? 0
                let first = slots.count(account: account)
                if let tt = f.tokenType { dims["token_type"] = tt.rawValue }
                out.basis.append(
                    .init(
                        accountID: account, modelID: f.modelID, tokenType: f.tokenType, rawModelIDs: rawModels.sorted(),
                        meterID: o.meterID, vendors: vendorNames.sorted(), metered: diff.metered[cell] ?? 0, corrections: prior, slot: first))
                if let other = f.pairedWith { dims["relabel_of"] = other.rawValue }
                proposed.append(
                    (
                        ProposedCorrection(
                            eventID: "",  // given once every group is decided, below
                            accountID: account, meterID: meterID, modelID: f.modelID, correctionRef: ref,
                            quantity: quantity, unit: units[meterID], timestamp: Timestamp(microseconds: o.range.to.microseconds - 1_000_000),
                            dimensions: dims), f
                    ))
            }
            // Backing out more than half of what was metered is likelier a mapping or scope
            // mistake than a collector that invented the traffic; billing a model the account never
            // metered at all is likelier a mapping mistake than a collector that lost all of it.
            // A person decides.
            // Billing more again than was metered (more than doubling it) is likelier a unit or
            // mapping mistake too.
            let large = proposed.first { c, f in
                c.quantity < 0 ? c.quantity.magnitude > UInt64(max(f.metered, 0)) / 2 : f.pairedWith == nil && c.quantity >= f.metered
            }
            let unseen = proposed.first { c, f in
                c.quantity > 0 && (meteredOfModel[CellKey(model: f.modelID, tokenType: nil, account: f.accountID)] ?? 0) == 0
            }
            // A gap found only on the period's last few days is the signature of an export pulled
            // before the vendor's last day landed (or of events still on their way to the meter):
            // the same file a day later may not show it.
            // The period's end says most of why, and is named first (reason and detail alike).
            let lastDays = proposed.map(\.1).first { DailyEvidence.endsUnlikeItRan($0, diff, range: o.range) }
            let sameShare = lastDays.flatMap { DailyEvidence.sameShareAtTheEnd($0, diff, range: o.range) }
            // What makes a correction large, said beside the period's end when both hold: a
            // reviewer told only to re-pull would post a mapping mistake with --confirm-large
            // once the same file came back (review X).
            let largeDetail = large.map { lc, lf in
                lc.quantity < 0
                    ? "backs out \(lc.quantity.magnitude) of \(lf.metered) metered \(lf.tokenType?.rawValue ?? "") tokens of \(lf.modelID) "
                        + "on \(lc.accountID) (more than half)"
                    : lf.metered <= 0
                        ? "bills \(lc.quantity) \(lf.tokenType?.rawValue ?? "") tokens of \(lf.modelID) to \(lc.accountID), which metered none of "
                            + "that token type (a relabelled token type or a mapping mistake looks like this)"
                        : "bills \(lc.quantity) more \(lf.tokenType?.rawValue ?? "") tokens of \(lf.modelID) on \(lc.accountID) than the "
                            + "\(lf.metered) metered (doubling it or more: a line listed twice, a unit or mapping mistake, or a meter that lost most of that usage looks like this)"
            }
            let unseenDetail = unseen.map { uc, uf in
                "bills \(uc.quantity) tokens of \(uf.modelID) to \(uc.accountID), which metered none of that model in the period"
            }
            for (c, f) in proposed {
                if large != nil || unseen != nil || lastDays != nil {
                    var detail: String
                    if let lastDays, let same = sameShare {
                        let percent = ExactDecimal.format(abs(same.share) * 100, scale: 2)
                        detail =
                            "\(lastDays.modelID) \(lastDays.tokenType?.rawValue ?? "") is billed \(percent) % \(same.share > 0 ? "above" : "below") the meter "
                            + "on \(same.days.map(DailyEvidence.dayString).joined(separator: ", ")) alike, the period's last days with traffic: a price "
                            + "change from \(DailyEvidence.dayString(same.days[0])) bills like that, and so does a collector that began losing "
                            + "a fixed share; \(same.days.count) days cannot tell them apart (one-cell-factor needs four). Check the vendor's "
                            + "price list for a change on those days (if there was one, the rate card needs a row from that day, "
                            + "not a correction) and reconcile again on an export pulled after the period settled"
                    } else if let lastDays {
                        let key = CellKey(model: lastDays.modelID, tokenType: lastDays.tokenType, account: lastDays.accountID)
                        let stopped = DailyEvidence.billingStopped(key, diff, range: o.range).map {
                            " (the invoice bills none of it after \(DailyEvidence.dayString($0)) while the meter does every day: a file cut short looks like that)"
                        }
                        detail =
                            "the daily gap of \(lastDays.modelID) \(lastDays.tokenType?.rawValue ?? "") on the period's last day is unlike the days "
                            + "before it\(lastDays.quantity < 0 ? stopped ?? "" : ""), as when an export pulled early lacks the vendor's last hours "
                            + "(or the meter still awaits late events); reconcile again on an export pulled after the period settled"
                    } else {
                        detail = largeDetail ?? unseenDetail ?? ""
                    }
                    if lastDays != nil, let also = largeDetail ?? unseenDetail {
                        detail += "; besides, the correction \(also): if the same file comes back, check the scope and model mapping first"
                    }
                    out.held.append(
                        .init(
                            reason: sameShare != nil ? "same_share_on_last_days" : lastDays != nil ? "last_day_unlike_the_rest" : "needs_review",
                            detail: detail + "\(f.pairedWith != nil ? ", as part of a relabel" : ""); --apply posts it only with --confirm-large",
                            correction: c))
                } else {
                    out.corrections.append(c)
                }
            }
        }
        var claimed: [String: Int64] = [:]
        func nextID(_ c: ProposedCorrection) -> String {
            let taken = claimed[c.accountID] ?? 0
            claimed[c.accountID] = taken + 1
            return CorrectionSlots.eventID(account: c.accountID, slot: slots.slot(account: c.accountID, index: taken))
        }
        for i in out.corrections.indices { out.corrections[i].eventID = nextID(out.corrections[i]) }
        for i in out.held.indices { out.held[i].correction.eventID = nextID(out.held[i].correction) }
        // What each corrected account metered in all, and just outside the period, for apply to see
        // anything that moved since.
        for account in Set(out.basis.map(\.accountID)).sorted() {
            let total = try await ReconciliationReport.MeterBasis.accountTokens(account, basis: out.basis, range: o.range, store: store, units: units)
            let edges = try await ReconciliationReport.MeterBasis.edgeTokens(
                account, basis: out.basis, range: o.range, store: store, units: units, mayBeMisspelt: mayBeMisspelt)
            for i in out.basis.indices where out.basis[i].accountID == account {
                out.basis[i].accountTokens = total
                out.basis[i].edgeTokens = edges
            }
        }
        return out
    }

    /// The meter a correction goes to: the token meter the account's events for that model use.
    /// Never one in another unit (a correction in tokens on a `tokens_k` meter billed 1,000 times
    /// the usage once confirmed).
    static func meterFor(
        account: String, rawModels: Set<String>, options o: ReconciliationOptions, store: any MeterStore, units: [String: String]
    ) async throws -> String {
        if let m = o.meterID { return m }
        let r = try await store.usage(
            UsageQuery(
                scope: .accounts([account]), range: o.range, groupBy: [.meterID],
                filters: [UsageFilter(field: .modelID, op: .in, values: rawModels.sorted())]))
        var meters = r.groups.compactMap { $0.keys[0] }.filter { MeterLedger.inTokens($0, units) }
        if meters.isEmpty {
            let any = try await store.usage(UsageQuery(scope: .accounts([account]), range: o.range, groupBy: [.meterID]))
            meters = any.groups.compactMap { $0.keys[0] }.filter { MeterLedger.inTokens($0, units) }
        }
        guard meters.count == 1 else {
            throw UsageBoxError.invalidArgument(
                meters.isEmpty
                    ? "account \(account) has no events to tell which meter a correction belongs to; pass --meter-id"
                    : "account \(account) meters \(rawModels.sorted().joined(separator: ", ")) on several meters (\(meters.joined(separator: ", "))); "
                        + "pass --meter-id to compare one of them (usage on the others then blocks under-metering corrections)",
                field: "meter_id")
        }
        return meters[0]
    }
}

extension EvidenceReason {
    /// Whether this limit blocks a correction of the finding.
    func applies(to f: ReconciliationReport.Finding) -> Bool {
        let inScope =
            (modelID.map { $0 == f.modelID } ?? true)
            && (tokenType.map { f.tokenType == nil || $0 == f.tokenType } ?? true)
            && (accountID.map { $0 == f.accountID } ?? true)
        switch effect {
        case .blocksNegative: return inScope && f.quantity < 0
        case .blocksPositive: return inScope && f.quantity > 0
        case .blocksModel: return modelID == f.modelID
        case .blocksCell: return inScope
        case .blocksAccount: return accountID == f.accountID
        case .inconclusive, .note: return false
        }
    }
}

fileprivate extension Array where Element: Hashable {
    /// Each element once, where it first comes.
    var firstOfEach: [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
