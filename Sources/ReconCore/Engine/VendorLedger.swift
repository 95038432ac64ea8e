import Foundation
import Metering

/// Where a quantity sits: model, token type (nil when compared per model) and account (nil when
/// unattributed, or when the run is not per account).
struct CellKey: Hashable, Sendable, Comparable {
    var model: String
    var tokenType: TokenType?
    var account: String?

    static func < (a: CellKey, b: CellKey) -> Bool {
        (a.model, a.tokenType?.rawValue ?? "", a.account ?? "") < (b.model, b.tokenType?.rawValue ?? "", b.account ?? "")
    }

    var modelType: CellKey { CellKey(model: model, tokenType: tokenType, account: nil) }
}

/// What the vendor billed in one cell, exactly.
struct VendorCell: Sendable {
    /// Tokens converted from money (exact), for lines without a stated quantity.
    var exactTokens = Decimal(0)
    var stated: Int64 = 0
    var hasStated = false
    /// The stated quantities priced at the card (for the pricing check).
    var statedImpliedAmount = Decimal(0)
    /// Billed money in the card's currency.
    var amount = Decimal(0)
    var hasAmount = false
    /// Some of the cell's money could not be converted (stated quantities carried its volume).
    var moneyMissing = false
    var tolerance = Decimal(0)
    var amountHalfUnits = Decimal(0)
    /// UTC days (`Timestamp.day`) with lines.
    var days = Set<Int64>()
    /// The same figures per UTC day, for lines whose bucket lies within one day.
    var daily: [Int64: VendorDay] = [:]
    /// Some lines bill more than one day (a monthly FOCUS or UBL line): the daily figures are partial.
    var hasUndated = false

    var tokens: Int64 { hasStated ? stated : (ExactDecimal.roundedInt64(exactTokens) ?? 0) }
    var toleranceTokens: Int64 { hasStated ? 0 : (ExactDecimal.ceilInt64(tolerance) ?? 0) }
    var vendorAmount: Decimal { hasAmount ? amount : statedImpliedAmount }

    mutating func merge(_ o: VendorCell) {
        exactTokens += o.hasStated ? Decimal(exactly: o.stated) : o.exactTokens
        amount += o.vendorAmount
        hasAmount = true
        moneyMissing = moneyMissing || o.moneyMissing
        tolerance += o.hasStated ? 0 : o.tolerance
        days.formUnion(o.days)
        hasUndated = hasUndated || o.hasUndated
        for (d, v) in o.daily { daily[d, default: VendorDay()].add(v) }
    }
}

/// One day of a vendor cell.
struct VendorDay: Sendable {
    var exactTokens = Decimal(0)
    var stated: Int64 = 0
    var hasStated = false
    var amount = Decimal(0)
    var tolerance = Decimal(0)
    var amountHalfUnits = Decimal(0)

    // As for a cell: stated quantities, where the export gives them, are the vendor's count.
    var tokens: Int64 { hasStated ? stated : (ExactDecimal.roundedInt64(exactTokens) ?? 0) }
    var toleranceTokens: Int64 { hasStated ? 0 : (ExactDecimal.ceilInt64(tolerance) ?? 0) }

    mutating func add(_ o: VendorDay) {
        exactTokens += o.exactTokens
        stated += o.stated
        hasStated = hasStated || o.hasStated
        amount += o.amount
        tolerance += o.tolerance
        amountHalfUnits += o.amountHalfUnits
    }
}

/// Stage 3: the invoice's lines turned into tokens per cell with the card, and everything that
/// did not become tokens kept with its amount and reason.
struct VendorLedger: Sendable {
    var cells: [CellKey: VendorCell] = [:]
    var unmapped: [ReconciliationReport.Unmapped] = []
    var invoiceAmount = Decimal(0)
    var unmappedAmount = Decimal(0)
    var currency: String
    /// Usage lines dated in the period that became tokens.
    var placedLines = 0
    /// Usage lines dated in the period that did not (unknown model, token type, rate, currency).
    var unplacedLines = 0
    /// Bucket bounds of every usage line (in period or not), per file: the span an export covers
    /// when it declares nothing.
    var usageSpans: [Int: (from: Timestamp, to: Timestamp)] = [:]
    /// Buckets that cross a bound of the period: the part inside is not covered.
    var straddling: [TimeRange] = []
    /// First and last usage line dates, for messages.
    var lineDates: (first: Timestamp, last: Timestamp)?
    /// Limits on the evidence found while converting.
    var reasons: [EvidenceReason] = []

