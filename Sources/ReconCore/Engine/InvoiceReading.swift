import Metering

/// Stage 2: every invoice file parsed by the plugin's parser that claims it.
struct InvoiceBatch: Sendable {
    struct Line: Sendable {
        var line: InvoiceLine
        var file: Int
    }

    var lines: [Line]
    var files: [ReconciliationReport.InvoiceSummary.File]
    /// What each file declares about its extent, by file index.
    var coverage: [InvoiceCoverage]
    /// Files whose amounts may be after discounts (`ParsedInvoice.amountsMayBeNet`): name and why.
    var netAmounts: [(file: String, why: String)] = []
    /// Files whose money-only lines may include charges (`ParsedInvoice.amountsMayIncludeCharges`): name and why.
    var grossAmounts: [(file: String, why: String)] = []
    /// Identical rows in exports that may list two charges alike (`InvoiceLine.sourceRowMayRepeat`):
    /// the file, the pair's places, and the repeated line.
    var identicalRows: [(file: String, pair: String, line: InvoiceLine)] = []
    var formats: Set<String>

    /// One hash for the whole input: the file's own, or a hash over the files' hashes.
    var sha256: String {
        files.count == 1 ? files[0].sha256 : sha256Hex(Array(files.map(\.sha256).joined(separator: "\n").utf8))
    }

    static func read(_ files: [InvoiceFile], plugin: any VendorPlugin.Type, allowOverlap: Bool) throws -> InvoiceBatch {
        var batch = InvoiceBatch(lines: [], files: [], coverage: [], formats: [])
        for (index, file) in files.enumerated() {
            // Said as such: "none of the parsers recognizes this file" sent people to the format.
            if file.bytes.allSatisfy({ [0x20, 0x09, 0x0A, 0x0D].contains($0) }) {
                throw UsageBoxError.invalidArgument("\(file.name): the file is empty", field: "invoice")
            }
            guard let parser = plugin.parsers.first(where: { $0.sniff(file) }) else {
                // One parser: what it finds missing names the column (an upper-cased CUR header
                // was refused naming none).
                var why = ""
                if plugin.parsers.count == 1 {
                    do { _ = try plugin.parsers[0].parse(file) } catch let e as InvoiceError {
                        why = "; read as \(plugin.parsers[0].id): \(e.description)"
                    } catch {}
                }
                throw UsageBoxError.invalidArgument(
                    "\(file.name): none of the \(plugin.id) parsers (\(plugin.parsers.map(\.id).joined(separator: ", "))) recognizes this file\(why)",
                    field: "invoice")
            }
            let parsed: ParsedInvoice
            // Within the request's time (tester S: a 25 MB invoice parsed 10 s past a 5 s limit).
            try WorkDeadline.current?.check()
            do { parsed = try parser.parse(file) } catch let e as InvoiceError { throw e.usageBoxError }
            try WorkDeadline.current?.check()
            if !allowOverlap {
                try checkRepeatedBuckets(parsed.coverage, name: file.name)
                batch.identicalRows += try checkRepeatedLines(parsed.lines, name: file.name).map { (file.name, $0.pair, $0.line) }
            }
            // Currency codes compare as ISO 4217 writes them: "usd" (or "usd ") is the dollar, not a
            // foreign currency; a blank one stays blank, to be named as such.
            batch.lines += parsed.lines.map { line in
                var line = line
                line.currency = line.currency.trimmingCharacters(in: .whitespaces).uppercased()
                return Line(line: line, file: index)
            }
            batch.coverage.append(parsed.coverage)
            if let why = parsed.amountsMayBeNet { batch.netAmounts.append((file.name, why)) }
            if let why = parsed.amountsMayIncludeCharges { batch.grossAmounts.append((file.name, why)) }
            batch.files.append(.init(name: file.name, sha256: sha256Hex(file.bytes), parser: parser.id))
            batch.formats.insert(parser.format.rawValue)
        }
        return batch
    }

