import ExactJSON
import FormatReaders
import Foundation
public import Metering

/// An ingest item with where it was read from.
public struct SourcedItem: Sendable {
    public var item: IngestItem
    /// The line in an NDJSON or CSV file; nil inside a `{"events": [...]}` document (the error's index says which).
    public var line: Int?
}

/// Streams events out of NDJSON, `{"events": […]}` JSON, or CSV files.
///
/// NDJSON and CSV stream in chunks (bounded memory at any size); a `{"events": […]}` document is
/// read whole. A malformed NDJSON line or CSV row is a rejected event naming its line; a file that
/// cannot be read at all is an error naming the file.
public struct EventFileReader: Sendable {
    public enum Format: String, Sendable { case ndjson, json, csv }

    public var decoder: EventDecoder
    public var chunkSize = 4 << 20
    /// A batch ends at `batchSize` events or once its events' source bytes pass this, whichever
    /// comes first: 20,000 events of 47 KB each (32 long dimensions) made a 940 MB batch, held
    /// while the store built its write of it and the next batch was read.
    public var batchBytes = Self.defaultBatchBytes
    public static let defaultBatchBytes = 16 << 20
    /// The longest NDJSON line read: a server takes no request body longer.
    public static let maxLineBytes = UsageBatchBody.maxBodyBytes
    static let lineTooLong = EventRejection(
        code: "line_too_long", message: "the line is longer than \(maxLineBytes >> 20) MiB, more than any event can be")

    public init(decoder: EventDecoder) { self.decoder = decoder }

    public static func detectFormat(path: String, firstBytes: [UInt8]) -> Format {
        let lower = path.lowercased()
        if lower.hasSuffix(".csv") { return .csv }
        if lower.hasSuffix(".ndjson") || lower.hasSuffix(".jsonl") { return .ndjson }
        let bytes = ByteOrderMark.dropped(from: firstBytes)
        guard let first = bytes.first(where: { ![0x20, 0x0A, 0x0D, 0x09].contains($0) }) else { return .ndjson }
        if first == UInt8(ascii: "[") { return .json }
        if first == UInt8(ascii: "{") {
            // A document whose first key is "events" is the batch shape; otherwise one event per line.
            let head = String(decoding: bytes.prefix(4096), as: UTF8.self)
            let compact = head.filter { !$0.isWhitespace }
            return compact.hasPrefix("{\"events\"") ? .json : .ndjson
        }
        return lower.hasSuffix(".json") ? .json : .csv
    }

