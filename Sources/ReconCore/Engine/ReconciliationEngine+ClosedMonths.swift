import Metering

extension ReconciliationEngine {
    /// Corrections (proposed or held) dated in a month already closed on their account: applied,
    /// they post as `post_close` adjustments of a month whose statements are out. Said in the
    /// report, so whoever applies knows before the meter changes; nothing is held for it (a
    /// correction into a closed month is how the contract amends one).
    static func correctionsIntoClosedMonths(_ corrections: [ProposedCorrection], store: any MeterStore) async throws -> [EvidenceReason] {
        let byAccount = Dictionary(grouping: corrections, by: \.accountID)
        var closed: [(account: String, month: String, closedAt: Timestamp, count: Int, quantity: Int64)] = []
        var unread: [String] = []
        for account in byAccount.keys.sorted() {
            // A note is no reason to lose a finished run: a read that fails is said instead.
            guard let periods = try? await store.periods(account: account) else {
                unread.append(account)
                continue
            }
            guard !periods.isEmpty else { continue }
            let closedAt = Dictionary(periods.map { ($0.period, $0.closedAt) }, uniquingKeysWith: min)
            let byMonth = Dictionary(grouping: byAccount[account]!, by: \.timestamp.monthString)
            for (month, list) in byMonth.sorted(by: { $0.key < $1.key }) {
                guard let at = closedAt[month] else { continue }
                closed.append((account, month, at, list.count, list.reduce(Int64(0)) { $0 &+ $1.quantity }))
            }
        }
        var reasons: [EvidenceReason] = []
        if !closed.isEmpty {
            let named = closed.map { "\($0.account) \($0.month) (closed \($0.closedAt.rfc3339), \($0.count) correction(s), net \($0.quantity) tokens)" }
            reasons.append(
                EvidenceReason(
                    code: "corrections_into_closed_month", effect: .note,
                    detail: "corrections fall in a closed month: \(named.joined(separator: ", ")); applied, they post as post_close "
                        + "adjustments of a month already billed to the customer",
                    remedy: "apply to amend the closed month visibly (each correction is marked post_close), and adjust the statement already sent for it"))
        }
        if !unread.isEmpty {
            reasons.append(
                EvidenceReason(
                    code: "corrections_into_closed_month", effect: .note,
                    detail: "whether corrections fall in a closed month could not be read for \(unread.joined(separator: ", "))",
                    remedy: "usagebox periods --account A lists an account's closed months"))
        }
        return reasons
    }
}
