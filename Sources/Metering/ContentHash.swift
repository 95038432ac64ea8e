import Crypto

/// The SHA-256 of an event's canonical encoding, as four big-endian 64-bit words: what a segment's
/// multiset hash adds up. `IngestBatch` computes it on the reading side, so the store's single
/// writer does not hash each event again for every running total it keeps.
public struct ContentHash: Sendable, Equatable {
    public var words: (UInt64, UInt64, UInt64, UInt64)

    public init(canonical bytes: UnsafeRawBufferPointer) {
        let digest = SHA256.hash(data: bytes)
        words = digest.withUnsafeBytes { raw in
            (
                raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self).bigEndian,
                raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self).bigEndian,
                raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self).bigEndian,
                raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self).bigEndian
            )
        }
    }

    /// The SHA-256 in lowercase hex, as stores record an event's content.
    public var hex: String { LowercaseHex.of(words: words) }

    public static func == (a: ContentHash, b: ContentHash) -> Bool { a.words == b.words }
}