    /// Reads `path` ("-" for standard input), handing items to `onBatch` in batches of `batchSize`
    /// events or `batchBytes` of source, whichever is reached first.
    public func read(path: String, batchSize: Int, onBatch: ([SourcedItem]) async throws -> Void) async throws {
        let handle: FileHandle
        if path == "-" {
            handle = FileHandle.standardInput
        } else {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
                let h = FileHandle(forReadingAtPath: path)
            else {
                throw UsageBoxError.invalidArgument("\(path): cannot open the file (missing, a folder, or not readable)", field: "file")
            }
            handle = h
        }
        defer { if path != "-" { try? handle.close() } }
        let first = try handle.read(upToCount: chunkSize) ?? Data()
        let format = Self.detectFormat(path: path, firstBytes: Array(first.prefix(4096)))
        var batch: [SourcedItem] = []
        batch.reserveCapacity(min(batchSize, 1 << 16))
        var bytesInBatch = 0
        func emit(_ item: SourcedItem, bytes: Int) async throws {
            batch.append(item)
            bytesInBatch += bytes
            if batch.count >= batchSize || bytesInBatch >= batchBytes {
                try await onBatch(batch)
                batch.removeAll(keepingCapacity: true)
                bytesInBatch = 0
            }
        }
        switch format {
        case .ndjson:
            var pending = first
            var line = 1
            var atStart = true
            // Past a line longer than any event may be (rejected), until the newline that ends it.
            var skipping = false
            while true {
                if skipping {
                    guard let newline = pending.firstIndex(of: 0x0A) else {
                        guard let next = try handle.read(upToCount: chunkSize), !next.isEmpty else { break }
                        pending = next
                        continue
                    }
                    pending = Data(pending[(newline + 1)...])
                    line += 1
                    skipping = false
                }
                var start = pending.startIndex
                if atStart { start += ByteOrderMark.length(at: pending) }
                atStart = false
                var items: [(SourcedItem, bytes: Int)] = []
                pending.withUnsafeBytes { raw in
                    let bytes = raw.bindMemory(to: UInt8.self)
                    var i = start - pending.startIndex
                    var lineStart = i
                    while i < bytes.count {
                        if bytes[i] == 0x0A {
                            if i - lineStart > Self.maxLineBytes {
                                // Its newline came in the same read that took it past the limit: still too long.
                                items.append((SourcedItem(item: .invalid(Self.lineTooLong), line: line), Self.maxLineBytes))
                            } else if let item = decodeLine(UnsafeBufferPointer(rebasing: bytes[lineStart..<i]), line: line) {
                                items.append((item, i - lineStart))
                            }
                            line += 1
                            lineStart = i + 1
                        }
                        i += 1
                    }
                    start = pending.startIndex + lineStart
                }
                for (item, bytes) in items { try await emit(item, bytes: bytes) }
                let rest = pending[start...]
                // A line is kept whole until its newline: one longer than a request body may be is
                // rejected without reading the rest of it in (a 300 MiB line held 963 MB).
                if rest.count > Self.maxLineBytes {
                    try await emit(SourcedItem(item: .invalid(Self.lineTooLong), line: line), bytes: Self.maxLineBytes)
                    skipping = true
                    pending = Data()
                    continue
                }
                guard let next = try handle.read(upToCount: chunkSize), !next.isEmpty else {
                    if !rest.isEmpty {
                        let tail = Data(rest)
                        let item = tail.withUnsafeBytes { decodeLine($0.bindMemory(to: UInt8.self), line: line) }
                        if let item { try await emit(item, bytes: rest.count) }
                    }
                    break
                }
                pending = Data(rest) + next
            }
        case .json:
            var data = first
            while let next = try handle.read(upToCount: chunkSize), !next.isEmpty { data.append(next) }
            data = ByteOrderMark.dropped(from: data)
            let value: JSONValue
            do {
                value = try JSONParser.parse(bytes: data)
            } catch let e as JSONParseError {
                throw UsageBoxError.invalidArgument("\(path):\(e.line):\(e.column): \(e.message)", field: "file")
            }
            let events: [JSONValue]
            if case let .array(a) = value {
                events = a
            } else if case let .object(members) = value, case let .array(a)? = value["events"] {
                // As `POST /v1/usage/batch` does: a misspelt second list ("evnets") was dropped unread.
                if let unknown = members.first(where: { !UsageBatchBody.wireFields.contains($0.0) }) {
                    throw UsageBoxError.invalidArgument(
                        "\(path): unknown member '\(unknown.0)' beside \"events\" (a document holds {\"events\": [...]} alone)", field: "file")
                }
                events = a
            } else {
                throw UsageBoxError.invalidArgument("\(path): expected {\"events\": [...]} or an array of events", field: "file")
            }
            // The document is in memory whole; its batches are bounded by its events' average size.
            let average = data.count / max(events.count, 1)
            for e in events { try await emit(SourcedItem(item: decoder.decode(e), line: nil), bytes: average) }
        case .csv:
            var header: [String]?
            var records: [CSVRecord] = []
            // A cell's spaces are its value's, as in the same event sent as JSON.
            let reader = try CSVReader(keepSpaces: true)
            var chunk: Data? = first
            while let current = chunk, !current.isEmpty {
                do {
                    try reader.feed(current) { records.append($0) }
                } catch let e as CSVError {
                    throw UsageBoxError.invalidArgument("\(path):\(e.line): \(e.message)", field: "file")
                }
                for r in records { if let item = try csvItem(r, header: &header, path: path) { try await emit(item, bytes: r.byteCount) } }
                records.removeAll(keepingCapacity: true)
                chunk = try handle.read(upToCount: chunkSize)
            }
            do {
                try reader.finish { records.append($0) }
            } catch let e as CSVError {
                throw UsageBoxError.invalidArgument("\(path):\(e.line): \(e.message)", field: "file")
            }
            for r in records { if let item = try csvItem(r, header: &header, path: path) { try await emit(item, bytes: r.byteCount) } }
        }
        if !batch.isEmpty { try await onBatch(batch) }
    }

    private func decodeLine(_ bytes: UnsafeBufferPointer<UInt8>, line: Int) -> SourcedItem? {
        var end = bytes.count
        while end > 0, [0x20, 0x0D, 0x09].contains(bytes[end - 1]) { end -= 1 }
        var start = 0
        while start < end, [0x20, 0x09].contains(bytes[start]) { start += 1 }
        guard start < end else { return nil }
        do {
            let value = try JSONParser.parse(bytes: UnsafeBufferPointer(rebasing: bytes[start..<end]))
            return SourcedItem(item: decoder.decode(value), line: line)
        } catch let e as JSONParseError {
            return SourcedItem(item: .invalid(EventRejection(code: "malformed_json", message: "column \(e.column): \(e.message)")), line: line)
        } catch {
            return SourcedItem(item: .invalid(EventRejection(code: "malformed_json", message: "\(error)")), line: line)
        }
    }

    private func csvItem(_ r: CSVRecord, header: inout [String]?, path: String) throws -> SourcedItem? {
        guard let names = header else {
            let names = r.fields.map { $0.trimmingCharacters(in: .whitespaces) }
            // Two columns of one name: which value each row means is not known (the last one won).
            var seen = Set<String>()
            if let twice = names.first(where: { !seen.insert($0).inserted }) {
                throw UsageBoxError.invalidArgument("\(path):\(r.line): the header names the column '\(twice)' twice", field: "file")
            }
            header = names
            return nil
        }
        if r.fields.count == 1, r.fields[0].allSatisfy({ $0 == " " || $0 == "\t" }) { return nil }
        guard r.fields.count == names.count else {
            return SourcedItem(
                item: .invalid(
                    EventRejection(
                        code: "malformed_row", message: "the row has \(r.fields.count) fields; the header names \(names.count)")), line: r.line)
        }
        return SourcedItem(item: decoder.decode(row: Array(zip(names, r.fields))), line: r.line)
    }
}
