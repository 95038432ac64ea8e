public import ExactJSON

public enum KeyRole: String, Sendable, CaseIterable {
    /// Reads its account.
    case reader
    /// Reads and ingests its account.
    case writer
    /// Sees every account; manages keys and meters.
    case admin

    /// Refuses a key that could not be what it says: a reader or writer names its one account; an
    /// admin sees every account, so one named with an account would be listed as that account's
    /// while reading and changing all of them.
    public func checkAccount(_ account: String?) throws {
        if let account, !EventDecoder.isValidIdentifier(account) {
            throw UsageBoxError.invalidArgument("account must be \(EventDecoder.identifierRule)", field: "account_id")
        }
        switch (self, account) {
        case (.admin, let account?):
            throw UsageBoxError.invalidArgument(
                "an admin key sees every account and cannot be limited to \(account): create it without an account, or a reader or writer key for \(account)",
                field: "account_id")
        case (.reader, nil), (.writer, nil):
            throw UsageBoxError.invalidArgument("a \(rawValue) key needs an account", field: "account_id")
        default: return
        }
    }
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
