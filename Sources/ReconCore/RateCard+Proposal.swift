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
        // Each model's rates of each day, merged over the steps (two token types of one model
        // stepping on one day were two steps, and each ended the earlier row: invalid YAML).
        var byModel: [String: (date: String, step: ReconciliationReport.PriceStep, rates: [ReconciliationReport.PriceStep.Rate])] = [:]
        for step in report.priceSteps {
            for rate in step.rates {
                if let known = byModel[rate.modelID] {
                    guard known.date == step.date else {
                        throw UsageBoxError.invalidArgument(
                            "\(rate.modelID) steps on \(known.date) and \(step.date): edit the card by hand", field: "from_report")
                    }
                    byModel[rate.modelID]?.rates.append(rate)
                } else {
                    byModel[rate.modelID] = (step.date, step, [rate])
                }
            }
        }
        // Edits of the card's own lines, applied from the bottom up so each index stays true (a
        // second model's row was written into the first's: tester T2).
        var edits: [(index: Int, order: Int, apply: (inout [String]) -> Void)] = []
        for (model, entry) in byModel.sorted(by: { $0.key < $1.key }) {
            guard let day = Timestamp(date: entry.date) else { continue }
            guard let rows = prices[model], let row = rows.last(where: { $0.from < day }) else {
                throw UsageBoxError.invalidArgument("\(model) has no price before \(entry.date) in card \(vendor) \(version)", field: "from_report")
            }
            if let end = row.to, end > day {
                throw UsageBoxError.invalidArgument(
                    "\(model)'s price row from \(row.from.dayString) runs past \(entry.date) into a later row; edit the card by hand",
                    field: "from_report")
            }
            var newRates = row.rates
            for r in entry.rates {
                guard let tt = r.tokenType, var price = ExactDecimal.parse(r.afterPerMillion) else { continue }
                // A step's prices are the bill's money per metered token: where that read other
                // than the card before the step, the money mixes prices (a long-context tier, a
                // discount), and the price after it is a blend, not the vendor's (3.44674 for
                // 3.30: tester U). Traffic under the card's own modifiers (all batch, all
                // data-zone) reads the base price times their factor, and they scale the base, so
                // the step's ratio is the base's: the card's price times it is written (every such
                // step was refused as mixed: review V). Divided by the factor instead, the 0.2 %
                // the reading may stray went into the price (3.30495 for 3.3: review X). The bill
                // cannot say which modifier (or a discount alike) it was, nor that the step was
                // not that factor's own (batch from 0.5 to 0.6 reads as the base up 20 %: tester
                // W), so the note says so.
                var under: [Modifier] = []
                if let before = ExactDecimal.parse(r.beforePerMillion), let card = row.rates[tt], !Self.agree(before, card) {
                    guard before > 0, let mods = modifierReading(model: model, card: card, read: before) else {
                        throw UsageBoxError.invalidArgument(
                            "\(model) \(tt.rawValue) read \(r.beforePerMillion) per million before \(entry.date) where the card says "
                                + "\(ExactDecimal.text(card)) (under none of its modifiers): the bill's money mixes prices (a tier such as "
                                + "long context, traffic partly under a modifier), so \(r.afterPerMillion) is no price of the vendor's to "
                                + "write; edit the card by hand", field: "from_report")
                    }
                    under = mods
                    price = ExactDecimal.parse(DailyEvidence.perMillion(card * price / before / 1_000_000)) ?? card * price / before
                }
                newRates[tt] = price
                let step = entry.step
                notes.append(
                    "\(model) \(tt.rawValue) \(ExactDecimal.text(row.rates[tt] ?? 0)) → \(ExactDecimal.text(price))"
                        + (under.isEmpty
                            ? ""
                            : " (read as \(r.beforePerMillion) → \(r.afterPerMillion), the card's price times "
                                + under.map { "\($0.id) ×\(ExactDecimal.text($0.factor))" }.joined(separator: " and ")
                                + " or a discount that size: written as the card's price times the step's ratio; confirm the vendor moved "
                                + "the base price, not that factor)")
                        + (step.mayBeALoss ? " (\(step.kind == .oneModel ? "one model" : "one token type") only: confirm with the vendor's price list)" : ""))
            }
            // The earlier row now ends on the step's day.
            let rowIndex = row.line - 1
            guard lines.indices.contains(rowIndex) else { throw UsageBoxError(.internal, "the card's line \(row.line) is out of range") }
            if row.to == nil {
                let date = entry.date
                if let r = lines[rowIndex].range(of: #"from: "[^"]*""#, options: .regularExpression), lines[rowIndex].contains("{") {
                    let at = r.upperBound.utf16Offset(in: lines[rowIndex])
                    edits.append(
                        (
                            rowIndex, 0,
                            { lines in
                                let line = lines[rowIndex]
                                lines[rowIndex].insert(contentsOf: ", to: \"\(date)\"", at: String.Index(utf16Offset: at, in: line))
                            }
                        ))
                } else {
                    let indent = lines[rowIndex].prefix { $0 == " " || $0 == "-" }.count
                    edits.append((rowIndex + 1, 0, { $0.insert(String(repeating: " ", count: indent) + "to: \"\(date)\"", at: rowIndex + 1) }))
                }
            }
            func ratesText(_ rates: [TokenType: Decimal?]) -> String {
                "{"
                    + rates.sorted { $0.key < $1.key }.map { "\($0.key.rawValue): \($0.value.map { "\"\(ExactDecimal.text($0))\"" } ?? "null")" }
                    .joined(separator: ", ") + "}"
            }
            // The earlier row's tiers carry over with the token types the step moved written
            // `null` (unknown): what the vendor charges for those at a tier is not in the bill's
            // steps, and the old tier price or a scaled one would turn a price into usage either
            // way, where an unpriced line is held. Dropping the tiers left a real long-context
            // loss unpriced and the cell looking closed (tester T2 L3).
            let moved = Set(entry.rates.compactMap(\.tokenType))
            let tiers = row.tiers.map { tier -> String in
                var rates: [TokenType: Decimal?] = tier.rates.mapValues { $0 }
                for t in moved where rates[t] != nil { rates[t] = .some(nil) }
                let when = tier.when.sorted { $0.key < $1.key }.map { "\($0.key): [\($0.value.map { "\"\($0)\"" }.joined(separator: ", "))]" }
                return "{id: \"\(tier.id)\", when: {\(when.joined(separator: ", "))}, rates: \(ratesText(rates))}"
            }
            let unknownAtTiers = row.tiers.flatMap { tier in moved.filter { tier.rates[$0] != nil }.map { "\($0.rawValue) at \(tier.id)" } }
            if !unknownAtTiers.isEmpty {
                notes.append("\(model) \(Set(unknownAtTiers).sorted().joined(separator: ", ")) left unpriced: add the vendor's price")
            }
            let newRow =
                "      - {from: \"\(entry.date)\", rates: \(ratesText(newRates.mapValues { $0 })), "
                + (tiers.isEmpty ? "" : "tiers: [\(tiers.joined(separator: ", "))], ") + "src: [\(sourceKey)], "
                + "note: \"proposed from reconciliation \(report.id); token types the step does not list keep the earlier row's prices"
                + (row.tiers.isEmpty ? "" : ", and its tiers carry over with the token types the step moved unknown (null: unpriced there until added)")
                + ": review\"}"
            guard let modelLine = lines.firstIndex(of: "  \(model):") else {
                throw UsageBoxError(.internal, "model \(model) is not written as '  \(model):' in the card")
            }
            var end = modelLine + 1
            while end < lines.count,
                lines[end].hasPrefix("   ")
                    || lines[end].trimmingCharacters(in: .whitespaces).isEmpty && end + 1 < lines.count
                        && lines[end + 1].hasPrefix("   ")
            { end += 1 }
            edits.append((end, 1, { $0.insert(newRow, at: end) }))
        }
        // Bottom up; at one index the new row goes in before the `to:` line of the row above it
        // would (they never share an index in practice: a row's end is past its own line).
        for edit in edits.sorted(by: { ($0.index, $0.order) > ($1.index, $1.order) }) { edit.apply(&lines) }
        let newVersion = "\(version)+\(Set(report.priceSteps.map(\.date)).sorted().joined(separator: "+"))"
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

    /// Two prices per million alike to a fifth of a percent: the bill's money is cent-rounded.
    static func agree(_ read: Decimal, _ price: Decimal) -> Bool { abs(read - price) <= price * Decimal(string: "0.002")! }

    /// The card's modifiers of `model` (one, or two together) under which its `card` price reads
    /// `read`; nil if none, or if sets of two factors would (which is meant cannot be told).
    func modifierReading(model: String, card: Decimal, read: Decimal) -> [Modifier]? {
        let mine = modifiers.filter { $0.models?.contains(model) ?? true }
        var sets: [[Modifier]] = mine.map { [$0] }
        for i in mine.indices { for j in mine.indices where j > i { sets.append([mine[i], mine[j]]) } }
        let fitting = sets.map { ($0, $0.reduce(Decimal(1)) { $0 * $1.factor }) }.filter { Self.agree(read, card * $0.1) }
        return Set(fitting.map(\.1)).count == 1 ? fitting.first?.0 : nil
    }
}