    static func build(_ batch: InvoiceBatch, card: any RateCardConverter, options o: ReconciliationOptions) -> VendorLedger {
        var ledger = VendorLedger(currency: batch.lines.first?.line.currency ?? card.currency)
        var blockedNegative: [CellKey: (code: String, amount: Decimal)] = [:]
        var unknownModels: (count: Int, amount: Decimal) = (0, 0)
        var missingFX: [String: (count: Int, amount: Decimal, stated: Bool)] = [:]
        var refunds: [String: Decimal] = [:]
        var otherAccounts: [String: Decimal] = [:]
        let attribution = o.attribution

        for entry in batch.lines {
            let line = entry.line
            if let a = line.amount { ledger.invoiceAmount += a }
            func skip(_ reason: String, money: Decimal? = line.amount) {
                if let a = money { ledger.unmappedAmount += a }
                ledger.unmapped.append(.init(location: line.location, description: line.description, vendorModel: line.vendorModel,
                                             vendorTokenType: line.vendorTokenType, amount: money.map(ExactAmount.init),
                                             currency: line.currency, reason: reason))
            }
            if let reason = line.nonUsageReason { skip(reason); continue }
            let bucket = line.bucket
            let span = ledger.usageSpans[entry.file]
            ledger.usageSpans[entry.file] = (min(span?.from ?? bucket.from, bucket.from), max(span?.to ?? bucket.to, bucket.to))
            ledger.lineDates = (min(ledger.lineDates?.first ?? line.date, line.date), max(ledger.lineDates?.last ?? line.date, line.date))
            let model = line.vendorModel.flatMap { vm in card.canonicalModel(vm) ?? (line.modelIsCanonical && line.quantity != nil ? vm : nil) }
            // Money going back without a quantity (a refund of usage) is not netted here: it would
            // lower the vendor's volume by an amount nobody priced. It blocks corrections on its model.
            if let a = line.amount, a < 0, line.quantity == nil {
                skip("credit")
                if let model, o.range.contains(line.date) { refunds[model, default: 0] += a }
                continue
            }
            if bucket.to <= o.range.from || bucket.from >= o.range.to { skip("out_of_period"); continue }
            if bucket.from < o.range.from || bucket.to > o.range.to {
                // Half of this bucket is outside the period: its volume cannot be split by hour.
                ledger.straddling.append(try! TimeRange(from: max(bucket.from, o.range.from), to: min(bucket.to, o.range.to)))
                skip("straddles_period")
                continue
            }
            guard let model else {
                skip("unknown_model")
                ledger.unplacedLines += 1
                unknownModels.count += 1
                unknownModels.amount += line.amount ?? 0
                continue
            }
            guard let tokenType = line.tokenType ?? line.vendorModel.flatMap(card.aliasTokenType) else {
                skip("unknown_token_type")
                ledger.unplacedLines += 1
                blockedNegative[CellKey(model: model), default: ("unknown_token_type", 0)].amount += line.amount ?? 0
                continue
            }
            var fxRate: Decimal? = 1
            if let a = line.amount, line.currency != card.currency {
                fxRate = o.fx[line.currency]
                if fxRate == nil {
                    missingFX[line.currency, default: (0, 0, true)].count += 1
                    missingFX[line.currency, default: (0, 0, true)].amount += a
                    if line.quantity == nil {
                        missingFX[line.currency]!.stated = false
                        // Its volume is unknown: the run is inconclusive (see the missing_fx reason).
                        skip("missing_fx")
                        ledger.unplacedLines += 1
                        continue
                    }
                    // The stated quantity still counts; only the money is set aside.
                    skip("missing_fx:money_only")
                }
            }
            let price = try? card.price(model: model, tokenType: tokenType, date: line.date, labels: line.labels)
            if price == nil, line.quantity == nil {
                skip("no_rate")
                ledger.unplacedLines += 1
                blockedNegative[CellKey(model: model, tokenType: tokenType), default: ("unpriced_vendor_usage", 0)].amount += line.amount ?? 0
                continue
            }
            var account: String?
            switch attribution {
            case let .single(a): account = a
            case let .mapped(map, only):
                account = line.attribution.values.sorted().compactMap { map[$0] }.first
                if let a = account, let only, a != only {
                    otherAccounts[a, default: 0] += line.amount ?? 0
                    skip("other_account:\(a)")
                    continue
                }
                if let a = account, !o.scope.allows(a) { skip("account_not_visible"); continue }
            case .none: account = nil
            }
            ledger.placedLines += 1
            let key = CellKey(model: model, tokenType: tokenType, account: account)
            var cell = ledger.cells[key] ?? VendorCell()
            cell.days.insert(line.date.day)
            let oneDay = bucket.from.day == Timestamp(microseconds: bucket.to.microseconds - 1).day
            var day = VendorDay()
            if !oneDay { cell.hasUndated = true }
            if let q = line.quantity {
                day.stated = q
                day.hasStated = true
                cell.hasStated = true
                cell.stated += q
                // Without a card price the vendor's own amount stands (no pricing check possible).
                cell.statedImpliedAmount += price.map { card.amount(for: q, at: $0) } ?? (line.amount.map { $0 * (fxRate ?? 0) } ?? 0)
            }
            if let a = line.amount {
                if let fxRate {
                    let converted = a * fxRate
                    cell.hasAmount = true
                    cell.amount += converted
                    cell.amountHalfUnits += ExactDecimal.halfUnit(ofScale: line.amountScale) * fxRate
                    day.amount = converted
                    day.amountHalfUnits = ExactDecimal.halfUnit(ofScale: line.amountScale) * fxRate
                    if line.quantity == nil, let price {
                        cell.exactTokens += card.tokens(for: converted, at: price)
                        cell.tolerance += card.tolerance(scale: line.amountScale, at: price) * fxRate
                        day.exactTokens = card.tokens(for: converted, at: price)
                        day.tolerance = card.tolerance(scale: line.amountScale, at: price) * fxRate
                    }
                } else {
                    cell.moneyMissing = true
                }
            }
            if oneDay { cell.daily[line.date.day, default: VendorDay()].add(day) }
            ledger.cells[key] = cell
        }

        if unknownModels.count > 0 {
            ledger.reasons.append(.init(
                code: "unplaced_vendor_usage", effect: .blocksNegative,
                detail: "\(unknownModels.count) usage line(s) in the period name a model the card does not know; their volume could belong to any model",
                remedy: "add the model to the rate card (or pass --rate-card with its aliases)", amount: unknownModels.amount))
        }
        for (key, block) in blockedNegative.sorted(by: { $0.key < $1.key }) {
            let what = key.tokenType.map { "\(key.model) \($0.rawValue)" } ?? key.model
            let (detail, remedy): (String, String)
            switch block.code {
            case "unknown_token_type":
                (detail, remedy) = ("\(what): usage lines whose token type the plugin does not know", "map the vendor's token type in the plugin")
            default:
                (detail, remedy) = ("\(what): usage lines the card has no price for (a tier, modifier or date it does not price)",
                                    "add the price to the rate card (see usagebox ratecards show)")
            }
            ledger.reasons.append(.init(code: block.code, effect: .blocksNegative, modelID: key.model, tokenType: key.tokenType,
                                        detail: detail, remedy: remedy, amount: block.amount))
        }
        for (currency, m) in missingFX.sorted(by: { $0.key < $1.key }) {
            ledger.reasons.append(.init(
                code: "missing_fx", effect: m.stated ? .note : .inconclusive,
                detail: m.stated
                    ? "\(m.count) line(s) in \(currency) have no exchange rate to \(card.currency); their stated quantities are compared, their money is not"
                    : "\(m.count) line(s) in \(currency) have no exchange rate to \(card.currency) and state no quantity: their volume is unknown",
                remedy: "pass --fx \(currency)=RATE (units of \(card.currency) per \(currency))", amount: m.amount))
        }
        for (model, amount) in refunds.sorted(by: { $0.key < $1.key }) {
            ledger.reasons.append(.init(
                code: "usage_refund", effect: .blocksModel, modelID: model,
                detail: "\(model): usage refunded as money with no quantity; the volume it takes back is unknown",
                remedy: "an export that states the refunded quantity", amount: amount))
        }
        if !otherAccounts.isEmpty {
            ledger.reasons.append(.init(
                code: "other_accounts_lines", effect: .note,
                detail: "lines the account map puts on other accounts are left out of this account's comparison",
                accounts: otherAccounts.keys.sorted().map { .init(accountID: $0, metered: 0) },
                amount: otherAccounts.values.reduce(0, +)))
        }
        return ledger
    }
}

extension CellKey {
    init(model: String) { self.init(model: model, tokenType: nil, account: nil) }
}
