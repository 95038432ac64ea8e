import GRDB
import Metering

/// The store of reconciliation runs (the `ReconciliationLog` of ReconCore, conformed in the composition
/// root so this backend stays free of reconciliation code): each report as its JSON text.
extension SQLiteMeterStore {
    public func saveReconciliation(id: String, vendor: String, createdAt: Timestamp, runBy: String, reportJSON: String, summaryJSON: String) async throws {
        try await write { db, _ in
            try db.execute(
                sql: """
                    INSERT INTO reconciliation (id, vendor, created_at, run_by, report) VALUES (?, ?, ?, ?, ?)
                    """, arguments: [id, vendor, createdAt.microseconds, runBy, reportJSON])
            try Self.keepSummary(db, id: id, summaryJSON)
        }
    }

    public func reconciliation(id: String) async throws -> String? {
        try await wrap {
            try await writer.read { db in
                try String.fetchOne(db, sql: "SELECT report FROM reconciliation WHERE id = ?", arguments: [id])
            }
        }
    }

    public func reconciliationHead(id: String, characters: Int) async throws -> String? {
        try await wrap {
            try await writer.read { db in
                try String.fetchOne(db, sql: "SELECT substr(report, 1, ?) FROM reconciliation WHERE id = ?", arguments: [max(characters, 0), id])
            }
        }
    }

    public func recentReconciliations(
        limit: Int, before: (createdAt: Timestamp, id: String)?
    ) async throws -> [(id: String, createdAt: Timestamp, summaryJSON: String?)] {
        // Through the index on (created_at, id) alone: no run's row is read.
        try await recentRuns(where: "1", [], limit: limit, before: before)
    }

    public func recentReconciliations(
        limit: Int, ofAccounts accounts: [String], before: (createdAt: Timestamp, id: String)?
    ) async throws -> [(id: String, createdAt: Timestamp, summaryJSON: String?)] {
        guard !accounts.isEmpty else { return [] }
        // Through the index on the report's account: a row's id and time are read from the start
        // of its record, never its report's text.
        return try await recentRuns(where: Self.ofAccounts(accounts.count), StatementArguments(accounts), limit: limit, before: before)
    }

    private func recentRuns(
        where filter: String, _ arguments: StatementArguments, limit: Int, before: (createdAt: Timestamp, id: String)?
    ) async throws -> [(id: String, createdAt: Timestamp, summaryJSON: String?)] {
        // No cursor: after the last possible run (an id sorts after "", the least string).
        let (time, id) = before.map { ($0.createdAt.microseconds, $0.id) } ?? (Int64.max, "")
        return try await wrap {
            try await writer.read { db in
                try Row.fetchAll(db, sql: Self.recentRunsSQL(where: filter), arguments: arguments + [time, id, max(limit, 0)]).map {
                    (id: $0[0], createdAt: Timestamp(microseconds: $0[1]), summaryJSON: $0[2])
                }
            }
        }
    }

    /// The newest runs `filter` keeps (over `reconciliation r`) after a cursor (time, id), each
    /// with its time and summary: a row value, so the cursor bounds the index's range.
    static func recentRunsSQL(where filter: String) -> String {
        """
        SELECT r.id, r.created_at, s.summary FROM reconciliation r LEFT JOIN reconciliation_summary s ON s.id = r.id
        WHERE \(filter) AND (r.created_at, r.id) < (?, ?) ORDER BY r.created_at DESC, r.id DESC LIMIT ?
        """
    }

    /// The account filter of `recentRunsSQL`, read through the index on the report's account.
    static func ofAccounts(_ count: Int) -> String { "json_extract(r.report, '$.account_id') IN (\(databaseQuestionMarks(count: count)))" }

    public func markReconciliationApplied(id: String, reportJSON: String, summaryJSON: String, appliedAt: Timestamp) async throws {
        try await write { db, _ in
            try db.execute(
                sql: "UPDATE reconciliation SET report = ?, applied_at = COALESCE(applied_at, ?) WHERE id = ?",
                arguments: [reportJSON, appliedAt.microseconds, id])
            if db.changesCount > 0 { try Self.keepSummary(db, id: id, summaryJSON) }
        }
    }

    /// A run's summary, written or replaced; an empty one is none.
    private static func keepSummary(_ db: Database, id: String, _ summaryJSON: String) throws {
        guard !summaryJSON.isEmpty else { return try db.execute(sql: "DELETE FROM reconciliation_summary WHERE id = ?", arguments: [id]) }
        try db.execute(
            sql: "INSERT INTO reconciliation_summary (id, summary) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET summary = excluded.summary",
            arguments: [id, summaryJSON])
    }
}
