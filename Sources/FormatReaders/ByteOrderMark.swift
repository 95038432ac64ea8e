/// The UTF-8 byte-order mark some exporters (Excel, Windows tools) put before the first byte of a
/// CSV or JSON file. Every reader drops it here, in one place, and nowhere else.
public enum ByteOrderMark {
    public static let utf8: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// The number of leading bytes that are a BOM (0 or 3).
    public static func length<C: Collection>(at bytes: C) -> Int where C.Element == UInt8 {
        bytes.starts(with: utf8) ? utf8.count : 0
    }

    /// The bytes without a leading BOM.
    public static func dropped<C: Collection>(from bytes: C) -> C.SubSequence where C.Element == UInt8 {
        bytes.dropFirst(length(at: bytes))
    }
}
