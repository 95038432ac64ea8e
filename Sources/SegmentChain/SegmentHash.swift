import Crypto
import Metering

/// The hash that chains an account's segments (docs/events.md):
/// `SHA-256( prev_hex + "\n" + e₁ + e₂ + … )`, each `eᵢ` an event's canonical encoding followed by
/// `\n`, in ingest order, a post-close event's followed by `post_close\n` (rule 2). Every store
/// backend seals and verifies with this one implementation.
public struct SegmentHash: @unchecked Sendable {
    // SHA256 from swift-crypto is a value type without a Sendable annotation; it is only ever copied.
    private var hasher = SHA256()

    /// Starts a segment chained to the account's previous sealed segment (nil for the first).
    public init(previous: String?) {
        let head = Array(((previous ?? "") + "\n").utf8)
        head.withUnsafeBytes { hasher.update(bufferPointer: $0) }
    }

    /// Adds one event's canonical encoding (with its trailing newline).
    public mutating func add(canonical bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
    }

    /// Marks the event just added as stored after its period closed (hash rule 2): the flag that
    /// tells a closed month was changed is then covered by the chain like the event itself.
    public mutating func markPostClose() {
        Self.postCloseMark.withUnsafeBytes { hasher.update(bufferPointer: $0) }
    }
    static let postCloseMark = Array("post_close\n".utf8)

    /// The hash rule of segments sealed from now on: 1 hashed events only, 2 marks post-close ones.
    public static let currentRule = 2

    /// The lowercase hex hash.
    public func finalize() -> String { LowercaseHex.of(hasher.finalize()) }

}

/// How a key's secret is stored: its SHA-256 in lowercase hex (never the secret).
public enum SecretHash {
    public static func of(_ secret: String) -> String { LowercaseHex.of(SHA256.hash(data: Array(secret.utf8))) }
}
