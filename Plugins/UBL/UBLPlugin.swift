import FormatReaders
import Foundation
import Metering
import ReconCore

/// UBL 2.1 / Peppol BIS Billing 3.0 invoices and credit notes from any supplier. Elements are
/// matched by namespace URI, never prefix. Each `InvoiceLine` / `CreditNoteLine` keeps its exact
/// `LineExtensionAmount` (credit notes negate); document-level allowances, charges and tax are kept
/// as non-usage lines. Item names map to models and token types through the rate card's aliases
/// (`--rate-card`), or through an `AdditionalItemProperty` named `token_type`; a quantity in
/// `MIO`/`MIL`/`C62`… of a model line is the vendor's stated token count.
public enum UBLPlugin: VendorPlugin {
    public static let id = "ubl"
    public static let name = "UBL 2.1 / Peppol e-invoice"
    public static let rateCardName = "ubl"
    public static let parsers: [any InvoiceParser] = [UBLParser()]
    public static let tokenTypeMap: [String: TokenType] = [
        "input": .input, "uncached_input_tokens": .input, "input_tokens": .input, "output": .output, "output_tokens": .output,
        "cache_read": .cacheRead, "cache_read_input_tokens": .cacheRead, "cached input": .cacheRead,
        "cache_write_5m": .cacheWrite5m, "cache_write_1h": .cacheWrite1h, "cache_write": .cacheWrite,
    ]

    /// The supplier's name, so a matching card (an "Anthropic, PBC" invoice → `anthropic`) is used
    /// when no `--rate-card` is given.
    public static func cardHints(for lines: [InvoiceLine]) -> [String] {
        Array(Set(lines.compactMap { $0.labels["supplier"] }))
    }

    public static let examples: [PluginExample] = [
        PluginExample(
            name: "ubl: an AI usage invoice with line periods, million-token quantities, an allowance and tax",
            file: InvoiceFile(name: "ubl_ai_invoice.xml", bytes: PackageResources.ubl_ai_invoice_xml), parserID: "ubl-xml",
            expectedLineCount: 4,
            expectedAmounts: ["(unmapped)": "52.04", "(not usage)": "-5.00"],
            expectedQuantities: ["(unmapped)": 13_345_670]),
        PluginExample(
            name: "ubl: a truncated document is refused with its line",
            file: InvoiceFile(name: "ubl_truncated.xml", bytes: PackageResources.ubl_truncated_xml), parserID: "ubl-xml",
            expectedError: "ubl_truncated.xml:4:"),
    ]
}

struct UBLParser: InvoiceParser {
    let id = "ubl-xml"
    let format = InvoiceFormat.xml

    static let cbc = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
    static let cac = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
    static let invoiceNS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
    static let creditNS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
    /// UN/ECE Recommendation 20 units that count tokens in blocks.
    static let tokenUnits: [String: Decimal] = ["C62": 1, "MIL": 1000, "MIO": 1_000_000, "TH": 1000]

    func sniff(_ file: InvoiceFile) -> Bool {
        guard file.firstCharacter == "<" else { return false }
        let head = String(decoding: file.head, as: UTF8.self)
        return head.contains(Self.invoiceNS) || head.contains(Self.creditNS)
    }

    /// UN/ECE Rec 20 units of time: a line counted in them is a fee by the period, not tokens.
    static let periodUnits: Set<String> = ["MON", "ANN", "DAY", "WEE", "HUR", "MIN", "QAN", "SAN"]

    /// What is being collected while the stream walks one line or allowance.
    struct Pending {
        var kind: String
        var line: Int
        var id: String?
        var amountText: String?
        var currency: String?
        var quantityText: String?
        /// InvoicedQuantity or CreditedQuantity, as the line wrote it.
        var quantityField = "InvoicedQuantity"
        var unitCode: String?
        var itemName: String?
        var sellersID: String?
        var tokenTypeProperty: String?
        var propertyName: String?
        var start: String?
        var end: String?
        var chargeIndicator: String?
        var reason: String?
        /// A line's own allowance (on the line or its price): its LineExtensionAmount is net of it.
        var lineAllowance: String?
        /// A line's own charge (a surcharge): its LineExtensionAmount includes money that is no token's.
        var lineCharge: String?
        /// The last line-level ChargeIndicator read, so a reason after it names the right one.
        var lineIndicator: String?
    }

