import FormatReaders
import Foundation
public import Metering

/// A CSV export read into rows whose cells are looked up by column name (case-insensitively, so
/// PascalCase and camelCase exports read the same), with line numbers for errors.
public struct CSVTable: Sendable {
    public struct Row: Sendable {
        public var line: Int { record.line }
        /// The row's cells stay bytes until one is asked for.
        let record: CSVRecord
        let columns: [String: Int]

        /// The trimmed cell, nil when the column is missing or the cell empty.
        public func cell(_ name: String) -> String? {
            guard let i = columns[name.lowercased()], i < record.count else { return nil }
            let v = record[i].trimmingWhitespace()
            return v.isEmpty ? nil : v
        }

        /// A hash of every cell of the row as written (`InvoiceLine.sourceRow`).
        public var fingerprint: Int { fingerprint(excluding: []) }

        /// A hash of every cell but some columns' (a re-export's `export_time`, a re-pull's amounts).
        public func fingerprint(excluding names: [String]) -> Int {
            let skip = Set(names.compactMap { columns[$0.lowercased()] })
            var hasher = Hasher()
            for i in 0..<record.count where !skip.contains(i) { hasher.combine(record[i]) }
            return hasher.finalize()
        }

        /// The first present cell among several spellings of a column.
        public func cell(_ names: [String]) -> String? {
            for n in names { if let v = cell(n) { return v } }
            return nil
        }
    }

    public var header: [String]
    public var rows: [Row]
    public let columns: [String: Int]

    public func has(_ name: String) -> Bool { columns[name.lowercased()] != nil }

    /// Reads the file, refusing rows whose width differs from the header's and naming their line.
    public static func read(_ file: InvoiceFile, required: [[String]] = []) throws -> CSVTable {
        var records: [CSVRecord] = []
        do {
            let reader = try CSVReader()
            try file.bytes.withUnsafeBytes { try reader.feed($0) { records.append($0) } }
            try reader.finish { records.append($0) }
        } catch let e as CSVError {
            throw InvoiceError(file: file.name, line: e.line, e.message)
        }
        guard let header = records.first else { throw InvoiceError(file: file.name, line: 1, "the file is empty") }
        var columns: [String: Int] = [:]
        for (i, name) in header.fields.enumerated() { columns[name.trimmingWhitespace().lowercased()] = i }
        for names in required where !names.contains(where: { columns[$0.lowercased()] != nil }) {
            throw InvoiceError(file: file.name, line: 1, field: names[0], "the header lacks the column '\(names[0])'")
        }
        var rows: [Row] = []
        var polled = 0
        for (k, r) in records.enumerated().dropFirst() {
            try WorkDeadline.poll(&polled)  // the request's time (`WorkDeadline`), in a big export
            if (0..<r.count).allSatisfy(r.isBlank) { continue }
            // A record over more than one line (rare: only then are its cells looked into).
            if k + 1 == records.count || records[k + 1].line - r.line > 1, let field = swallowedRow(r, width: header.count) {
                throw InvoiceError(
                    file: file.name, line: r.line, field: header.fields.indices.contains(field) ? header.fields[field] : nil,
                    "a quoted cell runs past the end of its line into what reads as another row (a quote left open?): that row would be lost inside it")
            }
            guard r.count == header.count else {
                // The last row, short, of a file with no line end after it: a download cut off.
                let cut = r.count < header.count && r.line == records.last?.line && file.bytes.last.map { $0 != 0x0A && $0 != 0x0D } == true
                throw InvoiceError(
                    file: file.name, line: r.line,
                    "the row has \(r.count) fields; the header names \(header.count)"
                        + (cut ? " (the file's last line, with no line end after it: the file looks cut short; export it again)" : ""))
            }
            rows.append(Row(record: r, columns: columns))
        }
        return CSVTable(header: header.fields, rows: rows, columns: columns)
    }

    /// The cell of `record` (a row of `width` columns) that a quote left open ran into the next
    /// line: libcsv read on to that line's own quote, the record kept the header's width, and a
    /// row went missing without a word (tester Z). Such a cell holds the rest of its own row
    /// before its first line break (a comma for each column after it) and cells of the next row
    /// after it (a comma at least, as many as the open cell's column at least: the next row's
    /// quote is in that column or after). A cell with a line break and a little text around it
    /// (an address, a note, a renamed team) is no row.
    static func swallowedRow(_ record: CSVRecord, width: Int) -> Int? {
        (0..<record.count).first { i in
            record.withFieldBytes(i) { b in
                guard let nl = b.firstIndex(of: 0x0A) else { return false }
                let comma = UInt8(ascii: ",")
                let before = b[..<nl].lazy.filter { $0 == comma }.count, after = b[(nl + 1)...].lazy.filter { $0 == comma }.count
                return before >= width - i - 1 && after >= max(1, i)
            }
        }
    }
}

