import GRDB
import Metering

/// The store of reconciliation runs (the `ReconciliationLog` of ReconCore, conformed in the composition
/// root so this backend stays free of reconciliation code): each report as its JSON text.
extension SQLiteMeterStore {
    public func saveReconciliation(id: String, vendor: String, createdAt: Timestamp, runBy: String, reportJSON: String) async throws {
        try await write { db, _ in
            try db.execute(
                sql: """
                    INSERT INTO reconciliation (id, vendor, created_at, run_by, report) VALUES (?, ?, ?, ?, ?)
                    """, arguments: [id, vendor, createdAt.microseconds, runBy, reportJSON])
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

    public func recentReconciliations(limit: Int) async throws -> [String] {
        try await wrap {
            try await writer.read { db in
                try String.fetchAll(db, sql: "SELECT id FROM reconciliation ORDER BY created_at DESC, id DESC LIMIT ?", arguments: [limit])
            }
        }
    }

    public func recentReconciliations(limit: Int, ofAccounts accounts: [String]) async throws -> [String] {
        guard !accounts.isEmpty else { return [] }
        return try await wrap {
            try await writer.read { db in
                // Read through the index on the report's account: no report's text is loaded.
                try String.fetchAll(
                    db,
                    sql: """
                        SELECT id FROM reconciliation WHERE json_extract(report, '$.account_id') IN (\(databaseQuestionMarks(count: accounts.count)))
                        ORDER BY created_at DESC, id DESC LIMIT ?
                        """, arguments: StatementArguments(accounts) + [max(limit, 0)])
            }
        }
    }

    public func markReconciliationApplied(id: String, reportJSON: String, appliedAt: Timestamp) async throws {
        try await write { db, _ in
            try db.execute(
                sql: "UPDATE reconciliation SET report = ?, applied_at = COALESCE(applied_at, ?) WHERE id = ?",
                arguments: [reportJSON, appliedAt.microseconds, id])
        }
    }
}
