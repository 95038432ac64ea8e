public import Foundation
public import Metering

/// Canonical token types (docs/events.md); vendors' own names map onto these.
public struct TokenType: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ raw: String) { self.rawValue = raw }
    public var description: String { rawValue }
    public static func < (a: TokenType, b: TokenType) -> Bool { a.rawValue < b.rawValue }

    public static let input = TokenType("input")
    public static let output = TokenType("output")
    public static let cacheRead = TokenType("cache_read")
    public static let cacheWrite5m = TokenType("cache_write_5m")
    public static let cacheWrite1h = TokenType("cache_write_1h")
    public static let cacheWrite = TokenType("cache_write")
    public static let reasoning = TokenType("reasoning")
    /// The token types events and findings name for every vendor (docs/events.md).
    public static let canonical: [TokenType] = [.input, .output, .cacheRead, .cacheWrite5m, .cacheWrite1h, .cacheWrite, .reasoning]
}

/// Invoice formats a parser can read.
public enum InvoiceFormat: String, Sendable, Hashable { case csv, json, xml }

/// One line of a vendor invoice or export, as a plugin read it.
///
/// A line that is not model usage keeps its amount and says why in `nonUsageReason`; it is never
/// dropped. The engine decides mapping, conversion and scope from here on.
public struct InvoiceLine: Sendable, Hashable {
    /// Where the line came from, for reports and errors: `file:line` or `file#index`.
    public var location: String
    /// The vendor's own model string (`claude-sonnet-4-5-20250929`, `Claude Sonnet 4.5`).
    public var vendorModel: String?
    /// The vendor's own token type name (`uncached_input_tokens`).
    public var vendorTokenType: String?
    /// The canonical token type, when the plugin's map knows the vendor's name.
    public var tokenType: TokenType?
    /// The amount billed, exact, in `currency` (dollars, not cents).
    public var amount: Decimal?
    /// Digits after the decimal point as written (converted to dollars), for the rounding tolerance.
    public var amountScale: Int
    public var currency: String
    /// A pre-discount list amount, when the export has it.
    public var listAmount: Decimal?
    /// Digits after the point of the list amount as written, where its rounding is coarser than
    /// the amount's (a list to the cent beside money to the millionth): volume read from the list
    /// carries the list's rounding. Nil: the amount's.
    public var listAmountScale: Int?
    /// A token count the vendor states (usage reports, some CSVs).
    public var quantity: Int64?
    /// Start of the bucket the line bills (a day, an hour).
    public var date: Timestamp
    /// End of that bucket (exclusive) when the export says; nil means the end of `date`'s UTC day.
    public var end: Timestamp?
    /// Tier and modifier labels as the vendor writes them (`context_window`, `service_tier`, `inference_geo`).
    public var labels: [String: String]
    /// Keys that attribute the line to a customer account (`workspace_id`, `api_key_id`, `project_id`).
    public var attribution: [String: String]
    /// Set when the line is not token usage (tax, credit, web search, support): the reason.
    public var nonUsageReason: String?
    /// The unit a usage line's quantity counts when it is not tokens (a FOCUS row of tokens with
    /// `ConsumedUnit: Requests`): the count is not read, so only its money can say its tokens.
    /// A line the card cannot price then says this unit, not that its model is unknown (tester Q).
    public var unreadUnit: String?
    public var description: String?
    /// The export names the model by its own id (FOCUS `ModelId`): use it as-is when the rate card
    /// does not know it. Display names and item names (UBL) must go through the card's aliases.
    public var modelIsCanonical = false
    /// The row corrects earlier billing (FOCUS `ChargeClass = Correction`, a CUR refund); `date`
    /// is the charge period it corrects. A quantity it carries nets into that period's usage.
    public var isCorrection = false
    /// The row gives usage back (a CUR `Refund` with tokens, a UBL credit note's credited quantity).
    /// It nets, but it says neither which usage it returns (a CUR refund is dated over its billing
    /// period) nor whether those tokens were served (a price fix may restate the whole quantity),
    /// so corrections of its model are held.
    public var isRefund = false
    /// Units of `currency` per unit of the card's currency, when the export states the rate it used
    /// (Vertex `currency_conversion_rate`, Azure `ExchangeRatePricingToBilling`).
    public var exchangeRate: Decimal?
    /// A hash of the whole export row (every cell, or the JSON element) the line came from, when
    /// the parser keeps one (`CSVTable.Row.fingerprint`): two lines of identical rows are one charge
    /// listed twice. Nil where the parser does not say: a parser that drops a column telling rows
    /// apart (a user, a region) would make two charges look alike, so those are not judged.
    public var sourceRow: Int?
    /// Set with `sourceRow` where the export may list two charges in identical rows (a CUR without
    /// line-item ids, a Vertex export without `export_time`, an Azure export without its resource):
    /// identical rows then hold the run (`identical_rows`) instead of refusing the file.
    public var sourceRowMayRepeat = false
    /// The export's own id of the charge, where it keeps one (a CUR's `identity_line_item_id`),
    /// and a hash of what the charge is (`chargeRow`: its span, usage type, account, operation,
    /// resource). An id is unique within one delivery only (AWS: not consistent between reports):
    /// two files' rows with different ids are two charges (part files of one delivery were refused
    /// as overlapping) unless they are the same charge (an early and a final delivery of one
    /// month, which billed May 1–15 twice).
    public var lineItemID: String?
    public var chargeRow: Int?
    /// Which kind of id `lineItemID` is (its column): two files of two kinds are two deliveries.
    public var lineItemScheme: String?

