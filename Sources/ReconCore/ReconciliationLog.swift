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
    /// The ids of the most recent runs, newest first.
    func recentReconciliations(limit: Int) async throws -> [String]
    /// The same with the first `bytes` characters of each report: enough to read whose run it is
    /// (`ReconciliationArchive.accountOfHead`) without decoding another tenant's megabytes.
    func recentReconciliationHeads(limit: Int, bytes: Int) async throws -> [(id: String, head: String)]
    /// Replaces the stored report after its corrections were applied.
    func markReconciliationApplied(id: String, reportJSON: String, appliedAt: Timestamp) async throws
}
