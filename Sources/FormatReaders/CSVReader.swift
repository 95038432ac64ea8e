import CLibCSV
import Foundation

/// One CSV record and the physical line it starts on (1-based).
///
/// The fields are byte ranges over the buffer the reader filled from libcsv (shared by every record
/// of a chunk, not copied per record) and become `String`s only when read: a reader that looks at
/// three columns of forty pays for three.
public struct CSVRecord: Sendable {
    private let storage: CSVStorage
    /// This record's field ends are `storage.ends[first..<first + count]`.
    private let first: Int
    /// How many fields the record has.
    public let count: Int
    /// Where the record's first field starts in `storage.bytes`.
    private let base: Int
    public var line: Int

    public init(fields: [String], line: Int) {
        let storage = CSVStorage()
        for f in fields {
            var f = f
            _ = f.withUTF8 { storage.append($0) }
        }
        self.init(storage: storage, first: 0, count: fields.count, base: 0, line: line)
    }

    init(storage: CSVStorage, first: Int, count: Int, base: Int, line: Int) {
        self.storage = storage
        self.first = first
        self.count = count
        self.base = base
        self.line = line
    }

    /// Field `i`'s bytes, valid inside `body` only.
    public func withFieldBytes<R>(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        precondition(i >= 0 && i < count, "field \(i) of a \(count)-field record")
        let start = i == 0 ? base : storage.ends[first + i - 1]
        return try withExtendedLifetime(storage) { try body(UnsafeBufferPointer(start: storage.bytes + start, count: storage.ends[first + i] - start)) }
    }

    /// The bytes of the record's fields together (no separators or quotes), without decoding any.
    public var byteCount: Int { count == 0 ? 0 : storage.ends[first + count - 1] - base }

    /// Field `i` as text (invalid UTF-8 repaired with U+FFFD).
    public subscript(_ i: Int) -> String { withFieldBytes(i) { String(decoding: $0, as: UTF8.self) } }

    /// Every field as text: convenient, and the cost the byte ranges avoid when only some are read.
    public var fields: [String] { (0..<count).map { self[$0] } }

    /// True when field `i` holds nothing but whitespace (decoded only when it is not plain ASCII).
    public func isBlank(_ i: Int) -> Bool {
        withFieldBytes(i) { b in
            if b.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) { return true }
            return b.contains(where: { $0 >= 0x80 }) && String(decoding: b, as: UTF8.self).allSatisfy(\.isWhitespace)
        }
    }
}

/// The field bytes of a chunk's records and where each field ends, in buffers grown by doubling
/// (no per-field uniqueness checks or reference counting). Records share it; it is written only
/// while no record refers to it, so a shared one never changes.
final class CSVStorage: @unchecked Sendable {
    private(set) var bytes: UnsafeMutablePointer<UInt8>
    private(set) var byteCount = 0
    private var byteCapacity: Int
    private(set) var ends: UnsafeMutablePointer<Int>
    private(set) var endCount = 0
    private var endCapacity: Int

    init(byteCapacity: Int = 1 << 16, endCapacity: Int = 1 << 12) {
        self.byteCapacity = byteCapacity
        self.endCapacity = endCapacity
        bytes = .allocate(capacity: byteCapacity)
        ends = .allocate(capacity: endCapacity)
    }

    deinit {
        bytes.deallocate()
        ends.deallocate()
    }