    /// No file declares the same bucket twice (a page saved twice, two pages of one file that
    /// overlap).
    static func checkRepeatedBuckets(_ coverage: InvoiceCoverage, name: String) throws {
        // Only a paged API export lists each bucket once; an invoice's lines may repeat its period.
        guard !coverage.pages.isEmpty else { return }
        let sorted = coverage.declared.sorted { ($0.from, $0.to) < ($1.from, $1.to) }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.from < a.to {
            throw UsageBoxError.invalidArgument(
                "\(name) declares the bucket \(b.from.rfc3339) – \(b.to.rfc3339) more than once (a page saved twice?); "
                    + "pass each page once, or --allow-overlap if that is intended", field: "invoice")
        }
    }

    /// No file lists the same usage row twice — every cell of the export row equal (a row pasted
    /// twice, a page's results repeated): adding both would bill that usage twice. Judged only
    /// where the parser keeps the whole row (`InvoiceLine.sourceRow`): lines alike in what a
    /// parser keeps may come from rows a dropped column tells apart. Correction rows are judged too.
    /// Rows of an export that may list two charges alike (`sourceRowMayRepeat`) are not refused:
    /// each repeat comes back, with the places of its pair, to hold its model's corrections.
    static func checkRepeatedLines(_ lines: [InvoiceLine], name: String) throws -> [(pair: String, line: InvoiceLine)] {
        // The row's hash covers every cell (a CSV row) or the element (a JSON result, whose
        // bucket dates and the token type a usage row is split into complete it).
        struct Key: Hashable {
            var row: Int
            var date: Timestamp
            var end: Timestamp?
            var vendorModel: String?
            var vendorTokenType: String?
            var tokenType: TokenType?
        }
        var seen: [Key: String] = [:]
        var held: [(pair: String, line: InvoiceLine)] = []
        // A zero row listed twice bills nothing twice; a row of no cost at a list price (a free
        // allowance) turns into tokens, and twice into twice as many.
        // Correction rows too: one listed twice was netted twice (−500,000 proposed on an exact meter).
        for line in lines where line.nonUsageReason == nil && (line.amount != 0 || (line.listAmount ?? 0) != 0 || (line.quantity ?? 0) != 0) {
            guard let row = line.sourceRow else { continue }
            // The row's hash says which model it bills (a plugin's charge identity reads a display
            // name and an API id as one model): not the model as written.
            let key = Key(
                row: row, date: line.date, end: line.end, vendorModel: line.sourceRowMayRepeat ? nil : line.vendorModel,
                vendorTokenType: line.vendorTokenType, tokenType: line.tokenType)
            guard let first = seen.updateValue(line.location, forKey: key) else { continue }
            let pair =
                "\(first) and \(line.location): \(line.vendorModel ?? "no model") "
                + "\(line.vendorTokenType ?? line.tokenType?.rawValue ?? "") on \(line.date.dayString)"
            guard line.sourceRowMayRepeat else {
                throw UsageBoxError.invalidArgument(
                    "\(name) lists the same line twice (\(pair)); pass each line once, or --allow-overlap if the export really bills it twice",
                    field: "invoice")
            }
            held.append((pair, line))
        }
        return held
    }

