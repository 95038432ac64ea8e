import Foundation

/// Reads the big array of a JSON export one element at a time: `{"data": [ … ], "has_more": …}`
/// (or a top-level array), so memory holds one element's tree, not the document's, at any size.
/// Numbers keep their exact text, as with `JSONParser`; errors name the line and column in the file.
///
/// ```swift
/// let rest = try JSONStream.forEachElement(path: "costs.json", of: "data") { bucket in … }
/// rest["has_more"]  // the document's other members
/// ```
public enum JSONStream {
    /// Streams the elements of the array under the top-level member `key` (nil: the document is
    /// the array) to `body`, and returns the document's members with that array left empty (so a
    /// caller can tell a streamed array from a missing member). A document without that member
    /// delivers nothing and returns all of its members.
    @discardableResult
    public static func forEachElement(
        path: String, of key: String?, chunkSize: Int = 1 << 20, _ body: (JSONValue) throws -> Void
    ) throws -> JSONValue {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw JSONParseError(message: "cannot open \(path)", line: 0, column: 0)
        }
        defer { try? handle.close() }
        var window = Window(chunkSize: chunkSize) { try handle.read(upToCount: $0).map(Array.init) ?? [] }
        return try window.run(key: key, body)
    }

    /// The same over bytes already in memory (an invoice read whole): the trees still come one
    /// element at a time. `chunkSize` feeds the bytes in pieces, as a file would come (tests).
    @discardableResult
    public static func forEachElement<Bytes: RandomAccessCollection<UInt8>>(
        bytes: Bytes, of key: String?, chunkSize: Int = .max, _ body: (JSONValue) throws -> Void
    ) throws -> JSONValue {
        var offset = 0
        var window = Window(chunkSize: chunkSize) { size in
            let from = bytes.index(bytes.startIndex, offsetBy: offset)
            let n = min(size, bytes.count - offset)
            offset += n
            return Array(bytes[from..<bytes.index(from, offsetBy: n)])
        }
        return try window.run(key: key, body)
    }

    /// The unread part of the input, refilled chunk by chunk; what was consumed is dropped, and the
    /// lines and columns it held are counted so errors still name the file's line and column.
    struct Window {
        var buffer: [UInt8] = []
        var position = 0
        var eof = false
        /// Lines wholly before `buffer[0]`, and columns of its line before it.
        var linesBefore = 0
        var columnsBefore = 0
        /// Reads up to the given number of bytes; empty at the end.
        let next: (Int) throws -> [UInt8]
        let chunkSize: Int
        /// The next read's size: doubled (up to 64 MiB) each time a step needs more without
        /// finishing, so an element far larger than a chunk is not parsed again once per chunk.
        var want: Int

        init(chunkSize: Int, next: @escaping (Int) throws -> [UInt8]) {
            self.next = next
            self.chunkSize = max(chunkSize, 1)
            want = self.chunkSize
        }

        enum Outcome<T> {
            case done(T, end: Int)
            case needMore
            case failed(JSONParseError)
        }

        /// Runs one parsing step at `position`. When it stops at the end of what was read so far
        /// (or ends a value right there, where a number or literal may go on), more is read and
        /// the step runs again from the same place.
        mutating func step<T>(_ body: (inout JSONParser.Cursor) throws -> T) throws -> T {
            while true {
                let outcome: Outcome<T> = buffer.withUnsafeBufferPointer { bytes in
                    var cursor = JSONParser.Cursor(bytes: bytes, index: position, locatesErrors: false)
                    do {
                        cursor.skipWhitespace()
                        let value = try body(&cursor)
                        cursor.skipWhitespace()
                        if cursor.index >= bytes.count, !eof { return .needMore }
                        return .done(value, end: cursor.index)
                    } catch let e as JSONParseError {
                        if !eof, cursor.index >= bytes.count - 8 { return .needMore }
                        let here = JSONParser.Cursor(bytes: bytes, index: min(e.offset ?? cursor.index, bytes.count))
                        return .failed(located(here.error(e.message)))
                    } catch {
                        return .failed(JSONParseError(message: "\(error)", line: linesBefore + 1, column: columnsBefore))
                    }
                }
                switch outcome {
                case let .done(value, end):
                    position = end
                    want = chunkSize
                    return value
                case .needMore:
                    try refill()
                    want = max(want, min(want, 1 << 25) * 2)  // doubling stops at 64 MiB (no overflow)
                case let .failed(e): throw e
                }
            }
        }

        /// An error found in the window, placed in the file.
        func located(_ e: JSONParseError) -> JSONParseError {
            JSONParseError(message: e.message, line: e.line + linesBefore, column: e.line == 1 ? e.column + columnsBefore : e.column)
        }

        /// Drops what was consumed and appends the next chunk.
        mutating func refill() throws {
            if position > 0 {
                // memchr over the raw bytes (a closure-based reduce over the slice was ≈ 9 % of a
                // 100 MB export's parse).
                let (newlines, lastNewline) = buffer.withUnsafeBufferPointer { bytes -> (Int, Int) in
                    guard let base = bytes.baseAddress else { return (0, -1) }
                    var count = 0, last = -1, at = 0
                    while at < position, let hit = memchr(base + at, 0x0A, position - at) {
                        last = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                        count += 1
                        at = last + 1
                    }
                    return (count, last)
                }
                if newlines > 0 {
                    linesBefore += newlines
                    columnsBefore = position - lastNewline - 1
                } else {
                    columnsBefore += position
                }
                buffer.removeSubrange(..<position)
                position = 0
            }
            let more = try next(want)
            if more.isEmpty { eof = true } else { buffer.append(contentsOf: more) }
        }

        /// The byte at `position` after whitespace, reading more as needed; nil at the end.
        mutating func peek() throws -> UInt8? {
            while true {
                while position < buffer.count, buffer[position] == 0x20 || buffer[position] == 0x0A || buffer[position] == 0x0D || buffer[position] == 0x09 {
                    position += 1
                }
                if position < buffer.count { return buffer[position] }
                if eof { return nil }
                try refill()
            }
        }

        mutating func expect(_ byte: UInt8, _ what: String) throws {
            guard try peek() == byte else { throw here("expected \(what)") }
            position += 1
        }

        func here(_ message: String) -> JSONParseError {
            buffer.withUnsafeBufferPointer { located(JSONParser.Cursor(bytes: $0, index: min(position, $0.count)).error(message)) }
        }

        mutating func run(key: String?, _ body: (JSONValue) throws -> Void) throws -> JSONValue {
            var members: [(String, JSONValue)] = []
            var seen = Set<String>()
            if key == nil {
                try elements(depth: 1, body)
            } else {
                try expect(UInt8(ascii: "{"), "'{' (the export's top-level object)")
                var first = true
                while try peek() != UInt8(ascii: "}") {
                    if !first { try expect(UInt8(ascii: ","), "',' or '}'") }
                    first = false
                    guard try peek() == UInt8(ascii: "\"") else { throw here("expected a string key") }
                    let name = try step { try $0.parseString() }
                    guard seen.insert(name).inserted else { throw here("duplicate key \"\(name)\"") }
                    try expect(UInt8(ascii: ":"), "':'")
                    if name == key, try peek() == UInt8(ascii: "[") {
                        try elements(depth: 2, body)
                        members.append((name, .array([])))
                    } else {
                        members.append((name, try step { try $0.parseValue(depth: 1) }))
                    }
                }
                position += 1
            }
            guard try peek() == nil else { throw here("unexpected data after the JSON value") }
            return .object(members)
        }

        /// `[ element, … ]` at `position`, each element parsed and handed over alone, at the depth
        /// it has in the document (so the nesting limit is the whole-document parser's).
        mutating func elements(depth: Int, _ body: (JSONValue) throws -> Void) throws {
            try expect(UInt8(ascii: "["), "'['")
            var first = true
            while true {
                guard let b = try peek() else { throw here("unexpected end of input in array") }
                if b == UInt8(ascii: "]") { break }
                if !first { try expect(UInt8(ascii: ","), "',' or ']'") }
                first = false
                try body(try step { try $0.parseValue(depth: depth) })
            }
            position += 1
        }
    }
}
