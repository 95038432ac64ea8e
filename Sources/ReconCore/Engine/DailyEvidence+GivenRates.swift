import Foundation
import Metering

extension DailyEvidence {
    /// Metering gaps that lie (in part) on days whose volume is money converted at a rate the run
    /// was given (`--fx`), not one the export states: how many tokens the vendor billed there rests
    /// on that rate, so the gap is the rate's as likely as the meter's, and held. A week billed in
    /// EUR, converted at a month-end rate 1.85 % off the vendor's, read as a collector down that
    /// week on every model (six corrections, +1.52M on an exact meter); over eleven days it was
    /// held as a uniform gap, so the outcome hung on how many days were billed in EUR. Letting a
    /// converted day that matched the meter vouch for the rate let a wrong rate through (a usage
    /// report's count matches whatever the rate), and a loss there carries the rate's error.
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
            // On the days the gap lies (any, for lines longer than a day), the rate given decides
            // how many tokens the vendor billed: a rate 1.85 % off read as an outage of every model,
            // and a real loss's correction carries the rate's error. A day matching the meter says
            // little of it (a usage report's count there, another currency, a small converted part).
            let doubtful = offDays(f, diff, range: range).map { off in off.contains(where: converted.contains) } ?? true
            guard doubtful else { continue }
            findings[i].gapClass = .unexplained
            findings[i].rule = "given-exchange-rate"
            findings[i].classifier = "engine"
            findings[i].reason = "gap_on_days_converted_at_the_given_exchange_rate"
            held.append(key.named)
        }
        guard !held.isEmpty else { return [] }
        return [
            .init(
                code: "given_exchange_rate_decides", effect: .note,
                detail: "\(held.count) gap(s) lie on days whose volume is money converted at the --fx rate given "
                    + "(\(held.joined(separator: ", "))): a rate off from the one the vendor converted at makes such a gap as well as a "
                    + "meter does, and sizes a loss there, so they are held",
                remedy: "a rate card in the invoice's currency (the vendor's own prices), or an export that states the rate it converted at")
        ]
    }
}
