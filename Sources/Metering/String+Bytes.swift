/// Strings compared and hashed by their UTF-8 bytes. Swift's `==` and hashing treat canonically
/// equivalent strings as equal (`café` precomposed and decomposed), while SQL and the content
/// hash compare bytes: a store keyed by `String` merged two stored spellings into one rollup row
/// and its verify then found drift. Stored text is NFC from this version on (docs/events.md), but
/// a store written before may hold both.
extension String {
    /// The same UTF-8 bytes.
    @inlinable public func bytesEqual(_ other: String) -> Bool {
        var a = self, b = other
        return a.withUTF8 { x in b.withUTF8 { y in x.elementsEqual(y) } }
    }

    /// Feeds the UTF-8 bytes (and their count) to a hasher.
    @inlinable public func hashBytes(into h: inout Hasher) {
        var s = self
        s.withUTF8 { u in
            h.combine(u.count)
            h.combine(bytes: UnsafeRawBufferPointer(u))
        }
    }
}

/// An optional string compared by bytes (nil equals nil only).
@inlinable public func bytesEqual(_ a: String?, _ b: String?) -> Bool {
    switch (a, b) {
    case (nil, nil): return true
    case let (x?, y?): return x.bytesEqual(y)
    default: return false
    }
}
