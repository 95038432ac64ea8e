public import Metering

/// The reconciliation record, typed: reports go in and come back as `ReconciliationReport`
/// values. The store behind it (`ReconciliationLog`) keeps their JSON text and knows nothing of
/// their shape.
public struct ReconciliationArchive: Sendable {
    public let log: any ReconciliationLog
    public init(_ log: any ReconciliationLog) { self.log = log }

    public func save(_ report: ReconciliationReport) async throws {
        try await log.saveReconciliation(
            id: report.id, vendor: report.vendor, createdAt: report.createdAt, runBy: report.runBy,
            reportJSON: report.jsonText)
    }

    /// The stored report, or nil for an unknown id.
    public func report(id: String) async throws -> ReconciliationReport? {
        guard let text = try await log.reconciliation(id: id) else { return nil }
        do {
            return try ReconciliationJSON.decode(ReconciliationReport.self, from: text)
        } catch {
            throw UsageBoxError(.internal, "the stored reconciliation \(id) cannot be read back: \(error)")
        }
    }

    /// Replaces a stored report after it was applied or reverted.
    public func update(_ report: ReconciliationReport) async throws {
        try await log.markReconciliationApplied(id: report.id, reportJSON: report.jsonText, appliedAt: report.appliedAt ?? Timestamp.now())
    }
}
