import Foundation
public import Metering

extension RateCard {
    /// The card version that would close a report's price steps: for each model whose implied price
    /// moved, a new dated price row from the step's day (the earlier row now ends there), a source
    /// naming the reconciliation, a new version and a changelog line. The text is for a person to
    /// review (`usagebox ratecards propose --from-report ID`); it loads as a valid card.
    public func proposing(_ report: ReconciliationReport, today: Timestamp = Timestamp.now()) throws -> String {
        guard !report.priceSteps.isEmpty else {
            throw UsageBoxError.invalidArgument("reconciliation \(report.id) found no price step: there is no card change to propose", field: "from_report")
        }
        var lines = source.components(separatedBy: "\n")
        let sourceKey = "reconciliation_" + report.id.replacingOccurrences(of: "-", with: "_")
        var notes: [String] = []
        for step in report.priceSteps {
            guard let day = Timestamp(date: step.date) else { continue }
            for (model, rates) in Dictionary(grouping: step.rates, by: \.modelID).sorted(by: { $0.key < $1.key }) {
                guard let rows = prices[model], let row = rows.last(where: { $0.from < day }) else {
                    throw UsageBoxError.invalidArgument("\(model) has no price before \(step.date) in card \(vendor) \(version)", field: "from_report")
                }
                if let end = row.to, end > day {
                    throw UsageBoxError.invalidArgument(
                        "\(model)'s price row from \(row.from.dayString) runs past \(step.date) into a later row; edit the card by hand",
                        field: "from_report")
                }
                var newRates = row.rates
                for r in rates {
                    guard let tt = r.tokenType, let price = ExactDecimal.parse(r.afterPerMillion) else { continue }
                    newRates[tt] = price
                    notes.append(
                        "\(model) \(tt.rawValue) \(ExactDecimal.text(row.rates[tt] ?? 0)) → \(ExactDecimal.text(price))"
                            + (step.mayBeALoss
                                ? " (\(step.kind == .oneModel ? "one model" : "one token type") only: confirm with the vendor's price list)" : ""))
                }
                // The earlier row now ends on the step's day.
                let rowIndex = row.line - 1
                guard lines.indices.contains(rowIndex) else { throw UsageBoxError(.internal, "the card's line \(row.line) is out of range") }
                if row.to == nil {
                    if let r = lines[rowIndex].range(of: #"from: "[^"]*""#, options: .regularExpression), lines[rowIndex].contains("{") {
                        lines[rowIndex].insert(contentsOf: ", to: \"\(step.date)\"", at: r.upperBound)
                    } else {
                        let indent = lines[rowIndex].prefix { $0 == " " || $0 == "-" }.count
                        lines.insert(String(repeating: " ", count: indent) + "to: \"\(step.date)\"", at: rowIndex + 1)
                    }
                }
                let rateText = newRates.sorted { $0.key < $1.key }.map { "\($0.key.rawValue): \"\(ExactDecimal.text($0.value))\"" }.joined(separator: ", ")
                let newRow =
                    "      - {from: \"\(step.date)\", rates: {\(rateText)}, src: [\(sourceKey)], "
                    + "note: \"proposed from reconciliation \(report.id); token types the step does not list keep the earlier row's prices, "
                    + "and its tiers are not carried over: review\"}"
                guard let modelLine = lines.firstIndex(of: "  \(model):") else {
                    throw UsageBoxError(.internal, "model \(model) is not written as '  \(model):' in the card")
                }
                var end = modelLine + 1
                while end < lines.count,
                    lines[end].hasPrefix("   ")
                        || lines[end].trimmingCharacters(in: .whitespaces).isEmpty && end + 1 < lines.count
                            && lines[end + 1].hasPrefix("   ")
                { end += 1 }
                lines.insert(newRow, at: end)
            }
        }
        let newVersion = "\(version)+\(report.priceSteps.map(\.date).joined(separator: "+"))"
        guard let versionLine = lines.firstIndex(where: { $0.hasPrefix("card_version:") }) else {
            throw UsageBoxError(.internal, "the card has no card_version line")
        }
        lines[versionLine] = "card_version: \"\(newVersion)\""
        let changelog = "  - {version: \"\(newVersion)\", note: \"proposed from reconciliation \(report.id): \(notes.joined(separator: "; "))\"}"
        if let start = lines.firstIndex(of: "changelog:") {
            var end = start + 1
            while end < lines.count, lines[end].hasPrefix("  ") { end += 1 }
            lines.insert(changelog, at: end)
        } else {
            lines.append("changelog:")
            lines.append(changelog)
        }
        let sourceLine = "  \(sourceKey): {url: \"usagebox reconciliation \(report.id)\", retrieved: \"\(today.dayString)\"}"
        guard let sources = lines.firstIndex(of: "sources:") else { throw UsageBoxError(.internal, "the card has no sources block") }
        lines.insert(sourceLine, at: sources + 1)
        return lines.joined(separator: "\n")
    }
}
