import Foundation
import GRDB
import Metering
import SegmentChain

extension SQLiteMeterStore: KeyStore {
    static func hash(secret: String) -> String { SecretHash.of(secret) }

    /// 32 random bytes as URL-safe base64 without padding: only `[A-Za-z0-9_-]`.
    static func randomToken(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    public func createKey(account: String?, role: KeyRole) async throws -> (APIKey, secret: String) {
        try role.checkAccount(account)
        let secret = "ubk_" + Self.randomToken(bytes: 32)
        let key = APIKey(
            keyID: "key_" + Self.randomToken(bytes: 9).replacingOccurrences(of: "-", with: "x").replacingOccurrences(of: "_", with: "y"),
            accountID: account, role: role, createdAt: clock(), revokedAt: nil)
        try await write { db, _ in
            try db.execute(
                sql: "INSERT INTO api_key (key_id, secret_sha256, account_id, role, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [key.keyID, Self.hash(secret: secret), account, role.rawValue, key.createdAt.microseconds])
        }
        return (key, secret)
    }

    public func listKeys() async throws -> [APIKey] {
        try await wrap {
            try await writer.read { db in
                try Row.fetchAll(db, sql: "SELECT key_id, account_id, role, created_at, revoked_at FROM api_key ORDER BY created_at, key_id")
                    .map(Self.key(from:))
            }
        }
    }

    public func revokeKey(_ keyID: String) async throws -> APIKey {
        try await write { db, _ in
            try db.execute(
                sql: "UPDATE api_key SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                arguments: [self.clock().microseconds, keyID])
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT key_id, account_id, role, created_at, revoked_at FROM api_key WHERE key_id = ?",
                    arguments: [keyID])
            else {
                throw UsageBoxError(.notFound, "no key \(keyID)", field: "key_id")
            }
            return Self.key(from: row)
        }
    }

    public func authenticate(secret: String) async throws -> APIKey? {
        let hash = Self.hash(secret: secret)
        return try await wrap {
            try await keyReader.read { db in
                try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT key_id, account_id, role, created_at, revoked_at FROM api_key WHERE secret_sha256 = ? AND revoked_at IS NULL
                            """), arguments: [hash]
                ).map(Self.key(from:))
            }
        }
    }

    static func key(from row: Row) -> APIKey {
        APIKey(
            keyID: row["key_id"], accountID: row["account_id"], role: KeyRole(rawValue: row["role"]) ?? .reader,
            createdAt: Timestamp(microseconds: row["created_at"]), revokedAt: (row["revoked_at"] as Int64?).map(Timestamp.init(microseconds:)))
    }
}
