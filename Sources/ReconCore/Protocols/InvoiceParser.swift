/// Reads one vendor export format into `InvoiceLine`s.
///
/// Use an existing parser through its plugin. Implement a custom one for a new format: say
/// which files you can read (`sniff`, cheap: look at the head only) and turn a file into lines,
/// throwing `InvoiceError` naming the line and field for malformed input. Lines that are not
/// usage, or whose model or token type you do not know, are still returned with their amounts.
///
/// ```swift
/// struct AcmeCSVParser: InvoiceParser {
///     let id = "acme-csv"
///     let format = InvoiceFormat.csv
///     func sniff(_ file: InvoiceFile) -> Bool { file.headerLine?.contains("acme_cost") == true }
///     func parse(_ file: InvoiceFile) throws -> [InvoiceLine] { … }
/// }
/// ```
public protocol InvoiceParser: Sendable {
    /// Unique within the plugin, e.g. `admin-cost-report`.
    var id: String { get }
    var format: InvoiceFormat { get }
    /// Whether this parser can read the file (looks at the head only).
    func sniff(_ file: InvoiceFile) -> Bool
    func parse(_ file: InvoiceFile) throws -> [InvoiceLine]
}

extension InvoiceFile {
    /// The first line of the text, BOM removed, for sniffing CSV headers.
    public var headerLine: String? {
        var head = Array(head)
        if head.starts(with: [0xEF, 0xBB, 0xBF]) { head.removeFirst(3) }
        let text = String(decoding: head, as: UTF8.self)
        return text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }).first.map(String.init)
    }

    /// The first non-blank character, for sniffing JSON and XML.
    public var firstCharacter: Character? {
        var head = Array(head)
        if head.starts(with: [0xEF, 0xBB, 0xBF]) { head.removeFirst(3) }
        return String(decoding: head, as: UTF8.self).first { !$0.isWhitespace }
    }
}