    /// `lines` (each from its own export row, `sourceRow` set) with those of one charge but
    /// different rows (`charges[i]`: which charge line i bills, as its plugin reads it) marked as
    /// that charge listed twice: a second pull pasted into the file restates an amount or writes
    /// a cell otherwise, and is then no second charge (`identical_rows` holds its cell).
    public static func markingRepeatedCharges(_ lines: [InvoiceLine], charges: [Int]) -> [InvoiceLine] {
        var rows: [Int: Set<Int>] = [:]
        for (line, charge) in zip(lines, charges) { rows[charge, default: []].insert(line.sourceRow ?? 0) }
        return zip(lines, charges).map { line, charge in (rows[charge]?.count ?? 0) > 1 ? line.withSourceRow(charge, mayRepeat: true) : line }
    }

    /// This line, marked as coming from the export row `fingerprint` names (`sourceRow`).
    public func withSourceRow(_ fingerprint: Int?, mayRepeat: Bool = false) -> InvoiceLine {
        var line = self
        line.sourceRow = fingerprint
        line.sourceRowMayRepeat = mayRepeat
        return line
    }

    public init(
        location: String, vendorModel: String?, vendorTokenType: String?, tokenType: TokenType?, amount: Decimal?,
        amountScale: Int, currency: String, listAmount: Decimal? = nil, quantity: Int64? = nil, date: Timestamp,
        end: Timestamp? = nil, labels: [String: String] = [:], attribution: [String: String] = [:], nonUsageReason: String? = nil,
        description: String? = nil
    ) {
        self.location = location
        self.vendorModel = vendorModel
        self.vendorTokenType = vendorTokenType
        self.tokenType = tokenType
        self.amount = amount
        self.amountScale = amountScale
        self.currency = currency
        self.listAmount = listAmount
        self.quantity = quantity
        self.date = date
        self.end = end
        self.labels = labels
        self.attribution = attribution
        self.nonUsageReason = nonUsageReason
        self.description = description
    }
}

extension InvoiceLine {
    /// The bucket the line bills, `[date, end)`; a line with no end bills its UTC day. An end written
    /// inclusively (`23:59:59`) is taken as the boundary after it.
    public var bucket: (from: Timestamp, to: Timestamp) {
        guard let end else { return (date, Timestamp.startOfDay(after: date)) }
        return (date, max(InvoiceCoverage.exclusiveEnd(end), Timestamp(microseconds: date.microseconds + 1)))
    }

    /// Usage that states money and neither a token count nor a list amount: its volume can only
    /// be read from money at the card's price, and that money may be after a negotiated discount.
    public var isMoneyOnlyUsage: Bool {
        nonUsageReason == nil && quantity == nil && listAmount == nil && (amount ?? 0) != 0
    }
}

/// An invoice file handed to a parser.
public struct InvoiceFile: Sendable {
    public var name: String
    public var bytes: [UInt8]
    public init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    /// The first bytes, for sniffing.
    public var head: ArraySlice<UInt8> { bytes.prefix(4096) }
    public var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// A parse failure that names the file, line and field.
public struct InvoiceError: Error, Sendable, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int?
    public var field: String?
    public var message: String
    public init(file: String, line: Int? = nil, field: String? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }
    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        s += ": "
        if let field { s += "field '\(field)': " }
        return s + message
    }

    public var usageBoxError: UsageBoxError { UsageBoxError.invalidArgument(description, field: field ?? "invoice") }
}
