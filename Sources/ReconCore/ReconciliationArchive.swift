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
            reportJSON: report.jsonText, summaryJSON: ReconciliationSummary(report).jsonText)
    }

    /// The most recent runs (of these accounts, or of all; after `cursor`), newest first, as a
    /// list shows them: from their stored summaries, and only for a run recorded before summaries
    /// were kept from its whole report. `visible` leaves runs off the page, not the cursor.
    public func recent(
        limit: Int, ofAccounts accounts: [String]? = nil, after cursor: ReconciliationList.Cursor? = nil,
        visible: (ReconciliationSummary) -> Bool = { _ in true }
    ) async throws -> ReconciliationList {
        let before = cursor.map { (createdAt: $0.before, id: $0.beforeID) }
        // One run past the page, only to know whether another page follows: a full page ended in
        // a cursor to an empty one.
        let limit = max(limit, 0)
        var runs: [(id: String, createdAt: Timestamp, summaryJSON: String?)]
        if let accounts {
            runs = try await log.recentReconciliations(limit: limit + 1, ofAccounts: accounts, before: before)
        } else {
            runs = try await log.recentReconciliations(limit: limit + 1, before: before)
        }
        let more = runs.count > limit
        runs = Array(runs.prefix(limit))
        var out: [ReconciliationSummary] = []
        for run in runs {
            try WorkDeadline.current?.check()
            let summary: ReconciliationSummary
            if let text = run.summaryJSON, let stored = try? ReconciliationJSON.decode(ReconciliationSummary.self, from: text), stored.id == run.id {
                summary = stored
            } else if let report = try? await report(id: run.id) {
                summary = ReconciliationSummary(report)
            } else {
                continue  // a record that cannot be read is left off, as before
            }
            if visible(summary) { out.append(summary) }
        }
        let next = !more ? nil : runs.last.map { ReconciliationList.Cursor(before: $0.createdAt, beforeID: $0.id) }
        return ReconciliationList(out, next: next)
    }

    /// The stored report, or nil for an unknown id.
    public func report(id: String) async throws -> ReconciliationReport? {
        guard let text = try await log.reconciliation(id: id) else { return nil }
        return try Self.report(text: text, id: id)
    }

    /// A stored report's text, read back.
    public static func report(text: String, id: String) throws -> ReconciliationReport {
        do {
            return try ReconciliationJSON.decode(ReconciliationReport.self, from: text)
        } catch {
            throw UsageBoxError(.internal, "the stored reconciliation \(id) cannot be read back: \(error)")
        }
    }

    /// Whose run a stored report is, read from the start of its text as reports are written
    /// (`{"id":"…","vendor":"…","account_id":…`): a page listing a tenant's runs decoded every
    /// run on the server first, another tenant's 19 MB ones included (tester S).
    public enum HeadAccount: Equatable, Sendable {
        case account(String)
        /// A run of no one account (an account map's across accounts).
        case none
        /// The text does not start so: decode it to know.
        case unknown
    }

    public static func account(ofHead head: String) -> HeadAccount {
        var rest = Substring(head)
        func take(_ prefix: String) -> Bool {
            guard rest.hasPrefix(prefix) else { return false }
            rest = rest.dropFirst(prefix.count)
            return true
        }
        // A JSON string with no escapes (ids and vendor ids never need one), up to its quote.
        func plainString() -> String? {
            guard take("\""), let end = rest.firstIndex(of: "\"") else { return nil }
            let value = rest[..<end]
            guard !value.contains("\\") else { return nil }
            rest = rest[rest.index(after: end)...]
            return String(value)
        }
        guard take("{\"id\":"), plainString() != nil, take(",\"vendor\":"), plainString() != nil, take(",\"account_id\":") else { return .unknown }
        if take("null") { return .none }
        return plainString().map(HeadAccount.account) ?? .unknown
    }

    /// Replaces a stored report after it was applied or reverted, merged with the stored one: a
    /// revert and an apply of one run from two processes each wrote the record it had read, the
    /// last one winning — "reverted", with a correction the other posted missing from
    /// `applied_event_ids`, so no revert could take it back. What was posted, and a revert, are
    /// never dropped. (Revert and apply read the meter, not this record, for what is posted.)
    public func update(_ report: ReconciliationReport) async throws {
        var merged = report
        if let stored = try await self.report(id: report.id) {
            merged.appliedEventIDs = Array(Set(stored.appliedEventIDs).union(report.appliedEventIDs)).sorted()
            merged.applied = stored.applied || report.applied
            merged.appliedAt = [stored.appliedAt, report.appliedAt].compactMap { $0 }.min()
            merged.revertedAt = [stored.revertedAt, report.revertedAt].compactMap { $0 }.min()
        }
        try await log.markReconciliationApplied(
            id: merged.id, reportJSON: merged.jsonText, summaryJSON: ReconciliationSummary(merged).jsonText, appliedAt: merged.appliedAt ?? Timestamp.now())
    }
}