    /// Appends a field's bytes and returns how many line feeds they hold: one pass, eight bytes at
    /// a time (fields are short: a memmove call and a separate count per field were ≈ 10 % of the
    /// parse). Per 64-bit word, a byte of `x` is zero exactly where the field has a line feed, and
    /// the masked add sets each byte's top bit unless that byte is zero, without carrying between
    /// bytes.
    @inline(__always) @discardableResult
    func append(_ field: UnsafeBufferPointer<UInt8>) -> Int {
        if byteCount + field.count > byteCapacity {
            var capacity = byteCapacity * 2
            while capacity < byteCount + field.count { capacity *= 2 }
            let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
            grown.update(from: bytes, count: byteCount)
            bytes.deallocate()
            bytes = grown
            byteCapacity = capacity
        }
        var newlines = 0
        if let base = field.baseAddress {
            let source = UnsafeRawPointer(base)
            let target = UnsafeMutableRawPointer(bytes + byteCount)
            var i = 0
            while i + 8 <= field.count {
                let word = source.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                target.storeBytes(of: word, toByteOffset: i, as: UInt64.self)
                let x = word ^ 0x0A0A_0A0A_0A0A_0A0A
                let t = ((x & 0x7F7F_7F7F_7F7F_7F7F) &+ 0x7F7F_7F7F_7F7F_7F7F) | x
                newlines &+= (~t & 0x8080_8080_8080_8080).nonzeroBitCount
                i += 8
            }
            while i < field.count {
                let b = base[i]
                target.storeBytes(of: b, toByteOffset: i, as: UInt8.self)
                newlines &+= b == 0x0A ? 1 : 0
                i += 1
            }
        }
        byteCount += field.count
        if endCount == endCapacity {
            let grown = UnsafeMutablePointer<Int>.allocate(capacity: endCapacity * 2)
            grown.update(from: ends, count: endCount)
            ends.deallocate()
            ends = grown
            endCapacity *= 2
        }
        ends[endCount] = byteCount
        endCount += 1
        return newlines
    }

    /// A storage holding only the fields from `firstEnd` on (their bytes from `firstByte`).
    func tail(fromEnd firstEnd: Int, fromByte firstByte: Int) -> CSVStorage {
        let next = CSVStorage(byteCapacity: byteCapacity, endCapacity: endCapacity)
        next.keep(self, fromEnd: firstEnd, fromByte: firstByte)
        return next
    }

    /// Moves the fields from `firstEnd` on to the front (when no record refers to this storage).
    func compact(fromEnd firstEnd: Int, fromByte firstByte: Int) {
        keep(self, fromEnd: firstEnd, fromByte: firstByte)
    }

    private func keep(_ source: CSVStorage, fromEnd firstEnd: Int, fromByte firstByte: Int) {
        let n = source.byteCount - firstByte
        bytes.update(from: source.bytes + firstByte, count: n)
        let m = source.endCount - firstEnd
        for i in 0..<m { ends[i] = source.ends[firstEnd + i] - firstByte }
        byteCount = n
        endCount = m
    }
}

extension CSVRecord: Equatable {
    /// Records are equal when their lines and fields' bytes are.
    public static func == (a: CSVRecord, b: CSVRecord) -> Bool {
        guard a.line == b.line, a.count == b.count else { return false }
        for i in 0..<a.count where !a.withFieldBytes(i, { x in b.withFieldBytes(i) { y in x.elementsEqual(y) } }) { return false }
        return true
    }
}

public struct CSVError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var line: Int
    public var description: String { "line \(line): \(message)" }
}

/// A streaming RFC 4180 reader over libcsv: quotes, embedded newlines, CRLF, a UTF-8 BOM, any size.
///
/// Feed it chunks; complete records come back through the callback with their starting line. This
/// is the only file that sees libcsv's types.
public final class CSVReader {
    private var parser = csv_parser()
    // Callback state behind a raw pointer, not in a class: class properties pay a dynamic
    // exclusivity check on every access, which was a sixth of the parse time.
    private let sink: UnsafeMutablePointer<Sink> = {
        let p = UnsafeMutablePointer<Sink>.allocate(capacity: 1)
        p.initialize(to: Sink())
        return p
    }()
    private var atStart = true
    private var finished = false

