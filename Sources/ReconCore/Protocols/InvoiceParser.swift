public import ExactJSON
import FormatReaders
public import Metering

/// Reads one vendor export format into `InvoiceLine`s and says how much of the export it saw.
///
/// Use an existing parser through its plugin. Implement a custom one for a new format: say
/// which files you can read (`sniff`, cheap: look at the head only) and turn a file into lines,
/// throwing `InvoiceError` naming the line and field for malformed input. Lines that are not
/// usage, or whose model or token type you do not know, are still returned with their amounts.
/// Report what the file declares about its own extent in `ParsedInvoice.coverage`: the engine
/// proposes no correction from an export that is a page of something bigger.
///
/// ```swift
/// struct AcmeCSVParser: InvoiceParser {
///     let id = "acme-csv"
///     let format = InvoiceFormat.csv
///     func sniff(_ file: InvoiceFile) -> Bool { file.headerLine?.contains("acme_cost") == true }
///     func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
///         let lines: [InvoiceLine] = …
///         return ParsedInvoice(lines: lines, coverage: InvoiceCoverage(declared: [billingPeriod]))
///     }
/// }
/// ```
public protocol InvoiceParser: Sendable {
    /// Unique within the plugin, e.g. `admin-cost-report`.
    var id: String { get }
    var format: InvoiceFormat { get }
    /// Whether this parser can read the file (looks at the head only).
    func sniff(_ file: InvoiceFile) -> Bool
    func parse(_ file: InvoiceFile) throws -> ParsedInvoice
}

/// What a parser read from one file: its lines, and what the file says about its own extent.
public struct ParsedInvoice: Sendable {
    public var lines: [InvoiceLine]
    public var coverage: InvoiceCoverage
    /// Set when the export's amounts may be after discounts and it states no list price (a format
    /// whose list-price column is missing): why. A vendor total below the meter may then be the
    /// discount, not over-metering, so the engine holds corrections that lower the meter.
    public var amountsMayBeNet: String?
    /// Set when money-only lines may include charges that are no usage (a surcharge inside a
    /// line's amount): why. A vendor total above the meter may then be the charge, not
    /// under-metering, so the engine holds corrections that raise the meter.
    public var amountsMayIncludeCharges: String?

    public init(
        lines: [InvoiceLine], coverage: InvoiceCoverage = InvoiceCoverage(), amountsMayBeNet: String? = nil, amountsMayIncludeCharges: String? = nil
    ) {
        self.lines = lines
        self.coverage = coverage
        self.amountsMayBeNet = amountsMayBeNet
        self.amountsMayIncludeCharges = amountsMayIncludeCharges
    }
}

/// What an export declares about the time it covers and whether it is whole.
///
/// The engine measures the reconciliation period against `declared` (else against the span of the
/// lines' buckets), and holds every correction when a page is missing or the file is incomplete.
public struct InvoiceCoverage: Sendable, Hashable {
    /// Ranges the export says it covers: every bucket it lists (empty buckets included), billing
    /// or invoice period columns. Empty when the format declares nothing; the engine then uses the
    /// span of the lines' buckets.
    public var declared: [TimeRange]
    /// The pages of a paginated API response, in file order (`has_more`, `next_page`).
    public var pages: [Page]
    /// Why the file is not the whole export (a document total its lines do not sum to, a cut-off
    /// file), each naming where.
    public var incomplete: [String]

    public struct Page: Sendable, Hashable {
        /// `file#[index]`, for the report.
        public var location: String
        public var hasMore: Bool
        public var nextPage: String?
        public init(location: String, hasMore: Bool, nextPage: String?) {
            self.location = location
            self.hasMore = hasMore
            self.nextPage = nextPage
        }
    }

    public init(declared: [TimeRange] = [], pages: [Page] = [], incomplete: [String] = []) {
        self.declared = declared
        self.pages = pages
        self.incomplete = incomplete
    }
}

