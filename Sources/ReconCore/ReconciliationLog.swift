public import Metering

/// Where reconciliation runs are recorded, so each can be shown again and audited (docs/reconciliation.md
/// step 9). The report is kept as its JSON text.
///
/// ```swift
/// let archive = ReconciliationArchive(store)                 // typed reports over the stored JSON
/// let report = try await archive.report(id: "rec_…")
/// ```
public protocol ReconciliationLog: Sendable {
    /// Records a run: its report, and beside it the summary a list of runs shows
    /// (`ReconciliationSummary`, as JSON), so a page of 200 runs reads 200 small records instead of
    /// 200 reports of up to megabytes each (tester S2). An empty summary is none, as for a run
    /// recorded before summaries were kept.
    func saveReconciliation(id: String, vendor: String, createdAt: Timestamp, runBy: String, reportJSON: String, summaryJSON: String) async throws
    /// The stored report JSON, or nil for an unknown id.
    func reconciliation(id: String) async throws -> String?
    /// The first `characters` of the stored report JSON (its head names the run's account), or
    /// nil for an unknown id: refusing another tenant's run from the whole text took as long as
    /// its size, which told that tenant's run sizes (tester S2).
    func reconciliationHead(id: String, characters: Int) async throws -> String?
    /// The most recent runs, newest first (by time recorded, then id), after `before` in that
    /// order when given (the next page: the last listed run's time and id; an empty id, the runs
    /// recorded before that time): each id with its time and its stored summary JSON (nil for a
    /// run recorded before summaries were kept), no report read.
    func recentReconciliations(
        limit: Int, before: (createdAt: Timestamp, id: String)?
    ) async throws -> [(id: String, createdAt: Timestamp, summaryJSON: String?)]
    /// The most recent runs of these accounts (a report's `account_id`), newest first, found
    /// without reading other runs' reports: a page of one tenant's runs read every run on the
    /// server (tester S).
    func recentReconciliations(
        limit: Int, ofAccounts accounts: [String], before: (createdAt: Timestamp, id: String)?
    ) async throws -> [(id: String, createdAt: Timestamp, summaryJSON: String?)]
    /// Replaces the stored report, and its summary, after its corrections were applied or reverted.
    func markReconciliationApplied(id: String, reportJSON: String, summaryJSON: String, appliedAt: Timestamp) async throws
}