    /// `keepSpaces`: spaces and tabs around an unquoted field are part of it, as RFC 4180 has
    /// it (libcsv trims them by default). Events keep them: ` x ` stored as `x` answered the same
    /// event sent as JSON a conflict. Invoices are read trimmed (a hand-edited ` 12.50`). A quote
    /// beside such a space (` "input"`, `"e1" ,`) is then malformed, and refused naming its line
    /// (strict mode): read on, it was stored with its quotes, or ran rows together.
    public init(keepSpaces: Bool = false) throws {
        guard csv_init(&parser, UInt8(CSV_STRICT_FINI | CSV_REPALL_NL | (keepSpaces ? CSV_STRICT : 0))) == 0 else {
            throw CSVError(message: "cannot initialise the CSV parser", line: 0)
        }
        if keepSpaces { csv_set_space_func(&parser) { _ in 0 } }
        // Large blocks: fewer reallocations on long fields.
        csv_set_blk_size(&parser, 64 * 1024)
    }

    deinit {
        csv_free(&parser)
        sink.deinitialize(count: 1)
        sink.deallocate()
    }

    /// Parses a chunk, calling `onRecord` for every record it completes.
    public func feed(_ chunk: UnsafeRawBufferPointer, _ onRecord: (CSVRecord) throws -> Void) throws {
        var bytes = chunk
        if atStart, !bytes.isEmpty {
            atStart = false
            bytes = UnsafeRawBufferPointer(rebasing: bytes[ByteOrderMark.length(at: bytes)...])
        }
        let context = UnsafeMutableRawPointer(sink)
        let consumed = csv_parse(&parser, bytes.baseAddress, bytes.count, fieldCallback, rowCallback, context)
        try drain(onRecord)
        if consumed != bytes.count {
            throw CSVError(message: errorText(), line: sink.pointee.line)
        }
    }

    public func feed(_ data: Data, _ onRecord: (CSVRecord) throws -> Void) throws {
        try data.withUnsafeBytes { try feed($0, onRecord) }
    }

    /// Ends the input: a final record without a line break is delivered; an open quote is an error.
    public func finish(_ onRecord: (CSVRecord) throws -> Void) throws {
        guard !finished else { return }
        finished = true
        // libcsv only reports an unterminated quote in strict mode, which also refuses the stray
        // quotes real files contain; check its state instead (2 = FIELD_BEGUN, inside quotes).
        if parser.quoted != 0, parser.pstate == 2 {
            throw CSVError(message: "the file ends inside a quoted field that starts on line \(sink.pointee.rowStartLine)", line: sink.pointee.rowStartLine)
        }
        let context = UnsafeMutableRawPointer(sink)
        let rc = csv_fini(&parser, fieldCallback, rowCallback, context)
        try drain(onRecord)
        if rc != 0 {
            throw CSVError(message: "the file ends inside a quoted field that starts on line \(sink.pointee.rowStartLine)", line: sink.pointee.rowStartLine)
        }
    }

    private func drain(_ onRecord: (CSVRecord) throws -> Void) throws {
        do {
            let ready = sink.pointee.take()
            for r in ready { try onRecord(r) }
        }
        // The delivered records are released by now unless the caller kept them; either way the
        // buffers start again from the unfinished record.
        sink.pointee.compact()
    }

    private func errorText() -> String {
        switch csv_error(&parser) {
        case CSV_EPARSE: return "malformed CSV near line \(sink.pointee.line) (a quote inside an unquoted field, or text after a closing quote)"
        case CSV_ENOMEM: return "out of memory"
        case CSV_ETOOBIG: return "a field is too large"
        default: return "CSV error"
        }
    }