extension InvoiceFile {
    /// The first line of the text, BOM removed, for sniffing CSV headers.
    public var headerLine: String? {
        let text = String(decoding: content.prefix(4096), as: UTF8.self)
        return text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }).first.map(String.init)
    }

    /// The first non-blank character, for sniffing JSON and XML.
    public var firstCharacter: Character? {
        String(decoding: content.prefix(4096), as: UTF8.self).first { !$0.isWhitespace }
    }

    /// The file's bytes without a UTF-8 byte-order mark: the one place a BOM is dropped.
    public var content: ArraySlice<UInt8> {
        ByteOrderMark.dropped(from: bytes)
    }

    /// The file as one JSON document; malformed JSON is an error naming the file and line.
    public func json() throws -> JSONValue {
        do {
            return try JSONParser.parse(bytes: content)
        } catch let e as JSONParseError {
            throw InvoiceError(file: name, line: e.line, "malformed JSON at column \(e.column): \(e.message)")
        }
    }

    /// A paged API export — one page `{"data": [ … ], "has_more": …, "next_page": …}` or an array
    /// of such pages — element by element: `body` gets each element of every page's `data` array
    /// with its place (`data[3]`, or `[1].data[3]` when the file holds several pages). Returns each
    /// page's location (the file, or `file#[1]`) and members, its `data` left empty. One page is
    /// streamed, so memory holds one element's tree rather than the document's; an array of pages
    /// is read page by page.
    ///
    /// Errors come in the order a whole-document read gives them: malformed JSON anywhere in the
    /// file first (a truncated download says so, even when an element before the cut is also
    /// wrong), then, page by page, a page without a `data` array (`dataRequired` is the message;
    /// nil lets such a page through), then what `body` throws.
    /// Paging markers the engine can trust: `has_more` a boolean, `next_page` a string or null.
    /// Read loosely, `"has_more": "true"` was taken for a last page and one page of an export for
    /// all of it.
    func checkPaging(_ page: JSONValue, prefix: String) throws {
        let hasMore = page["has_more"], next = page["next_page"]
        switch hasMore {
        case nil, .null?, .bool?: break
        case let value?: throw InvoiceError(file: name, field: "\(prefix)has_more", "must be true or false, got \(JSONWriter.write(value))")
        }
        // has_more decides: the vendors' last pages may still carry a next_page cursor.
        switch next {
        case nil, .null?, .string?: break
        case let value?: throw InvoiceError(file: name, field: "\(prefix)next_page", "must be a string or null, got \(JSONWriter.write(value))")
        }
    }

    public func forEachPagedElement(
        dataRequired: String? = nil, _ body: (_ place: String, _ element: JSONValue) throws -> Void
    ) throws -> [(location: String, page: JSONValue)] {
        func checkData(_ page: JSONValue, prefix: String) throws {
            try checkPaging(page, prefix: prefix)
            guard let dataRequired, page["data"]?.arrayValue == nil else { return }
            throw InvoiceError(file: name, field: "\(prefix)data", dataRequired)
        }
        if firstCharacter == "{" {
            var index = 0
            // The first error `body` throws waits until the whole document parsed.
            var failure: (any Error)?
            let rest: JSONValue
            do {
                // Fed in 1 MiB pieces: the window holds about one piece, not a second copy of the file.
                rest = try JSONStream.forEachElement(bytes: content, of: "data", chunkSize: 1 << 20) { element in
                    defer { index += 1 }
                    guard failure == nil else { return }
                    do { try body("data[\(index)]", element) } catch { failure = error }
                }
            } catch let e as JSONParseError {
                throw InvoiceError(file: name, line: e.line, "malformed JSON at column \(e.column): \(e.message)")
            }
            try checkData(rest, prefix: "")
            if let failure { throw failure }
            return [(name, rest)]
        }
        let root = try json()
        let pages = root.arrayValue ?? [root]
        var out: [(location: String, page: JSONValue)] = []
        for (p, page) in pages.enumerated() {
            let prefix = pages.count > 1 ? "[\(p)]." : ""
            try checkData(page, prefix: prefix)
            if case let .array(items)? = page["data"] {
                for (i, item) in items.enumerated() { try body("\(prefix)data[\(i)]", item) }
            }
            let members = page.objectValue.map { m in JSONValue.object(m.map { $0.0 == "data" && $0.1.arrayValue != nil ? ($0.0, .array([])) : $0 }) }
            out.append((pages.count > 1 ? "\(name)#[\(p)]" : name, members ?? page))
        }
        return out
    }

    /// The file as newline-delimited JSON: each non-blank line with its line number.
    public func jsonLines(_ body: (_ line: Int, _ value: JSONValue) throws -> Void) throws {
        for (i, raw) in content.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let trimmed = raw.filter { $0 != 0x0D }
            if trimmed.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let value: JSONValue
            do {
                value = try JSONParser.parse(bytes: trimmed)
            } catch let e as JSONParseError {
                throw InvoiceError(file: name, line: i + 1, "malformed JSON at column \(e.column): \(e.message)")
            }
            try body(i + 1, value)
        }
    }
}

extension InvoiceCoverage {
    /// Records each page's `has_more` / `next_page`, as `InvoiceFile.forEachPagedElement` returns
    /// the pages.
    public mutating func addPages(_ pages: [(location: String, page: JSONValue)]) {
        for page in pages {
            if let marker = Self.page(page.page, location: page.location) { self.pages.append(marker) }
        }
    }

    /// The `has_more` / `next_page` of an API response page (Anthropic and OpenAI write both), or
    /// nil when the page says nothing about pagination.
    public static func page(_ json: JSONValue, location: String) -> Page? {
        guard case let .bool(hasMore)? = json["has_more"] else { return nil }
        return Page(location: location, hasMore: hasMore, nextPage: json["next_page"]?.stringValue)
    }

    /// An end written inclusively (`…T23:59:59Z`, a second before an hour) as the boundary after it.
    public static func exclusiveEnd(_ end: Timestamp) -> Timestamp {
        (end.microseconds + 1_000_000) % Timestamp.microsPerHour == 0 ? Timestamp(microseconds: end.microseconds + 1_000_000) : end
    }

    /// A declared range from two bounds, when both are there. An end at or before its start is an
    /// error in the file (`field` names the end): read as no coverage it would only show up as a
    /// gap far from its cause. Inclusive end dates are passed as the start of the day after.
    public mutating func declare(from: Timestamp?, to: Timestamp?, file: String, line: Int? = nil, field: String) throws {
        guard let from, let to else { return }
        guard to > from else {
            throw InvoiceError(file: file, line: line, field: field, "the period ends (\(to.rfc3339)) at or before its start (\(from.rfc3339))")
        }
        guard let range = try? TimeRange(from: from, to: Self.exclusiveEnd(to)) else { return }
        declared.append(range)
    }
}