    /// Items whose every line declares a period of its own that leaves part of the document's
    /// period out (acme-large's lines May 1–20 in a May invoice): the document's period says the
    /// invoice covers May, not that the item is billed for all of it. Compared whole, the meter's
    /// May 21–31 read as over-metering; the file is named as not the whole bill instead. An item
    /// billed in lines of a day each, in a document whose line total its lines sum to (no line of
    /// it lost), bills what it bills day by day, as a daily export does: a weekday item, a model
    /// that starts mid-month or a cache write used on a few days leaves days out without the file
    /// being partial (tester H: a clean per-day invoice was inconclusive). Without that total its
    /// days left out are named as before (review 7: May 11–14 missing inside an item's days).
    static func itemsBilledForLess(_ raw: [Pending], from: Timestamp?, to: Timestamp?, file: String, dayLinesVouched: Bool = false) -> [String] {
        guard let from, let to else { return [] }
        var spans: [String: [(from: Timestamp, to: Timestamp)]] = [:]
        var whole = Set<String>()
        for p in raw where p.kind == "line" {
            let item = p.itemName ?? p.sellersID ?? ""
            // Either bound alone is the line's too (Peppol BR-CO-20): an EndDate of May 20 bills
            // up to May 20, and was read as the whole month.
            if p.start != nil || p.end != nil {
                let start = p.start.flatMap { Timestamp(date: $0) } ?? from
                let end = p.end.flatMap { Timestamp(date: $0) }.map { Timestamp.startOfDay(after: $0) } ?? to
                spans[item, default: []].append((start, end))
            } else {
                whole.insert(item)
            }
        }
        return spans.sorted { $0.key < $1.key }.compactMap { item, list in
            guard !whole.contains(item), !dayLinesVouched || list.contains(where: { $0.to.microseconds - $0.from.microseconds > 86_400_000_000 })
            else { return nil }
            // The days of the period no line of the item bills, named as such (the first uncovered
            // day less one read "only up to 2026-04-30" for an item billed from May 12).
            let left = TimeSpans.uncovered(by: list, within: (from, to))
            guard !left.isEmpty else { return nil }
            let named = left.map { l in
                let last = Timestamp(microseconds: l.to.microseconds - 1).dayString
                return l.from.dayString == last ? last : "\(l.from.dayString) to \(last)"
            }
            return "\(file): the lines of '\(item)' bill the invoice period (\(from.dayString) to \(Timestamp(microseconds: to.microseconds - 1).dayString)) "
                + "but not \(named.joined(separator: ", ")): that part of it is not billed in this file"
        }
    }

    /// An `xsd:date` as UBL writes it: `2026-05-10`, or with a zone (`2026-05-10Z`,
    /// `2026-05-10+02:00`), the day as written. A line's `EndDate` with a zone was dropped
    /// unread, its missing days went unnoticed, and they read as over-metering.
    static func code(_ currency: String) -> String { currency.trimmingCharacters(in: .whitespaces).uppercased() }

    static func day(_ value: String, field: String, file: String, line: Int) throws -> String {
        let day = String(value.prefix(10))
        let zone = value.dropFirst(10)
        let zoneOK =
            zone.isEmpty || zone == "Z"
            || (zone.count == 6 && "+-".contains(zone.first!)
                && zone.dropFirst().enumerated().allSatisfy { $0.offset == 2 ? $0.element == ":" : $0.element.isASCII && $0.element.isNumber })
        guard zoneOK, Timestamp(date: day) != nil else {
            throw InvoiceError(file: file, line: line, field: field, "'\(value)' is not a date (YYYY-MM-DD, optionally with a zone)")
        }
        return day
    }

