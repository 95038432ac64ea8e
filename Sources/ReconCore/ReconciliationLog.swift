public import Metering

/// Where reconciliation runs are recorded, so each can be shown again and audited (docs/reconciliation.md
/// step 9). The report is kept as its JSON text.
///
/// ```swift
/// let archive = ReconciliationArchive(store)                 // typed reports over the stored JSON
/// let report = try await archive.report(id: "rec_…")
/// ```
public protocol ReconciliationLog: Sendable {
    func saveReconciliation(id: String, vendor: String, createdAt: Timestamp, runBy: String, reportJSON: String) async throws
    /// The stored report JSON, or nil for an unknown id.
    func reconciliation(id: String) async throws -> String?
    /// The first `characters` of the stored report JSON (its head names the run's account), or
    /// nil for an unknown id: refusing another tenant's run from the whole text took as long as
    /// its size, which told that tenant's run sizes (tester S2).
    func reconciliationHead(id: String, characters: Int) async throws -> String?
    /// The ids of the most recent runs, newest first.
    func recentReconciliations(limit: Int) async throws -> [String]
    /// The ids of the most recent runs of these accounts (a report's `account_id`), newest first,
    /// found without reading other runs' reports: a page of one tenant's runs read every run on
    /// the server (tester S).
    func recentReconciliations(limit: Int, ofAccounts accounts: [String]) async throws -> [String]
    /// Replaces the stored report after its corrections were applied.
    func markReconciliationApplied(id: String, reportJSON: String, appliedAt: Timestamp) async throws
}
