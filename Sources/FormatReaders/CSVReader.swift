import CLibCSV
import Foundation

/// One CSV record and the physical line it starts on (1-based).
public struct CSVRecord: Sendable, Equatable {
    public var fields: [String]
    public var line: Int
    public init(fields: [String], line: Int) {
        self.fields = fields
        self.line = line
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

    public init() throws {
        guard csv_init(&parser, UInt8(CSV_STRICT_FINI | CSV_REPALL_NL)) == 0 else {
            throw CSVError(message: "cannot initialise the CSV parser", line: 0)
        }
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
        let ready = sink.pointee.records
        sink.pointee.records.removeAll(keepingCapacity: true)
        for r in ready { try onRecord(r) }
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
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CSVError(message: "cannot open \(path)", line: 0)
        }
        defer { try? handle.close() }
        let reader = try CSVReader()
        while let chunk = try handle.read(upToCount: chunkSize), !chunk.isEmpty {
            try reader.feed(chunk, onRecord)
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
    var fields: [String] = []
    var records: [CSVRecord] = []
    /// The physical line the parser has reached, and the one the current record started on.
    var line = 1
    var rowStartLine = 1
    var lastWasCR = false
    var embeddedNewlines = 0

    mutating func field(_ pointer: UnsafeRawPointer?, _ count: Int) {
        guard let pointer else { fields.append(""); return }
        let buffer = UnsafeRawBufferPointer(start: pointer, count: count)
        var rest = buffer
        while let base = rest.baseAddress, !rest.isEmpty, let nl = memchr(base, 0x0A, rest.count) {
            embeddedNewlines += 1
            rest = UnsafeRawBufferPointer(rebasing: rest[(UnsafeRawPointer(nl) - base + 1)...])
        }
        fields.append(String(decoding: buffer, as: UTF8.self))
    }

    mutating func row(_ terminator: Int32) {
        let hasFields = !fields.isEmpty
        if hasFields {
            records.append(CSVRecord(fields: fields, line: rowStartLine))
            fields.removeAll(keepingCapacity: true)
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