    /// The invoice period (document or line) is what the invoice declares it bills; the document's
    /// `LegalMonetaryTotal/LineExtensionAmount` must equal the sum of its lines, else the file is
    /// not the whole invoice.
    func parse(_ file: InvoiceFile) throws -> ParsedInvoice {
        var path: [(ns: String, name: String)] = []
        var text = ""
        var sign = Decimal(1)
        var documentCurrency: String?
        var issueDate: String?
        var periodStart: String?
        var periodEnd: String?
        var documentLineTotal: String?
        var supplier: String?
        var pending: Pending?
        var raw: [Pending] = []
        var elementLine = 1
        do {
            try XMLStreamReader.read(bytes: file.bytes) { event in
                switch event {
                case let .start(ns, name, attributes, line):
                    elementLine = line
                    if path.isEmpty, ns == Self.creditNS { sign = -1 }
                    path.append((ns, name))
                    text = ""
                    let depth = path.count
                    if ns == Self.cac, depth == 2, ["InvoiceLine", "CreditNoteLine"].contains(name) {
                        pending = Pending(kind: "line", line: line)
                    } else if ns == Self.cac, depth == 2, name == "AllowanceCharge" {
                        pending = Pending(kind: "allowance_charge", line: line)
                    } else if ns == Self.cac, depth == 2, name == "TaxTotal" {
                        pending = Pending(kind: "tax", line: line)
                    }
                    if ns == Self.cbc, ["LineExtensionAmount", "Amount", "TaxAmount"].contains(name) {
                        if pending != nil, pending!.currency == nil {
                            pending!.currency = attributes.first { $0.localName == "currencyID" }?.value
                        }
                    }
                    if ns == Self.cbc, ["InvoicedQuantity", "CreditedQuantity"].contains(name) {
                        pending?.unitCode = attributes.first { $0.localName == "unitCode" }?.value
                    }
                case let .text(t):
                    text += t
                case let .end(ns, name):
                    let depth = path.count
                    let parent = depth >= 2 ? path[depth - 2].name : ""
                    let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
                    if ns == Self.cbc {
                        switch (name, depth) {
                        case ("DocumentCurrencyCode", 2): documentCurrency = value
                        case ("IssueDate", 2): issueDate = try Self.day(value, field: "IssueDate", file: file.name, line: elementLine)
                        case ("StartDate", 3) where parent == "InvoicePeriod":
                            periodStart = try Self.day(value, field: "InvoicePeriod.StartDate", file: file.name, line: elementLine)
                        case ("EndDate", 3) where parent == "InvoicePeriod":
                            periodEnd = try Self.day(value, field: "InvoicePeriod.EndDate", file: file.name, line: elementLine)
                        case ("LineExtensionAmount", 3) where parent == "LegalMonetaryTotal": documentLineTotal = value
                        case ("RegistrationName", _) where path.count >= 3 && path[1].name == "AccountingSupplierParty": supplier = supplier ?? value
                        case ("Name", _) where path.count >= 3 && path[1].name == "AccountingSupplierParty" && parent == "PartyName":
                            supplier = supplier ?? value
                        default: break
                        }
                        if var p = pending {
                            switch (p.kind, name, depth) {
                            case ("line", "ID", 3): p.id = value
                            case ("line", "LineExtensionAmount", 3): p.amountText = value
                            case ("line", "InvoicedQuantity", 3), ("line", "CreditedQuantity", 3):
                                p.quantityText = value
                                p.quantityField = name
                            case ("line", "Name", 4) where parent == "Item": p.itemName = value
                            case ("line", "ID", 5) where parent == "SellersItemIdentification": p.sellersID = value
                            case ("line", "Name", 5) where parent == "AdditionalItemProperty": p.propertyName = value
                            case ("line", "Value", 5) where parent == "AdditionalItemProperty":
                                if p.propertyName == "token_type" { p.tokenTypeProperty = value }
                            case ("line", "StartDate", 4) where parent == "InvoicePeriod":
                                p.start = try Self.day(value, field: "InvoiceLine.InvoicePeriod.StartDate", file: file.name, line: elementLine)
                            case ("line", "EndDate", 4) where parent == "InvoicePeriod":
                                p.end = try Self.day(value, field: "InvoiceLine.InvoicePeriod.EndDate", file: file.name, line: elementLine)
                            case ("line", "ChargeIndicator", 4), ("line", "ChargeIndicator", 5):
                                guard parent == "AllowanceCharge" else { break }
                                p.lineIndicator = value
                                if value == "false" { p.lineAllowance = p.lineAllowance ?? "an allowance" }
                                if value == "true" { p.lineCharge = p.lineCharge ?? "a charge" }
                            case ("line", "AllowanceChargeReason", 4), ("line", "AllowanceChargeReason", 5):
                                guard parent == "AllowanceCharge" else { break }
                                if p.lineIndicator == "false" { p.lineAllowance = "'\(value)'" }
                                if p.lineIndicator == "true" { p.lineCharge = "'\(value)'" }
                            case ("allowance_charge", "ChargeIndicator", 3): p.chargeIndicator = value
                            case ("allowance_charge", "Amount", 3): p.amountText = value
                            case ("allowance_charge", "AllowanceChargeReason", 3): p.reason = value
                            case ("tax", "TaxAmount", 3): p.amountText = value
                            default: break
                            }
                            pending = p
                        }
                    }
                    if ns == Self.cac, depth == 2, let p = pending,
                        ["InvoiceLine", "CreditNoteLine", "AllowanceCharge", "TaxTotal"].contains(name)
                    {
                        raw.append(p)
                        pending = nil
                    }
                    path.removeLast()
                    text = ""
                }
            }
        } catch let e as XMLStreamReader.Failure {
            throw InvoiceError(file: file.name, line: e.line, "malformed XML: \(e.message)")
        }
        guard !path.isEmpty || !raw.isEmpty || issueDate != nil else {
            throw InvoiceError(file: file.name, line: 1, "not a UBL Invoice or CreditNote")
        }
        var lines: [InvoiceLine] = []
        var coverage = InvoiceCoverage()
        func inclusiveEnd(_ text: String?) -> Timestamp? { text.flatMap { Timestamp(date: $0) }.map { Timestamp.startOfDay(after: $0) } }
        try coverage.declare(
            from: periodStart.flatMap { Timestamp(date: $0) }, to: inclusiveEnd(periodEnd), file: file.name, field: "InvoicePeriod.EndDate")
        var lineSum = Decimal(0)
        var taxSeen = false
        for p in raw {
            guard let amountText = p.amountText, let amount = ExactDecimal.parse(amountText) else {
                throw InvoiceError(
                    file: file.name, line: p.line, field: p.kind == "line" ? "LineExtensionAmount" : "Amount",
                    ExactDecimal.refusal(p.amountText ?? "", what: "a decimal amount"))
            }
            let dateText = p.start ?? periodStart ?? issueDate ?? ""
            guard let date = Timestamp(rfc3339: dateText + "T00:00:00Z") else {
                throw InvoiceError(file: file.name, line: p.line, field: "IssueDate", "no usable date (line period, invoice period or issue date)")
            }
            let currency = p.currency ?? documentCurrency ?? "USD"
            // Every amount but the tax total in the tax currency is in the document's currency
            // (PEPPOL-EN16931-R051): a line tagged otherwise added its number to the document's total
            // as if it were, and passed the total check; converted with --fx, it was corrected.
            // With no DocumentCurrencyCode (which Peppol requires), the first amount's currency stands for it.
            if p.kind != "tax", let doc = documentCurrency ?? raw.lazy.filter({ $0.kind != "tax" }).compactMap(\.currency).first, let own = p.currency,
                Self.code(own) != Self.code(doc)
            {
                throw InvoiceError(
                    file: file.name, line: p.line, field: p.kind == "line" ? "LineExtensionAmount" : "Amount",
                    "currencyID \(own) is not the document's currency (\(documentCurrency == nil ? "its first amount's" : "DocumentCurrencyCode") \(doc)): UBL writes every amount but the tax "
                        + "total in the document's currency, so which the number is in cannot be told")
            }
            switch p.kind {
            case "line":
                var quantity: Int64?
                // UBL's quantities are xsd:decimal (no exponent): one written otherwise was dropped
                // and its line read as money alone (tester Z).
                if let text = p.quantityText, ExactDecimal.parse(text) == nil {
                    throw InvoiceError(
                        file: file.name, line: p.line, field: p.quantityField,
                        ExactDecimal.refusal(text, what: "a decimal quantity read exactly (digits, a point between digits, no exponent)"))
                }
                if let q = p.quantityText.flatMap(ExactDecimal.parse), let block = p.unitCode.flatMap({ Self.tokenUnits[$0] }) {
                    let tokens = q * block * sign
                    quantity = ExactDecimal.wholeInt64(tokens)
                }
                let vendorModel = p.itemName ?? p.sellersID
                lineSum += amount
                // A bound the line leaves out is the document's (an EndDate alone spread the line
                // over the month; a StartDate alone made it one day).
                let lineEnd = (p.start ?? periodStart) != nil ? inclusiveEnd(p.end ?? periodEnd) : nil
                if let start = p.start {
                    try coverage.declare(from: Timestamp(date: start), to: lineEnd, file: file.name, line: p.line, field: "InvoiceLine.InvoicePeriod.EndDate")
                }
                var line = InvoiceLine(
                    location: "\(file.name):\(p.line)", vendorModel: vendorModel, vendorTokenType: p.tokenTypeProperty,
                    tokenType: p.tokenTypeProperty.flatMap { UBLPlugin.tokenTypeMap[$0] }, amount: amount * sign,
                    amountScale: ExactDecimal.scale(of: amountText), currency: currency, quantity: quantity, date: date, end: lineEnd,
                    labels: ["unit_code": p.unitCode, "supplier": supplier].compactMapValues { $0 },
                    description: "line \(p.id ?? "?"): \(vendorModel ?? "")")
                // A credited quantity (a credit note's, or a negative line inside an invoice: its
                // quantity or its money) may be a price fix restated over the whole quantity: its
                // tokens are set aside and hold their cell. Money credited alone is a credit, which
                // holds its model (the volume it takes back is unknown).
                line.isCorrection = quantity != nil && (sign < 0 || quantity! < 0 || amount < 0)
                line.isRefund = line.isCorrection
                lines.append(line)
            case "allowance_charge":
                let isCharge = p.chargeIndicator == "true"
                lines.append(
                    InvoiceLine(
                        location: "\(file.name):\(p.line)", vendorModel: nil, vendorTokenType: nil, tokenType: nil,
                        amount: (isCharge ? amount : -amount) * sign, amountScale: ExactDecimal.scale(of: amountText), currency: currency,
                        date: date, nonUsageReason: isCharge ? "charge" : "allowance", description: p.reason))
            default:
                // The first TaxTotal is the document's tax in its currency; a second states it in the tax currency.
                guard !taxSeen else { continue }
                taxSeen = true
                lines.append(
                    InvoiceLine(
                        location: "\(file.name):\(p.line)", vendorModel: nil, vendorTokenType: nil, tokenType: nil, amount: amount * sign,
                        amountScale: ExactDecimal.scale(of: amountText), currency: currency, date: date, nonUsageReason: "tax", description: "tax"))
            }
        }
        let totalMatches = documentLineTotal.flatMap(ExactDecimal.parse).map { $0 == lineSum } ?? false
        coverage.incomplete += Self.itemsBilledForLess(
            raw, from: periodStart.flatMap { Timestamp(date: $0) }, to: inclusiveEnd(periodEnd), file: file.name, dayLinesVouched: totalMatches)
        if let documentLineTotal, let total = ExactDecimal.parse(documentLineTotal), total != lineSum {
            coverage.incomplete.append(
                "\(file.name): the document's line total (LegalMonetaryTotal/LineExtensionAmount) is \(documentLineTotal) "
                    + "but its lines sum to \(ExactDecimal.text(lineSum))")
        }
        // A line's money is what the supplier charged after its own price and discounts: with no
        // token quantity beside it, a total below the meter is no evidence of over-metering.
        // A stated token count is what the card prices, whatever the discount. Fees (a platform fee by
        // the month, support, seats) are not token usage; any other line may be.
        // Each line as read, by the location its invoice line carries.
        let read = Dictionary(raw.filter { $0.kind == "line" }.map { ("\(file.name):\($0.line)", $0) }, uniquingKeysWith: { a, _ in a })
        func place(_ l: InvoiceLine) -> Substring { l.location.split(separator: ":").last ?? "?" }
        let moneyOnly = lines.filter { l in
            l.nonUsageReason == nil && !l.isCorrection && l.quantity == nil && (l.amount ?? 0) != 0
                && !Self.periodUnits.contains(l.labels["unit_code"] ?? "")
                && !["fee", "support", "subscription", "seat", "licen"].contains { (l.vendorModel ?? "").localizedCaseInsensitiveContains($0) }
        }
        let net = (moneyOnly.first { read[$0.location]?.lineAllowance != nil } ?? moneyOnly.first).map { l in
            if let allowance = read[l.location]?.lineAllowance { return "line at \(place(l)) carries \(allowance) inside its LineExtensionAmount" }
            return "its token lines state money and no token quantity (the first at line \(place(l))): what was charged, after any negotiated price"
        }
        // A surcharge inside a money-only line (priority processing, a fee) is money no token
        // stands for: the line's tokens at list price would be more than were served.
        let gross = moneyOnly.lazy.compactMap { l in read[l.location]?.lineCharge.map { "line at \(place(l)) carries \($0) inside its LineExtensionAmount" } }
            .first
        return ParsedInvoice(lines: lines, coverage: coverage, amountsMayBeNet: net, amountsMayIncludeCharges: gross)
    }
}
