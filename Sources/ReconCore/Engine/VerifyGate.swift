import Metering

/// Stage 1: the meter must agree with itself before it is compared with anyone else.
enum VerifyGate {
    /// Verifies each account over the period; throws `VerifyDrift` on drift unless allowed.
    static func check(
        _ store: any MeterStore, accounts: [String], range: TimeRange, deep: Bool, allowDrift: Bool
    ) async throws
        -> ReconciliationReport.VerifySummary
    {
        let mode: VerifyMode = deep ? .deep : .incremental
        var drift: Int64 = 0
        var drifted: [(account: String, report: VerifyReport)] = []
        let reports = try await store.verify(accounts: accounts, range: range, mode: mode)
        // An account without its report would pass unchecked.
        guard reports.count == accounts.count else {
            throw UsageBoxError(.internal, "the store verified \(reports.count) of \(accounts.count) accounts")
        }
        for (account, v) in zip(accounts, reports) {
            drift = drift.addingReportingOverflow(v.drift).overflow ? .max : drift + v.drift
            if !v.ok { drifted.append((account, v)) }
        }
        if !drifted.isEmpty, !allowDrift { throw VerifyDrift(reports: drifted) }
        return .init(ok: drifted.isEmpty, mode: mode, drift: drift)
    }
}
