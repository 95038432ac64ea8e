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
    var formats: Set<String>

    /// One hash for the whole input: the file's own, or a hash over the files' hashes.
    var sha256: String {
        files.count == 1 ? files[0].sha256 : sha256Hex(Array(files.map(\.sha256).joined(separator: "\n").utf8))
    }

    static func read(_ files: [InvoiceFile], plugin: any VendorPlugin.Type, allowOverlap: Bool) throws -> InvoiceBatch {
        var batch = InvoiceBatch(lines: [], files: [], coverage: [], formats: [])
        for (index, file) in files.enumerated() {
            guard let parser = plugin.parsers.first(where: { $0.sniff(file) }) else {
                throw UsageBoxError.invalidArgument(
                    "\(file.name): none of the \(plugin.id) parsers (\(plugin.parsers.map(\.id).joined(separator: ", "))) recognizes this file",
                    field: "invoice")
            }
            let parsed: ParsedInvoice
            do { parsed = try parser.parse(file) } catch let e as InvoiceError { throw e.usageBoxError }
            batch.lines += parsed.lines.map { Line(line: $0, file: index) }
            batch.coverage.append(parsed.coverage)
            batch.files.append(.init(name: file.name, sha256: sha256Hex(file.bytes), parser: parser.id))
            batch.formats.insert(parser.format.rawValue)
        }
        if !allowOverlap { try checkOverlap(batch.lines, names: files.map(\.name)) }
        return batch
    }

    /// Two files billing the same bucket (day, model, token type, tier, attribution) twice.
    static func checkOverlap(_ lines: [Line], names: [String]) throws {
        guard Set(lines.map(\.file)).count > 1 else { return }
        var seen: [String: Int] = [:]
        for l in lines where l.line.nonUsageReason == nil {
            let line = l.line
            let labels = line.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            let attribution = line.attribution.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            let kind = line.amount != nil ? "amount" : "quantity"
            let key = "\(line.date.microseconds)|\(line.vendorModel ?? "")|\(line.vendorTokenType ?? "")|\(labels)|\(attribution)|\(kind)"
            if let other = seen[key], other != l.file {
                throw UsageBoxError.invalidArgument(
                    "\(names[other]) and \(names[l.file]) both bill \(line.vendorModel ?? "?") \(line.vendorTokenType ?? "?") on \(line.date.dayString) "
                    + "(\(line.location)); pass --allow-overlap if that is intended", field: "invoice")
            }
            seen[key] = l.file
        }
    }
}

/// The card a run prices with: the one named, else one the invoice itself points to (a UBL
/// supplier), else the vendor's.
enum CardChoice {
    static func choose(override: (any RateCardConverter)?, cards: [String: RateCard], plugin: any VendorPlugin.Type,
                       lines: [InvoiceLine]) throws -> any RateCardConverter {
        if let override { return override }
        let hints = plugin.cardHints(for: lines).map { $0.lowercased() }
        if let hinted = cards.values.sorted(by: { $0.vendor < $1.vendor }).first(where: { c in
            c.vendor != plugin.rateCardName && !c.models.isEmpty && hints.contains { $0.contains(c.vendor) }
        }) {
            return hinted
        }
        if let card = cards[plugin.rateCardName] { return card }
        throw UsageBoxError.invalidArgument("no rate card for \(plugin.id); pass --rate-card", field: "rate_card")
    }
}
