/// Lowercase hex, as the stores write hashes: segment hashes, event contents, running multiset hashes.
public enum LowercaseHex {
    public static func of(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A 256-bit value held as four 64-bit words, most significant first.
    public static func of(words: (UInt64, UInt64, UInt64, UInt64)) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for w in [words.0, words.1, words.2, words.3] {
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: w >> UInt64(shift))) }
        }
        return of(bytes)
    }
}
