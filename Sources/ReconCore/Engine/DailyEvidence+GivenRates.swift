import Foundation
import Metering

extension DailyEvidence {
    /// The most a rate the run was given (`--fx`) may plausibly be off from the vendor's: a gap
    /// within this share of the metered tokens, on days whose volume that rate converted, may be
    /// the rate's.
    static let givenRateDoubt = Decimal(string: "0.2")!

    /// Metering gaps that lie on days whose volume is money converted at a rate the run was given,
    /// and whose share of those days' metered tokens a rate off by up to a fifth would make: the
    /// gap is the rate's as likely as the meter's, so it is held. A week billed in EUR, converted
    /// at a month-end rate 1.85 % off the vendor's, read as a collector down that week on every
    /// model (six corrections, +1.52M on an exact meter); over eleven days it was held as a
    /// uniform gap, so the outcome hung on how many days were billed in EUR. A day billed with
    /// nothing metered is a loss no rate makes, and is corrected at the rate given.
    /// A card in the invoice's currency, or an export stating its rate, converts nothing at a
    /// given rate: that is the way out, and the note says so.
    static func holdWhereAGivenRateDecides(_ findings: inout [Finding], _ diff: GapDiff, range: TimeRange) -> [EvidenceReason] {
        var held: [String] = []
        for i in findings.indices where findings[i].gapClass == .meteringGap {
            let f = findings[i]
            let key = CellKey(model: f.modelID, tokenType: f.tokenType, account: f.accountID)
            guard let cell = diff.vendor[key] else { continue }
            let converted = Set(cell.clustered.filter(\.bucket.atGivenRate).map { Timestamp(microseconds: $0.key.from).day })
            guard !converted.isEmpty else { continue }
            var doubtful: Bool
            if let off = offDays(f, diff, range: range) {
                let days = off.filter(converted.contains)
                let vendor = vendorDaily(diff, key, accountwise: true) ?? [:], metered = meteredDaily(diff, key, accountwise: true)
                let m = days.reduce(Int64(0)) { $0 &+ (metered[$1] ?? 0) }
                let gap = days.reduce(Int64(0)) { $0 &+ ((vendor[$1]?.tokens ?? 0) &- (metered[$1] ?? 0)) }
                // A converted day that matches the meter, where its rounding would have hidden no
                // more than half a point, shows the rate right: a rate off shows on every such day
                // (at the vendor's own rate, a loss of 12 % inside an EUR week was held).
                let matched = converted.contains { d in
                    guard !off.contains(d), (metered[d] ?? 0) > 0, let v = vendor[d], v.tokens > 0 else { return false }
                    return Decimal(exactly: v.toleranceTokens) <= Decimal(exactly: v.tokens) * ReconciliationEngine.leastFactor
                }
                doubtful = !matched && !days.isEmpty && m > 0 && abs(Decimal(exactly: gap)) <= Decimal(exactly: m) * givenRateDoubt
            } else {
                // Lines longer than a day: where the gap lies cannot be told; over the period, within
                // a fifth of what was metered.
                doubtful = f.metered > 0 && abs(Decimal(exactly: f.quantity)) <= Decimal(exactly: f.metered) * givenRateDoubt
            }
            guard doubtful else { continue }
            findings[i].gapClass = .unexplained
            findings[i].rule = "given-exchange-rate"
            findings[i].classifier = "engine"
            findings[i].reason = "gap_on_days_converted_at_the_given_exchange_rate"
            held.append("\(f.modelID) \(f.tokenType?.rawValue ?? "")")
        }
        guard !held.isEmpty else { return [] }
        return [
            .init(
                code: "given_exchange_rate_decides", effect: .note,
                detail: "\(held.count) gap(s) lie on days whose volume is money converted at the --fx rate given, within a fifth of what "
                    + "was metered there (\(held.joined(separator: ", "))): a rate off from the one the vendor converted at makes such a "
                    + "gap as well as a meter does, so they are held",
                remedy: "pass the rate the vendor converted at, a rate card in the invoice's currency, or an export that states its rate")
        ]
    }
}
