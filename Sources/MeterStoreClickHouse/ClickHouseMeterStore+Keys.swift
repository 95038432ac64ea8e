import ExactJSON
import Foundation
public import Metering
import SegmentChain

extension ClickHouseMeterStore: KeyStore {
    static func randomToken(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static let keyColumns = """
        key_id, argMax(account_id, version), argMax(role, version), argMax(created_at, version), argMax(revoked_at, version)
        """

    static func key(_ r: [JSONValue]) -> APIKey {
        APIKey(
            keyID: r[0].chString ?? "", accountID: r[1].chString, role: KeyRole(rawValue: r[2].chString ?? "") ?? .reader,
            createdAt: Timestamp(microseconds: r[3].chInt ?? 0), revokedAt: r[4].chInt.map(Timestamp.init(microseconds:)))
    }

    public func createKey(account: String?, role: KeyRole) async throws -> (APIKey, secret: String) {
        try role.checkAccount(account)
        let secret = Self.randomToken(bytes: 32)
        let key = APIKey(keyID: "key_" + Self.randomToken(bytes: 9), accountID: account, role: role, createdAt: clock(), revokedAt: nil)
        try await insert(
            "api_keys",
            [
                .object([
                    ("key_id", .string(key.keyID)), ("secret_sha256", .string(SecretHash.of(secret))),
                    ("account_id", account.map(JSONValue.string) ?? .null), ("role", .string(role.rawValue)),
                    ("created_at", .int(key.createdAt.microseconds)), ("revoked_at", .null), ("version", .number(String(await nextVersion()))),
                ])
            ])
        return (key, secret)
    }

    public func listKeys() async throws -> [APIKey] {
        try await rows("SELECT \(Self.keyColumns) FROM \(t("api_keys")) GROUP BY key_id", shardsRead: false).map(Self.key)
            .sorted { ($0.createdAt.microseconds, $0.keyID) < ($1.createdAt.microseconds, $1.keyID) }
    }

    /// Read on the host the revocation is written to (a replica answers reads only), as the
    /// writer's reads are, so it builds on the newest row — once that host holds every part its
    /// replicas recorded (a revocation's part it set aside would be written over).
    public func revokeKey(_ keyID: String) async throws -> APIKey {
        try await checkFirstHostWhole()
        let found = try await ClickHouseWriter.$writing.withValue(true) {
            try await rows(
                "SELECT \(Self.keyColumns), argMax(secret_sha256, version), max(version) FROM \(t("api_keys")) WHERE key_id = \(ClickHouseClient.quote(keyID)) GROUP BY key_id",
                shardsRead: false
            )
        }
        guard let r = found.first else { throw UsageBoxError(.notFound, "no key \(keyID)", field: "key_id") }
        var key = Self.key(r)
        guard key.revokedAt == nil else { return key }
        key.revokedAt = clock()
        try await insert(
            "api_keys",
            [
                .object([
                    ("key_id", .string(key.keyID)), ("secret_sha256", .string(r[5].chString ?? "")),
                    ("account_id", key.accountID.map(JSONValue.string) ?? .null),
                    ("role", .string(key.role.rawValue)), ("created_at", .int(key.createdAt.microseconds)),
                    ("revoked_at", .int(key.revokedAt?.microseconds ?? 0)), ("version", .number(String(await nextVersion(above: r[6])))),
                ])
            ])
        return key
    }

    public func authenticate(secret: String) async throws -> APIKey? {
        // Not from a first host lacking a part its replica recorded: the revocation may be in it.
        let found = try await rows(
            "SELECT \(Self.keyColumns) FROM \(t("api_keys")) WHERE secret_sha256 = \(ClickHouseClient.quote(SecretHash.of(secret))) GROUP BY key_id",
            shardsRead: false, wholeFirstHost: true)
        return found.map(Self.key).first { $0.revokedAt == nil }
    }

    // MARK: the reconciliation log (the composition root declares the conformance)

    public func saveReconciliation(id: String, vendor: String, createdAt: Timestamp, runBy: String, reportJSON: String, summaryJSON: String) async throws {
        try await insert(
            "reconciliations",
            [
                .object([
                    ("id", .string(id)), ("vendor", .string(vendor)), ("created_at", .int(createdAt.microseconds)), ("run_by", .string(runBy)),
                    ("report", .string(reportJSON)), ("summary", .string(summaryJSON)), ("applied_at", .null),
                    ("version", .number(String(await nextVersion()))),
                ])
            ])
    }

    public func reconciliation(id: String) async throws -> String? {
        try await rows("SELECT argMax(report, version) FROM \(t("reconciliations")) WHERE id = \(ClickHouseClient.quote(id)) GROUP BY id", shardsRead: false)
            .first?[0].chString
    }

    public func reconciliationHead(id: String, characters: Int) async throws -> String? {
        // Bytes, not characters: a head is ASCII up to the account, and a cut character only
        // shortens it.
        try await rows(
            "SELECT substring(argMax(report, version), 1, \(max(characters, 0))) FROM \(t("reconciliations")) WHERE id = \(ClickHouseClient.quote(id)) GROUP BY id",
            shardsRead: false
        ).first?[0].chString
    }

    public func recentReconciliations(
        limit: Int, before: (createdAt: Timestamp, id: String)?
    ) async throws -> [(id: String, createdAt: Timestamp, summaryJSON: String?)] {
        try await recentRuns(
            "SELECT id, argMax(summary, version) AS s, min(created_at) AS c FROM \(t("reconciliations")) GROUP BY id", limit: limit, before: before)
    }

    public func recentReconciliations(
        limit: Int, ofAccounts accounts: [String], before: (createdAt: Timestamp, id: String)?
    ) async throws -> [(id: String, createdAt: Timestamp, summaryJSON: String?)] {
        guard !accounts.isEmpty else { return [] }
        let list = accounts.map(ClickHouseClient.quote).joined(separator: ", ")
        // A run's account from its summary (`account_id` comes first in it); a run recorded before
        // summaries were kept from its report, where the report's own `account_id` comes third,
        // before any nested one. Only those runs' reports are read.
        return try await recentRuns(
            "SELECT id, s, c FROM (SELECT id, argMax(summary, version) AS s, min(created_at) AS c FROM \(t("reconciliations")) GROUP BY id) "
                + "WHERE (s != '' AND visitParamExtractString(s, 'account_id') IN (\(list))) OR (s = '' AND id IN "
                + "(SELECT id FROM \(t("reconciliations")) WHERE summary = '' AND visitParamExtractString(report, 'account_id') IN (\(list))))",
            limit: limit, before: before)
    }

    /// The runs `select` names (`id`, summary `s`, first recorded `c`), newest first.
    private func recentRuns(
        _ select: String, limit: Int, before: (createdAt: Timestamp, id: String)?
    ) async throws -> [(id: String, createdAt: Timestamp, summaryJSON: String?)] {
        // No cursor: after the last possible run (an id sorts after "", the least string).
        let (time, id) = before.map { ($0.createdAt.microseconds, $0.id) } ?? (Int64.max, "")
        let after = "(c < \(time) OR c = \(time) AND id < \(ClickHouseClient.quote(id)))"
        return try await rows("SELECT id, c, s FROM (\(select)) WHERE \(after) ORDER BY c DESC, id DESC LIMIT \(max(limit, 0))", shardsRead: false)
            .compactMap { r in
                guard let id = r[0].chString, let c = r[1].chInt else { return nil }
                return (id: id, createdAt: Timestamp(microseconds: c), summaryJSON: r[2].chString.flatMap { $0.isEmpty ? nil : $0 })
            }
    }

    public func markReconciliationApplied(id: String, reportJSON: String, summaryJSON: String, appliedAt: Timestamp) async throws {
        try await checkFirstHostWhole()
        let found = try await ClickHouseWriter.$writing.withValue(true) {  // where it is written, as revokeKey
            try await rows(
                "SELECT argMax(vendor, version), argMax(created_at, version), argMax(run_by, version), argMax(applied_at, version), max(version) FROM \(t("reconciliations")) WHERE id = \(ClickHouseClient.quote(id)) GROUP BY id"
            )
        }
        guard let r = found.first else { return }
        try await insert(
            "reconciliations",
            [
                .object([
                    ("id", .string(id)), ("vendor", r[0]), ("created_at", .int(r[1].chInt ?? 0)), ("run_by", r[2]), ("report", .string(reportJSON)),
                    ("summary", .string(summaryJSON)),
                    ("applied_at", .int(r[3].chInt ?? appliedAt.microseconds)), ("version", .number(String(await nextVersion(above: r[4])))),
                ])
            ])
    }

    // MARK: read-only SQL

    /// Whether a ClickHouse column type holds numbers: `Int…`, `UInt…`, `Float…`, `Decimal…`, as
    /// they are or `Nullable(…)`.
    static func isNumberType(_ type: String) -> Bool {
        var t = Substring(type)
        if t.hasPrefix("Nullable("), t.hasSuffix(")") { t = t.dropFirst("Nullable(".count).dropLast() }
        return ["Int", "UInt", "Float", "Decimal"].contains { t.hasPrefix($0) } && !t.contains("(") || t.hasPrefix("Decimal(")
    }

    /// Read-only SQL over `usage_events`, with ClickHouse's own limits (readonly, time, memory,
    /// result size). ClickHouse 18.16 has no row policies, so it cannot restrict a query to some
    /// accounts: a key bound to accounts is refused here, never answered unscoped.
    public func sql(_ query: String, scope: AccountScope, timeLimitSeconds: Double, rowLimit: Int) async throws -> SQLResult {
        guard case .all = scope else {
            throw UsageBoxError(
                .permissionDenied,
                "SQL on the ClickHouse store runs over every account only (an admin key, no account_id): this ClickHouse cannot "
                    + "limit a query to some accounts (no row policies); use GET /v1/accounts/{account}/usage or POST /v1/query/json")
        }
        let trimmed = query.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else {
            throw UsageBoxError.invalidArgument("one SELECT statement", field: "sql")
        }
        try ClickHouseSQLGuard.check(trimmed)
        // ClickHouse checks its time limit between blocks (eight sleep(3) calls in one answered
        // after 24 s): past the limit and a grace second the query is killed by its id, here.
        let queryID = "usagebox-sql-" + UUID().uuidString.lowercased()
        let limit = max(timeLimitSeconds, 1)
        let answer: (names: [String], types: [String], rows: [[JSONValue]])
        do {
            answer = try await withThrowingTaskGroup(of: (names: [String], types: [String], rows: [[JSONValue]])?.self) { group in
                group.addTask {
                    try await self.read(
                        trimmed,
                        settings: [
                            "database": self.names.db, "readonly": "1", "max_execution_time": String(Int(limit.rounded(.up))),
                            "max_result_rows": String(rowLimit + 1), "result_overflow_mode": "break", "max_memory_usage": String(512 << 20),
                            "query_id": queryID,
                        ], limit: 8 << 20)
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(limit + 1))
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let answer = first else {
                    // Not awaited: a ClickHouse that answers nothing would hold this answer too.
                    Task { [client = self.client] in try? await client.command("KILL QUERY WHERE query_id = \(ClickHouseClient.quote(queryID)) ASYNC") }
                    throw UsageBoxError(.timeout, "the query was stopped after its time limit (\(limit) s)", field: "sql")
                }
                return answer
            }
        } catch let e as UsageBoxError where e.code == .invalidArgument && e.field == nil {
            throw UsageBoxError.invalidArgument(e.message, field: "sql")  // an answer past its bound
        } catch let e as ClickHouseError {
            if let notNow = Self.storeError(e) { throw notNow }
            if e.code == 159 { throw UsageBoxError(.timeout, "the query was stopped after its time limit (\(limit) s)", field: "sql") }
            throw UsageBoxError.invalidArgument("ClickHouse refused the query: \(e.message.prefix(500))", field: "sql")
        }
        var rows = answer.rows
        let truncated = rows.count > rowLimit
        if truncated { rows.removeLast(rows.count - rowLimit) }
        // 64-bit integers arrive as strings: give them back as the numbers they are — only for a
        // column of a number type, and only text that is a JSON number (an Enum named 'Int', an
        // aggregate state, was written out raw: invalid or forged JSON).
        let numeric = answer.types.map(Self.isNumberType)
        return SQLResult(
            columns: answer.names,
            rows: rows.map { row in
                row.enumerated().map { i, v in
                    if i < numeric.count, numeric[i], case let .string(s) = v, case .number? = try? JSONParser.parse(s) { return .number(s) }
                    return v
                }
            }, truncated: truncated)
    }
}