    /// Reads a whole file in chunks, streaming records to `onRecord`.
    public static func read(path: String, chunkSize: Int = 1 << 20, _ onRecord: (CSVRecord) throws -> Void) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw CSVError(message: "cannot open \(path)", line: 0) }
        defer { close(fd) }
        // One buffer reused for every chunk (a fresh Data per chunk cost page faults on each).
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkSize, 1), alignment: 16)
        defer { buffer.deallocate() }
        let reader = try CSVReader()
        while true {
            #if canImport(Glibc)
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            #else
            let n = Darwin.read(fd, buffer.baseAddress, buffer.count)
            #endif
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw CSVError(message: "cannot read \(path): \(String(cString: strerror(errno)))", line: 0) }
            if n == 0 { break }
            try reader.feed(UnsafeRawBufferPointer(rebasing: buffer[..<n]), onRecord)
        }
        try reader.finish(onRecord)
    }

    /// Parses a whole in-memory text.
    public static func parse(_ text: String) throws -> [CSVRecord] {
        var out: [CSVRecord] = []
        let reader = try CSVReader()
        var copy = text
        try copy.withUTF8 { try reader.feed(UnsafeRawBufferPointer($0)) { out.append($0) } }
        try reader.finish { out.append($0) }
        return out
    }
}

/// Accumulates fields and records from libcsv's callbacks, which run synchronously inside
/// `csv_parse` on the caller's thread.
private struct Sink {
    /// Field bytes and ends of the records completed in this chunk, then of the unfinished one.
    var storage = CSVStorage()
    /// Completed records as (first end, field count, first byte, line).
    var completed: [(first: Int, count: Int, base: Int, line: Int)] = []
    /// Where the unfinished record starts in the storage's ends and bytes.
    var recordFirst = 0
    var recordBase = 0
    /// The physical line the parser has reached, and the one the current record started on.
    var line = 1
    var rowStartLine = 1
    var lastWasCR = false
    var embeddedNewlines = 0

    mutating func field(_ pointer: UnsafeRawPointer?, _ count: Int) {
        let buffer = UnsafeBufferPointer(start: pointer?.assumingMemoryBound(to: UInt8.self), count: pointer == nil ? 0 : count)
        // The storage outlives the call (the sink holds it): no retain and release per field.
        embeddedNewlines &+= Unmanaged.passUnretained(storage)._withUnsafeGuaranteedRef { $0.append(buffer) }
    }

    /// The completed records.
    mutating func take() -> [CSVRecord] {
        guard !completed.isEmpty else { return [] }
        let records = completed.map { CSVRecord(storage: storage, first: $0.first, count: $0.count, base: $0.base, line: $0.line) }
        completed.removeAll(keepingCapacity: true)
        return records
    }

    /// Keeps only the unfinished record: in place when no delivered record is still held, else in
    /// a new storage (the held records keep theirs, unchanged).
    mutating func compact() {
        guard recordBase > 0 || recordFirst > 0 else { return }
        if isKnownUniquelyReferenced(&storage) {
            storage.compact(fromEnd: recordFirst, fromByte: recordBase)
        } else {
            storage = storage.tail(fromEnd: recordFirst, fromByte: recordBase)
        }
        recordFirst = 0
        recordBase = 0
    }

    mutating func row(_ terminator: Int32) {
        let hasFields = storage.endCount > recordFirst
        if hasFields {
            completed.append((recordFirst, storage.endCount - recordFirst, recordBase, rowStartLine))
            recordFirst = storage.endCount
            recordBase = storage.byteCount
        }
        line += embeddedNewlines
        embeddedNewlines = 0
        // With CSV_REPALL_NL every unquoted CR and LF ends a (possibly empty) row: count CRLF once.
        if terminator == 0x0A {
            if !(lastWasCR && !hasFields) { line += 1 }
            lastWasCR = false
        } else if terminator == 0x0D {
            line += 1
            lastWasCR = true
        }
        rowStartLine = line
    }
}

private let fieldCallback: @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeMutableRawPointer?) -> Void = { pointer, count, context in
    context!.assumingMemoryBound(to: Sink.self).pointee.field(UnsafeRawPointer(pointer), count)
}

private let rowCallback: @convention(c) (Int32, UnsafeMutableRawPointer?) -> Void = { terminator, context in
    context!.assumingMemoryBound(to: Sink.self).pointee.row(terminator)
}