    /// Two files billing the same usage twice: the same model and token type (as the card names
    /// them), the same kind of figure (money or quantity), buckets whose times overlap, and no
    /// tier or attribution that tells the lines apart.
    func checkOverlap(card: any RateCardConverter, names: [String]) throws {
        guard Set(lines.map(\.file)).count > 1 else { return }
        struct Key: Hashable { var model: String; var tokenType: String; var kind: String }
        var groups: [Key: [Line]] = [:]
        // Correction rows never count as billing a bucket twice.
        for l in lines where l.line.nonUsageReason == nil && !l.line.isCorrection {
            let line = l.line
            let model = line.vendorModel.map { card.canonicalModel($0) ?? $0 } ?? ""
            let tokenType = line.tokenType?.rawValue ?? line.vendorModel.flatMap(card.aliasTokenType)?.rawValue ?? line.vendorTokenType ?? ""
            groups[Key(model: model, tokenType: tokenType, kind: line.quantity != nil ? "quantity" : "amount"), default: []].append(l)
        }
        // Tiers tell lines apart; a label at its base value ("global", "not_available", "standard") does not.
        func tiers(_ l: Line) -> [String: String] {
            let model = l.line.vendorModel.flatMap(card.canonicalModel) ?? ""
            return l.line.labels.filter { !card.isBaseLabel($0.key, $0.value, model: model) }
        }
        func different(_ a: [String: String], _ b: [String: String]) -> Bool {
            a.contains { k, v in b[k].map { $0 != v } ?? true } || b.contains { a[$0.key] == nil }
        }
        func differentAttribution(_ a: [String: String], _ b: [String: String]) -> Bool { a.contains { k, v in b[k].map { $0 != v } ?? false } }
        // In one order: the same two files were refused naming another cell on each run.
        for (key, group) in groups.sorted(by: { ($0.key.model, $0.key.tokenType, $0.key.kind) < ($1.key.model, $1.key.tokenType, $1.key.kind) }) {
            let sorted = group.sorted { $0.line.bucket.from < $1.line.bucket.from }
            for (i, a) in sorted.enumerated() {
                for b in sorted[(i + 1)...] {
                    guard b.line.bucket.from < a.line.bucket.to else { break }
                    guard a.file != b.file, !different(tiers(a), tiers(b)), !differentAttribution(a.line.attribution, b.line.attribution),
                        a.line.lineItemID == nil || b.line.lineItemID == nil || a.line.lineItemID == b.line.lineItemID
                            || a.line.lineItemScheme != b.line.lineItemScheme
                            || a.line.chargeRow == nil || a.line.chargeRow == b.line.chargeRow
                            // One delivery has one granularity: an hourly row inside another file's
                            // daily row of the same usage is a second export of it.
                            || a.line.bucket.from != b.line.bucket.from || a.line.bucket.to != b.line.bucket.to
                    else { continue }
                    throw UsageBoxError.invalidArgument(
                        "\(names[a.file]) and \(names[b.file]) both bill \(key.model) \(key.tokenType) on \(b.line.date.dayString) "
                            + "(\(a.line.location) and \(b.line.location)); pass --allow-overlap if that is intended", field: "invoice")
                }
            }
        }
    }
}

/// The card a run prices with: the one named, else one the invoice itself points to (a UBL
/// supplier), else the vendor's.
enum CardChoice {
    /// Whether a supplier the invoice names ("Anthropic, PBC") is a card's vendor (`anthropic`):
    /// the card a run picks by it, and the supplier a run takes as stating who served the usage.
    static func names(_ supplier: String, _ vendor: String) -> Bool { supplier.lowercased().contains(vendor.lowercased()) }

    static func choose(
        override: (any RateCardConverter)?, cards: [String: RateCard], plugin: any VendorPlugin.Type,
        lines: [InvoiceLine]
    ) throws -> any RateCardConverter {
        let hints = plugin.cardHints(for: lines).map { $0.lowercased() }
        if let override {
            // Another registered vendor's card (an openai card for an anthropic run was taken)
            // prices a one-vendor plugin's invoice by the wrong vendor's names and prices. A
            // plugin whose own card prices no model (FOCUS, UBL: any provider's bill) takes any
            // card, and so does every plugin for a card of a vendor no plugin ships.
            let named = override.vendor.lowercased()
            let ownCardPricesModels = !(cards[plugin.rateCardName]?.models.isEmpty ?? true)
            guard
                !ownCardPricesModels || named == plugin.rateCardName.lowercased() || !cards.keys.contains(where: { $0.lowercased() == named })
                    || hints.contains(where: { names($0, named) })
            else {
                throw UsageBoxError.invalidArgument(
                    "the rate card is \(override.vendor)'s; \(plugin.id) invoices are priced by a card with vendor: \(plugin.rateCardName)"
                        + " (or one their lines name)", field: "rate_card")
            }
            return override
        }
        if let hinted = cards.values.sorted(by: { $0.vendor < $1.vendor }).first(where: { c in
            c.vendor != plugin.rateCardName && !c.models.isEmpty && hints.contains { names($0, c.vendor) }
        }) {
            return hinted
        }
        if let card = cards[plugin.rateCardName] { return card }
        throw UsageBoxError.invalidArgument("no rate card for \(plugin.id); pass --rate-card", field: "rate_card")
    }
}
