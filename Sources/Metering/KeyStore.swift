public import ExactJSON

public enum KeyRole: String, Sendable, CaseIterable {
    /// Reads its account.
    case reader
    /// Reads and ingests its account.
    case writer
    /// Sees every account; manages keys and meters.
    case admin
}

/// An API key as the server sees it (never the secret).
public struct APIKey: Sendable, Hashable {
    public var keyID: String
    /// nil for an admin key not tied to an account.
    public var accountID: String?
    public var role: KeyRole
    public var createdAt: Timestamp
    public var revokedAt: Timestamp?

    public init(keyID: String, accountID: String?, role: KeyRole, createdAt: Timestamp, revokedAt: Timestamp?) {
        self.keyID = keyID
        self.accountID = accountID
        self.role = role
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }

    /// The accounts this key may see.
    public var scope: AccountScope {
        role == .admin ? .all : .accounts(accountID.map { [$0] } ?? [])
    }

}

/// Where API keys live: in the store, hashed, so a running server honours CLI changes at once.
///
/// ```swift
/// let (key, secret) = try await store.createKey(account: "acct_42", role: .reader)  // show the secret once
/// let same = try await store.authenticate(secret: secret)                           // key, until revoked
/// _ = try await store.revokeKey(key.keyID)
/// ```
public protocol KeyStore: Sendable {
    /// Creates a key and returns it with its secret, which is stored only as a hash.
    func createKey(account: String?, role: KeyRole) async throws -> (APIKey, secret: String)
    func listKeys() async throws -> [APIKey]
    /// Revokes a key; revoking twice is a no-op; an unknown id is `not_found`.
    func revokeKey(_ keyID: String) async throws -> APIKey
    /// The live key whose secret this is, or nil.
    func authenticate(secret: String) async throws -> APIKey?
}

extension APIKey: WireShape {
    enum CodingKeys: String, CodingKey { case keyID = "key_id", accountID = "account_id", role, createdAt = "created_at", revokedAt = "revoked_at" }
}
