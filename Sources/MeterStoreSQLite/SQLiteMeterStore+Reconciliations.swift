import GRDB
import Metering

/// The store of reconciliation runs (the `ReconciliationLog` of ReconCore, conformed in the composition
/// root so this backend stays free of reconciliation code): each report as its JSON text.
extension SQLiteMeterStore {
    public func saveReconciliation(id: String, vendor: String, createdAt: Timestamp, runBy: String, reportJSON: String, summaryJSON: String) async throws {
        try await write { db, _ in
            try db.execute(
                sql: """
                    INSERT INTO reconciliation (id, vendor, created_at, run_by, report, summary) VALUES (?, ?, ?, ?, ?, ?)
                    """, arguments: [id, vendor, createdAt.microseconds, runBy, reportJSON, summaryJSON])
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

    public func recentReconciliations(limit: Int) async throws -> [(id: String, summaryJSON: String?)] {
        try await recentRuns(where: "1", [], limit: limit)
    }

    public func recentReconciliations(limit: Int, ofAccounts accounts: [String]) async throws -> [(id: String, summaryJSON: String?)] {
        guard !accounts.isEmpty else { return [] }
        // Read through the index on the report's account: no report's text is loaded.
        return try await recentRuns(
            where: "json_extract(report, '$.account_id') IN (\(databaseQuestionMarks(count: accounts.count)))", StatementArguments(accounts), limit: limit)
    }

    private func recentRuns(where filter: String, _ arguments: StatementArguments, limit: Int) async throws -> [(id: String, summaryJSON: String?)] {
        try await wrap {
            try await writer.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT id, NULLIF(summary, '') FROM reconciliation WHERE \(filter) ORDER BY created_at DESC, id DESC LIMIT ?",
                    arguments: arguments + [max(limit, 0)]
                ).map { (id: $0[0], summaryJSON: $0[1]) }
            }
        }
    }

    public func markReconciliationApplied(id: String, reportJSON: String, summaryJSON: String, appliedAt: Timestamp) async throws {
        try await write { db, _ in
            try db.execute(
                sql: "UPDATE reconciliation SET report = ?, summary = ?, applied_at = COALESCE(applied_at, ?) WHERE id = ?",
                arguments: [reportJSON, summaryJSON, appliedAt.microseconds, id])
        }
    }
}
