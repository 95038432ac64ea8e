import Crypto

/// The hash that chains an account's segments (docs/events.md):
/// `SHA-256( prev_hex + "\n" + e₁ + e₂ + … )`, each `eᵢ` an event's canonical encoding followed by
/// `\n`, in ingest order. Every store backend seals and verifies with this one implementation.
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

    /// The lowercase hex hash.
    public func finalize() -> String { SegmentHash.hex(Array(hasher.finalize())) }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// How a key's secret is stored: its SHA-256 in lowercase hex (never the secret).
public enum SecretHash {
    public static func of(_ secret: String) -> String { SegmentHash.hex(Array(SHA256.hash(data: Array(secret.utf8)))) }
}
