import Crypto
import Metering

/// An order-independent hash of a set of events: the sum, modulo 2^256, of each event's SHA-256.
/// It can be kept up to date one committed batch at a time (an open segment's running hash), and
/// recomputed from the stored events in any order.
public struct MultisetHash: Sendable, Equatable {
    public var limbs: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    public static func == (a: MultisetHash, b: MultisetHash) -> Bool { a.limbs == b.limbs }

    public mutating func add(canonical bytes: UnsafeRawBufferPointer) { add(ContentHash(canonical: bytes)) }

    /// Adds an event given the hash of its canonical encoding (computed once, off the writer).
    public mutating func add(_ hash: ContentHash) {
        let (w0, w1, w2, w3) = hash.words
        // Add with carry, least significant limb last.
        func step(_ a: UInt64, _ b: UInt64, _ carry: UInt64) -> (UInt64, UInt64) {
            let (s1, o1) = a.addingReportingOverflow(b)
            let (s2, o2) = s1.addingReportingOverflow(carry)
            return (s2, (o1 ? 1 : 0) + (o2 ? 1 : 0))
        }
        let (r3, c3) = step(limbs.3, w3, 0)
        let (r2, c2) = step(limbs.2, w2, c3)
        let (r1, c1) = step(limbs.1, w1, c2)
        let (r0, _) = step(limbs.0, w0, c1)
        limbs = (r0, r1, r2, r3)
    }

    public mutating func add(_ e: UsageEvent) {
        var buffer: [UInt8] = []
        e.appendCanonical(to: &buffer)
        buffer.withUnsafeBytes { add(canonical: $0) }
    }

    public var hex: String { LowercaseHex.of(words: limbs) }

    public init() {}
    public init?(hex: String) {
        guard hex.utf8.count == 64 else { return nil }
        var words: [UInt64] = []
        var i = hex.startIndex
        for _ in 0..<4 {
            let j = hex.index(i, offsetBy: 16)
            guard let w = UInt64(hex[i..<j], radix: 16) else { return nil }
            words.append(w)
            i = j
        }
        limbs = (words[0], words[1], words[2], words[3])
    }
}
