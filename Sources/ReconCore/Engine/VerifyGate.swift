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
        // A few accounts at a time: a store over the network answers each verify in a few round
        // trips, and SQLite's readers do not wait for each other.
        var reports: [(String, VerifyReport)] = []
        try await withThrowingTaskGroup(of: (Int, String, VerifyReport).self) { group in
            var next = 0
            func launch() {
                guard next < accounts.count else { return }
                let (i, account) = (next, accounts[next])
                next += 1
                group.addTask { (i, account, try await store.verify(VerifyRequest(account: account, range: range, mode: mode))) }
            }
            for _ in 0..<min(8, accounts.count) { launch() }
            var done: [(Int, String, VerifyReport)] = []
            while let finished = try await group.next() {
                done.append(finished)
                launch()
            }
            reports = done.sorted { $0.0 < $1.0 }.map { ($0.1, $0.2) }
        }
        for (account, v) in reports {
            drift = drift.addingReportingOverflow(v.drift).overflow ? .max : drift + v.drift
            if !v.ok { drifted.append((account, v)) }
        }
        if !drifted.isEmpty, !allowDrift { throw VerifyDrift(reports: drifted) }
        return .init(ok: drifted.isEmpty, mode: mode, drift: drift)
    }
}