extension CSVTable.Row {
    /// An exact decimal cell; a non-number is an error naming the line and column.
    public func decimal(_ names: [String], file: String) throws -> Decimal? {
        guard let t = cell(names) else { return nil }
        // Exports written through a spreadsheet or a float printer state small amounts with an
        // exponent (CUR's `3.6E-7`): still an exact decimal, read as one.
        guard let d = ExactDecimal.parseNumber(t) else {
            throw InvoiceError(file: file, line: line, field: names[0], ExactDecimal.refusal(t))
        }
        return d
    }

    /// A whole token count from a decimal cell times a block size ("59200.0" × 1 is fine; 1.5 is not).
    public func tokens(_ names: [String], times block: Decimal = 1, file: String) throws -> Int64? {
        guard let d = try decimal(names, file: file) else { return nil }
        // A spreadsheet shortens long counts (`1.23457E+11`): digits it left unwritten are no count.
        if let t = cell(names), let place = ExactDecimal.placeOfLastDigit(t), place < 0 {
            throw InvoiceError(file: file, line: line, field: names[0], "'\(t)' leaves digits of the token count unwritten (an exponent past its last digit)")
        }
        let v = d * block
        guard let whole = ExactDecimal.roundedInt64(v), Decimal(exactly: whole) == v else {
            throw InvoiceError(file: file, line: line, field: names[0], "a token count must be whole, got \(d) × \(block)")
        }
        return whole
    }

    /// A timestamp from RFC 3339, a bare date, Unix seconds, or MM/DD/YYYY.
    public func timestamp(_ names: [String], file: String) throws -> Timestamp {
        guard let t = cell(names) else { throw InvoiceError(file: file, line: line, field: names[0], "a date is required") }
        if let ts = Timestamp(rfc3339: t) ?? Timestamp(rfc3339: t + "T00:00:00Z") ?? Timestamp(rfc3339: t.replacingSpace()) { return ts }
        if let secs = Int64(t), let ts = Timestamp(unixSeconds: secs) {
            // No bill is of usage before 2001 (10-digit Unix seconds): `20260504` is a date
            // written without separators, read as 1970-08-23 (tester P). Refused, naming both.
            guard secs >= 1_000_000_000 else {
                throw InvoiceError(
                    file: file, line: line, field: names[0],
                    "'\(t.prefix(48))' reads as Unix seconds \(ts.rfc3339), before any bill"
                        + (t.count == 8 ? "; a date written YYYYMMDD is not read: export ISO (YYYY-MM-DD) or month-first dates" : ""))
            }
            return ts
        }
        let parts = t.split(separator: " ")[0].split(separator: "/")
        if parts.count == 3, let m = Int(parts[0]), let d = Int(parts[1]), let y = Int(parts[2]),
            let ts = Timestamp(rfc3339: String(format: "%04d-%02d-%02dT00:00:00Z", y, m, d))
        {
            return ts
        }
        let dayFirst = parts.count == 3 && (Int(parts[0]).map { $0 > 12 && $0 <= 31 } ?? false) && (Int(parts[1]).map { $0 <= 12 } ?? false)
        throw InvoiceError(
            file: file, line: line, field: names[0],
            "'\(t.prefix(48))' is not a date (YYYY-MM-DD, RFC 3339, Unix seconds or MM/DD/YYYY)"
                + (dayFirst ? "; it reads as day-first, which is not read: export month-first or ISO dates" : ""))
    }
}

extension Timestamp {
    /// RFC 3339, or the text BigQuery writes (`2026-05-04 10:00:00 UTC`): a JSON export of a
    /// BigQuery table was refused where the same rows flattened to CSV were read (tester P).
    public init?(exportText t: String) {
        guard let ts = Timestamp(rfc3339: t) ?? Timestamp(rfc3339: t.replacingSpace()) else { return nil }
        self = ts
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }

    /// "2026-08-04 00:00:00 UTC" → "2026-08-04T00:00:00Z".
    func replacingSpace() -> String {
        var s = self
        if s.hasSuffix(" UTC") { s = String(s.dropLast(4)) + "Z" }
        if s.count > 10, s[s.index(s.startIndex, offsetBy: 10)] == " " {
            s.replaceSubrange(s.index(s.startIndex, offsetBy: 10)...s.index(s.startIndex, offsetBy: 10), with: "T")
        }
        if !s.hasSuffix("Z"), !s.contains("+"), s.count == 19 { s += "Z" }
        return s
    }
}

extension CSVTable.Row {
    /// A timestamp cell that may be missing.
    public func optionalTimestamp(_ names: [String], file: String) throws -> Timestamp? {
        guard cell(names) != nil else { return nil }
        return try timestamp(names, file: file)
    }

    /// An inclusive end date (`BillingPeriodEndDate` = 05/31/2026) as the exclusive boundary after it;
    /// a timestamp end stays as written.
    public func inclusiveEndDate(_ names: [String], file: String) throws -> Timestamp? {
        guard let text = cell(names) else { return nil }
        let t = try timestamp(names, file: file)
        let isDateOnly = text.count <= 10 || t.microseconds % 86_400_000_000 == 0 && !text.contains(":")
        return isDateOnly ? Timestamp.startOfDay(after: t) : t
    }
}
