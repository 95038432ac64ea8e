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

/// What the vendor billed for one bucket of one cell (a day, an hour, a month), exactly. Where the
/// export states a quantity for the bucket, that is the vendor's count and money-only lines of the
/// same bucket are the same usage priced; where it does not, the money is converted.
struct VendorBucket: Sendable {
    var exactTokens = Decimal(0)
    var stated: Int64 = 0
    var hasStated = false
    /// Billed money in the card's currency.
    var amount = Decimal(0)
    var hasAmount = false
    /// The stated quantities priced at the card (for the pricing check).
    var statedImpliedAmount = Decimal(0)
    var tolerance = Decimal(0)
    var amountHalfUnits = Decimal(0)
    /// The list (pre-discount) money where the export gives it.
    var listAmount: Decimal?
    /// The tenants (`key=value` of `VendorPlugin.tenantKeys`: workspaces, projects) of the lines
    /// stating a quantity, and of those stating money alone ("" where a line names none).
    var statedTenants: Set<String> = []
    var moneyTenants: Set<String> = []
    /// The labels of the lines stating a quantity, and the tiers (`key=value` of labels priced
    /// apart from the base) of those stating money alone.
    var statedLabels: Set<[String: String]> = []
    /// A stated line names no label the card prices by: it may count any tier.
    var statedAnyTier = false
    var moneyTiers: Set<String> = []
    /// Some of the volume here is money converted at a rate the run was given (`--fx`), not one
    /// the export states: how many tokens it is rests on that rate.
    var atGivenRate = false
    /// The files (indexes in the batch) whose billed money (neither a stated quantity nor a list
    /// price) gave volume here and may be after a discount (`ParsedInvoice.amountsMayBeNet`).
    var netFiles: Set<Int> = []

    /// The lines billing something here: a row lost among several of a day (one resource group's,
    /// one IAM principal's) leaves the day billed, one row short.
    var rows = 0

    /// The money of the lines stating money alone (whose volume, at each line's own price and
    /// from its list where given, is `exactTokens`): all of the bucket's, or the comparison below
    /// is at the card's price.
    var moneyOnlyAmount = Decimal(0)

    var vendorAmount: Decimal { hasAmount ? amount : statedImpliedAmount }

    /// The stated count's money, for comparing with what was billed. Where the money (all from
    /// lines stating money alone: a cost report beside a usage report) bills a tier the counts do
    /// not say whether they hold, priced as the money is, each line at its own tier: a count of
    /// every tier beside batch money reads as paid for (a usage report not grouped by tier was held
    /// against batch money priced at the standard rate), and a count of one tier beside money of
    /// two reads short of it (filtered to the standard tier, not grouped, the batch tokens were
    /// proposed off the meter). Else at the card's price for the stated lines' own labels (cost
    /// rows with no tier beside a report grouped by tier read as a 25 % discount when priced as
    /// the money was).
    var comparedImplied: Decimal {
        guard hasStated, stated > 0, exactTokens > 0, hasAmount, moneyOnlyAmount == amount, countsMayHoldMoneysTiers else { return statedImpliedAmount }
        return amount * Decimal(exactly: stated) / exactTokens
    }

    /// Some tier the money bills is a label some stated line does not name.
    var countsMayHoldMoneysTiers: Bool {
        guard !moneyTiers.isEmpty else { return false }
        return statedAnyTier
            || moneyTiers.contains { pair in
                let key = String(pair.prefix { $0 != "=" })
                return statedLabels.contains { $0[key] == nil }
            }
    }

    /// A bucket whose stated quantities name tenants and whose money-only lines bill another:
    /// the stated count (a usage report of one workspace) stands for the bucket's money of every
    /// workspace, which it may cover only part of.
    /// Tenants are compared where both name them the same way (a Console CSV's workspace names
    /// are not a usage report's workspace ids); stated lines naming none may cover any.
    var statedCoversPart: Bool { hasStated && !uncoveredTenants.isEmpty }

    var uncoveredTenants: Set<String> {
        guard !statedTenants.contains("") else { return [] }
        let keys = Set(statedTenants.map { $0.prefix { $0 != "=" } })
        return moneyTenants.filter { $0.isEmpty || (keys.contains($0.prefix { $0 != "=" }) && !statedTenants.contains($0)) }
    }

    /// The money's tiers no stated line counts: a usage report pulled for the standard tier beside
    /// a cost report billing batch too stood for the whole cell, and a fifth of the model's usage
    /// (its batch tokens) was proposed off the meter. A stated line without the label (a usage
    /// report not grouped by it) may count any.
    var uncoveredTiers: Set<String> {
        guard hasStated, !statedAnyTier, !moneyTiers.isEmpty else { return [] }
        return moneyTiers.filter { pair in
            let key = String(pair.prefix { $0 != "=" }), value = String(pair.drop { $0 != "=" }.dropFirst())
            return !statedLabels.contains { $0[key] == nil || $0[key] == value }
        }
    }

    mutating func add(_ o: VendorBucket) throws {
        exactTokens += o.exactTokens
        stated = try Overflow.add(stated, o.stated, "the vendor's stated tokens")
        hasStated = hasStated || o.hasStated
        amount += o.amount
        hasAmount = hasAmount || o.hasAmount
        statedImpliedAmount += o.statedImpliedAmount
        moneyOnlyAmount += o.moneyOnlyAmount
        tolerance += o.tolerance
        amountHalfUnits += o.amountHalfUnits
        if let l = o.listAmount { listAmount = (listAmount ?? 0) + l }
        rows += o.rows
        statedTenants.formUnion(o.statedTenants)
        moneyTenants.formUnion(o.moneyTenants)
        atGivenRate = atGivenRate || o.atGivenRate
        statedAnyTier = statedAnyTier || o.statedAnyTier
        statedLabels.formUnion(o.statedLabels)
        moneyTiers.formUnion(o.moneyTiers)
        netFiles.formUnion(o.netFiles)
    }
}

/// Sums of buckets: stated quantities where a bucket states them, converted money elsewhere
/// (summed exactly and rounded once).
struct BucketSum: Sendable {
    var stated: Int64 = 0
    var exactTokens = Decimal(0)
    var tolerance = Decimal(0)
    var amount = Decimal(0)
    var amountHalfUnits = Decimal(0)
    var listAmount: Decimal?
    var anyStated = false
    var anyConverted = false
    /// Files whose possibly discounted money gave converted volume (`VendorBucket.netFiles`).
    var netFiles: Set<Int> = []
    /// A stated sum went past 64 bits.
    var overflow = false

    init() {}
    init<S: Sequence>(_ buckets: S) where S.Element == VendorBucket { for b in buckets { add(b) } }

    mutating func add(_ b: VendorBucket) {
        if b.hasStated {
            let (r, o) = stated.addingReportingOverflow(b.stated)
            stated = r
            overflow = overflow || o
            anyStated = true
        } else {
            exactTokens += b.exactTokens
            tolerance += b.tolerance
            anyConverted = true
            netFiles.formUnion(b.netFiles)
        }
        amount += b.vendorAmount
        amountHalfUnits += b.amountHalfUnits
        if let l = b.listAmount { listAmount = (listAmount ?? 0) + l }
    }

    /// Nil when the total does not fit 64 bits.
    var checkedTokens: Int64? {
        guard !overflow, let converted = ExactDecimal.roundedInt64(exactTokens) else { return nil }
        let (r, o) = stated.addingReportingOverflow(converted)
        return o ? nil : r
    }
    var tokens: Int64 { checkedTokens ?? 0 }
    var toleranceTokens: Int64 { ExactDecimal.ceilInt64(tolerance) ?? 0 }
    /// Only stated quantities: the vendor counted every token itself.
    var allStated: Bool { anyStated && !anyConverted }
}

/// What the vendor billed in one cell, bucket by bucket.
struct VendorCell: Sendable {
    struct BucketKey: Hashable, Sendable {
        var from: Int64
        var to: Int64
        /// The token type the bucket was billed under, so buckets stay apart when a model is
        /// compared per model.
        var tag: String
    }

    var buckets: [BucketKey: VendorBucket] = [:]
    /// Some of the cell's money could not be converted (stated quantities carried its volume).
    var moneyMissing = false

    /// Buckets of one token type whose times overlap are one bucket: an hourly usage report and a
    /// daily cost report of the same day are the same usage counted and priced, not twice the usage.
    var clustered: [(key: BucketKey, bucket: VendorBucket)] {
        var out: [(key: BucketKey, bucket: VendorBucket)] = []
        for (tag, group) in Dictionary(grouping: buckets, by: \.key.tag).sorted(by: { $0.key < $1.key }) {
            for (k, b) in group.sorted(by: { ($0.key.from, $0.key.to) < ($1.key.from, $1.key.to) }) {
                if let last = out.last, last.key.tag == tag, k.from < last.key.to {
                    var merged = last.bucket
                    try? merged.add(b)
                    out[out.count - 1] = (BucketKey(from: last.key.from, to: max(last.key.to, k.to), tag: tag), merged)
                } else {
                    out.append((k, b))
                }
            }
        }
        return out
    }

    var sum: BucketSum { BucketSum(clustered.map(\.bucket)) }
    var tokens: Int64 { sum.tokens }
    var toleranceTokens: Int64 { sum.toleranceTokens }
    var vendorAmount: Decimal { sum.amount }
    /// UTC days (`Timestamp.day`) with lines.
    var days: Set<Int64> { Set(buckets.keys.map { Timestamp(microseconds: $0.from).day }) }
    /// Some lines bill more than one day (a monthly FOCUS or UBL line): the daily figures are partial.
    var hasUndated: Bool { clustered.contains { !Self.isOneDay($0.key) } }

    static func isOneDay(_ k: BucketKey) -> Bool { Timestamp(microseconds: k.from).day == Timestamp(microseconds: k.to - 1).day }

    /// The buckets that lie within one UTC day, summed per day.
    var daily: [Int64: BucketSum] {
        var out: [Int64: BucketSum] = [:]
        for (k, b) in clustered where Self.isOneDay(k) { out[Timestamp(microseconds: k.from).day, default: BucketSum()].add(b) }
        return out
    }

    /// Buckets with both a stated quantity and money: the money against quantity × card price.
    var pricing: (money: Decimal, implied: Decimal, stated: Int64, halfUnits: Decimal)? {
        let both = clustered.map(\.bucket).filter { $0.hasStated && $0.hasAmount }
        guard !both.isEmpty, !moneyMissing else { return nil }
        return (
            both.reduce(0) { $0 + $1.amount }, both.reduce(0) { $0 + $1.comparedImplied },
            both.reduce(0) { $0 &+ $1.stated }, both.reduce(0) { $0 + $1.amountHalfUnits }
        )
    }

    mutating func merge(_ o: VendorCell) throws {
        for (k, b) in o.buckets { try buckets[k, default: VendorBucket()].add(b) }
        moneyMissing = moneyMissing || o.moneyMissing
    }
}

/// Checked 64-bit arithmetic: a sum that does not fit is an error naming what overflowed.
enum Overflow {
    static func add(_ a: Int64, _ b: Int64, _ what: String) throws -> Int64 {
        let (r, o) = a.addingReportingOverflow(b)
        guard !o else { throw UsageBoxError.invalidArgument("\(what) overflow 64 bits", field: "invoice") }
        return r
    }
}

/// Stage 3: the invoice's lines turned into tokens per cell with the card, and everything that
/// did not become tokens kept with its amount and reason.
/// An amount into the card's currency: × `times` ÷ `over`. A rate an export states (units of its
/// currency per card unit) divides, so what divides exactly stays exact: 2.30 EUR at 0.92 is
/// 2.50 USD, where multiplying by the rounded reciprocal gives 2.4999…
struct FXConversion: Sendable {
    var times: Decimal = 1
    var over: Decimal = 1
    /// Dividing by an export's stated rate rarely ends: kept to 12 decimals (a millionth of a
    /// millionth of a dollar a line, far below any token's price), not the 38 digits `Decimal`
    /// carries, which a report would print.
    func callAsFunction(_ amount: Decimal) -> Decimal {
        guard over != 1 else { return amount * times }
        var exact = amount * times / over, rounded = Decimal()
        NSDecimalRound(&rounded, &exact, 12, .plain)
        return rounded
    }
}

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
    /// Usage lines in the period the account map gives to accounts other than the run's, or
    /// that the caller may not see.
    var linesForOtherAccounts = 0
    /// Lines the account map named an account for, and (a few of) the ids of those it did not.
    var mappedLines = 0
    var unmappedIDs = Set<String>()
    /// Bucket bounds of every usage line (in period or not), per file: the span an export covers
    /// when it declares nothing.
    var usageSpans: [Int: (from: Timestamp, to: Timestamp)] = [:]
    /// Usage lines billing more than one day.
    var multiDayLines = 0
    /// Models billed in lines longer than a day by a file that declares no period: nothing shows
    /// whether such a line was complete when exported, whatever other lines cover.
    var undeclaredMultiDayModels = Set<String>()
    /// What the invoice bills per currency, as written, and what was left out of the card-currency totals.
    var byCurrency: [String: Decimal] = [:]
    var unconvertedCurrencies = Set<String>()
    /// Buckets that cross a bound of the period: the part inside is not covered.
    var straddling: [TimeRange] = []
    /// From the first to the end of the last of those buckets, whole: the period that would hold them.
    var straddlingSpan: (from: Timestamp, to: Timestamp)?
    /// First and last usage line dates, for messages.
    var lineDates: (first: Timestamp, last: Timestamp)?
    /// The values each of the plugin's tenant keys (`workspace_id`, `project_id`, …) takes on the
    /// usage lines placed, "" for a line without it: more than one on a run for one account may be
    /// several accounts' bill (`ScopeCheck`).
    var tenantValues: [String: Set<String>] = [:]
    /// Limits on the evidence found while converting.
    var reasons: [EvidenceReason] = []

    struct ToleranceKey: Hashable {
        var scale: Int
        var perToken: Decimal
    }

    struct PriceKey: Hashable {
        var model: String
        var tokenType: TokenType
        var date: Timestamp
        var labels: [String: String]
    }

    static func build(
        _ batch: InvoiceBatch, card: any RateCardConverter, options o: ReconciliationOptions, tenantKeys: Set<String> = []
    ) throws -> VendorLedger {
        var ledger = VendorLedger(currency: batch.lines.first?.line.currency ?? card.currency)
        let netFiles = Set(batch.netAmounts.map(\.file))
        // By index, once: the loop below asks for every line.
        let netFileIndexes = Set(batch.files.indices.filter { netFiles.contains(batch.files[$0].name) })
        var blockedNegative: [CellKey: (code: String, amount: Decimal)] = [:]
        /// Per cell, the money's tenants its stated quantities do not name (`stated_quantities_cover_part`).
        var statedTenantNotes: [CellKey: Set<String>] = [:]
        var unknownModels: (count: Int, amount: Decimal) = (0, 0)
        var otherUnits: (count: Int, amount: Decimal, units: Set<String>, models: Set<String>) = (0, 0, [], [])
        var missingFX: [String: (count: Int, amount: Decimal, stated: Bool)] = [:]
        var refunds: [String: Decimal] = [:]
        var tokenRefunds: [CellKey: (tokens: Int64, amount: Decimal)] = [:]
        /// Per cell: how many lines, their money, and the first one's span and change.
        var spansPriceChange: [CellKey: (count: Int, amount: Decimal, from: Timestamp, to: Timestamp, change: Timestamp)] = [:]
        var otherAccounts: [String: Decimal] = [:]
        var listBelowBilled: [CellKey: (count: Int, amount: Decimal, first: String)] = [:]
        var tierNotes = Set<String>()
        // Lines stating their counts in a tier the card does not price: counted, their money unchecked.
        var unpricedStated: [CellKey: Int] = [:]
        let attribution = o.attribution
        // A big export repeats a few models, days and tiers over and over: each is looked up once
        // (an alias regex and a price per line were most of reconciling a 100 MB invoice).
        var canonicalMemo: [String: String?] = [:], tokenTypeMemo: [String: TokenType?] = [:]
        var priceMemo: [PriceKey: Result<ResolvedPrice, any Error>] = [:]
        var changesMemo: [String: [Timestamp]] = [:]  // once per model, not per line
        func canonical(_ vendorModel: String) -> String? {
            if let known = canonicalMemo[vendorModel] { return known }
            let model = card.canonicalModel(vendorModel)
            canonicalMemo[vendorModel] = model
            return model
        }
        func aliasTokenType(_ vendorModel: String) -> TokenType? {
            if let known = tokenTypeMemo[vendorModel] { return known }
            let type = card.aliasTokenType(vendorModel)
            tokenTypeMemo[vendorModel] = type
            return type
        }
        var toleranceMemo: [ToleranceKey: Decimal] = [:]
        func tolerance(_ scale: Int, _ price: ResolvedPrice) -> Decimal {
            let key = ToleranceKey(scale: scale, perToken: price.perToken)
            if let known = toleranceMemo[key] { return known }
            let t = card.tolerance(scale: scale, at: price)
            toleranceMemo[key] = t
            return t
        }
        func priced(_ key: PriceKey) -> Result<ResolvedPrice, any Error> {
            if let known = priceMemo[key] { return known }
            let answer = Result { try card.price(model: key.model, tokenType: key.tokenType, date: key.date, labels: key.labels) }
            priceMemo[key] = answer
            return answer
        }

        // A restatement in corrections (a FOCUS price fix: the usage reversed, then billed again
        // for the same charge period) nets to what was billed; only tokens given back past what is
        // billed again are a refund.
        // Per tenant too: one workspace's reversal is not billed again by another's re-bill.
        func restatement(_ line: InvoiceLine) -> String {
            "\(line.vendorModel ?? "")|\(line.vendorTokenType ?? line.tokenType?.rawValue ?? "")|\(line.bucket.from.microseconds)|\(line.bucket.to.microseconds)|"
                + line.attribution.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
        // Saturating: two reversals of 2^63 − 1 wrapped to −2 and passed as billed again.
        func plus(_ a: Int64, _ b: UInt64) -> Int64 {
            let (sum, overflow) = a.addingReportingOverflow(Int64(clamping: b))
            return overflow ? .max : sum
        }
        var rebilled: [String: (given: Int64, back: Int64)] = [:]
        // The quantities of the usage rows (not corrections) of each restatement key: a FOCUS
        // "ledger" correction reverses a row whole (its exact quantity, negated) and bills the
        // replacement beside it; the reversal and the row it names net to nothing. Set aside as a
        // refund, a clean month read as a gap the size of the replacement, and an outage there was held.
        var originals: [String: [Int64: Int]] = [:]
        for entry in batch.lines where entry.line.nonUsageReason == nil {
            guard let q = entry.line.quantity, q != 0 else { continue }
            let key = restatement(entry.line)
            guard entry.line.isCorrection else {
                if q > 0, !entry.line.isRefund { originals[key, default: [:]][q, default: 0] += 1 }
                continue
            }
            let now = rebilled[key] ?? (0, 0)
            rebilled[key] = q > 0 ? (plus(now.given, q.magnitude), now.back) : (now.given, plus(now.back, q.magnitude))
        }
        // Reversals of a row whole, with a replacement billed beside them, the replacement lower:
        // each names a row of its own (two reversals of one row: the second is a refund), and what
        // they bill less is held as over-metering evidence (`usage_restated_lower`), since the
        // vendor does not say whether those tokens were served.
        var reversals = Set<Int>()
        for (i, entry) in batch.lines.enumerated() where entry.line.nonUsageReason == nil && entry.line.isCorrection && !entry.line.isRefund {
            let key = restatement(entry.line)
            guard let q = entry.line.quantity, q < 0, q != .min, let billed = rebilled[key], billed.given > 0, billed.back > billed.given,
                let left = originals[key]?[-q], left > 0
            else { continue }
            originals[key]?[-q] = left - 1
            reversals.insert(i)
        }
        func billedAgain(_ index: Int, _ line: InvoiceLine) -> Bool {
            guard line.isCorrection, !line.isRefund, let billed = rebilled[restatement(line)] else { return false }
            return billed.back <= billed.given || reversals.contains(index)
        }
        var restatedLower: [CellKey: Int64] = [:]
        var restatedKeys: Set<String> = []

        var polled = 0
        for (index, entry) in batch.lines.enumerated() {
            try WorkDeadline.poll(&polled)  // the request's time, in a big invoice
            let line = entry.line
            // Totals are in the card's currency; a line in another currency counts where a rate converts
            // it: the rate the export states, else --fx.
            let rate: FXConversion? =
                line.currency == card.currency
                ? FXConversion() : (line.exchangeRate.flatMap { $0 > 0 ? FXConversion(over: $0) : nil } ?? o.fx[line.currency].map { FXConversion(times: $0) })
            if let a = line.amount {
                ledger.byCurrency[line.currency, default: 0] += a
                if let rate { ledger.invoiceAmount += rate(a) } else { ledger.unconvertedCurrencies.insert(line.currency) }
            }
            func skip(_ reason: String, money: Decimal? = line.amount) {
                if let a = money, let rate { ledger.unmappedAmount += rate(a) }
                ledger.unmapped.append(
                    .init(
                        location: line.location, description: line.description, vendorModel: line.vendorModel,
                        vendorTokenType: line.vendorTokenType, amount: money.map(ExactAmount.init),
                        currency: line.currency, reason: reason))
            }
            if let reason = line.nonUsageReason { skip(reason); continue }
            let bucket = line.bucket
            // A line billing more than a day (a monthly row) cannot show whether its month was
            // complete: only shorter buckets say what an export covers.
            let oneDay = VendorCell.isOneDay(.init(from: bucket.from.microseconds, to: bucket.to.microseconds, tag: ""))
            if oneDay {
                let span = ledger.usageSpans[entry.file]
                ledger.usageSpans[entry.file] = (min(span?.from ?? bucket.from, bucket.from), max(span?.to ?? bucket.to, bucket.to))
            } else {
                ledger.multiDayLines += 1
            }
            // The last instant a line bills, not its start: a UBL line of two months was said to end where it began.
            let lastInstant = Timestamp(microseconds: bucket.to.microseconds - 1)
            ledger.lineDates = (min(ledger.lineDates?.first ?? bucket.from, bucket.from), max(ledger.lineDates?.last ?? lastInstant, lastInstant))
            let model = line.vendorModel.flatMap { vm in canonical(vm) ?? (line.modelIsCanonical && line.quantity != nil ? vm : nil) }
            // Money going back without a quantity (a refund of usage) is not netted here: it would
            // lower the vendor's volume by an amount nobody priced. It blocks corrections on its model.
            if line.isCorrection, line.quantity == nil {
                // A correction of money alone changes no usage.
                skip("correction_money_only")
                continue
            }
            if let a = line.amount, a < 0, line.quantity == nil {
                skip("credit")
                if o.range.contains(line.date) {
                    if let model {
                        refunds[model, default: 0] += a
                    } else {
                        // Money back on usage of a model the card does not place: any model's.
                        unknownModels.count += 1
                        unknownModels.amount += a
                    }
                }
                continue
            }
            if bucket.to <= o.range.from || bucket.from >= o.range.to {
                skip(line.isCorrection ? "correction_for_other_period:\(line.date.monthString)" : "out_of_period")
                continue
            }
            if bucket.from < o.range.from || bucket.to > o.range.to {
                // Half of this bucket is outside the period: its volume cannot be split by hour.
                ledger.straddling.append(try! TimeRange(from: max(bucket.from, o.range.from), to: min(bucket.to, o.range.to)))
                ledger.straddlingSpan = (
                    min(ledger.straddlingSpan?.from ?? bucket.from, bucket.from), max(ledger.straddlingSpan?.to ?? bucket.to, bucket.to)
                )
                skip("straddles_period")
                continue
            }
            guard let model else {
                if let unit = line.unreadUnit, line.vendorModel != nil {
                    // Its model is named; its count is in another unit, and the card has no price
                    // to read tokens from its money.
                    skip("unit_not_tokens:\(unit)")
                    ledger.unplacedLines += 1
                    otherUnits.count += 1
                    otherUnits.amount += line.amount ?? 0
                    otherUnits.units.insert(unit)
                    otherUnits.models.insert(line.vendorModel ?? "")
                    continue
                }
                skip("unknown_model")
                ledger.unplacedLines += 1
                unknownModels.count += 1
                unknownModels.amount += line.amount ?? 0
                continue
            }
            guard let tokenType = line.tokenType ?? line.vendorModel.flatMap(aliasTokenType) else {
                skip("unknown_token_type")
                ledger.unplacedLines += 1
                blockedNegative[CellKey(model: model), default: ("unknown_token_type", 0)].amount += line.amount ?? 0
                continue
            }
            // Tokens given back by a refund or credit note are set aside, not netted: it says
            // neither which usage it returns nor whether those tokens were served (a price fix
            // restates the whole quantity). Corrections of that model × token type are held. So
            // is any line of negative tokens, whatever the format calls it (a FOCUS correction or
            // usage row, an OpenAI cost result): netted, it proposed taking them off the meter. A
            // correction billed again in full for its charge period nets (above).
            if reversals.contains(index), restatedKeys.insert(restatement(line)).inserted, let billed = rebilled[restatement(line)] {
                restatedLower[CellKey(model: model, tokenType: tokenType), default: 0] &+= billed.back &- billed.given
            }
            if line.isRefund || ((line.quantity ?? 0) < 0 && !billedAgain(index, line)) {
                skip("refund")
                tokenRefunds[CellKey(model: model, tokenType: tokenType), default: (0, 0)].tokens &+= line.quantity ?? 0
                tokenRefunds[CellKey(model: model, tokenType: tokenType), default: (0, 0)].amount += line.amount ?? 0
                continue
            }
            // A list price below what the line bills (a discount cannot raise a price): a cell cut
            // short in a download (`…,15.486105,1`), or a list of something else. Volume comes from
            // the list where one is given, so such a line's is unknown (1/15 of it was read, and
            // proposed off the meter).
            // Beyond both values' rounding: a list written to the cent beside money to the
            // millionth reads below it by up to half a cent (113 rows of a clean month were set aside).
            if line.quantity == nil, let list = line.listAmount, let a = line.amount, a > 0,
                a - list
                    > max(
                        2 * ExactDecimal.halfUnit(ofScale: line.amountScale) + 2 * ExactDecimal.halfUnit(ofScale: line.listAmountScale ?? line.amountScale),
                        a / 200)
            {
                skip("list_price_below_billed")
                ledger.unplacedLines += 1
                let key = CellKey(model: model, tokenType: tokenType)
                listBelowBilled[key, default: (0, 0, line.location)].count += 1
                listBelowBilled[key]!.amount += a
                continue
            }
            var fxRate: FXConversion? = FXConversion()
            if let a = line.amount, line.currency != card.currency {
                fxRate = rate
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
            var price: ResolvedPrice?
            var unpriced: String?
            // Tokens of a modality the card does not price (image output beside text output) are
            // other tokens, not the cell's at another price: stated or not, they are set aside.
            var otherTokens = false
            do {
                price = try priced(PriceKey(model: model, tokenType: tokenType, date: line.date, labels: line.labels)).get()
            } catch let PriceFailure.noRateForTier(_, _, label) {
                unpriced = "no_rate_for_tier"
                tierNotes.insert("\(model) \(label)")
                // Whichever label failed first (`context=long` sorts before `modality`).
                otherTokens = line.labels["modality"].map { !card.isBaseLabel("modality", $0, model: model) } ?? false
            } catch {
                unpriced = "no_rate"
            }
            if unpriced == "no_rate_for_tier", line.quantity != nil, !otherTokens {
                unpricedStated[CellKey(model: model, tokenType: tokenType), default: 0] += 1
            }
            if let unpriced, line.quantity == nil || otherTokens {
                skip(unpriced)
                ledger.unplacedLines += 1
                blockedNegative[CellKey(model: model, tokenType: tokenType), default: ("unpriced_vendor_usage", 0)].amount += line.amount ?? 0
                continue
            }
            // Money for a span over which the card's price changes (a monthly line, a day whose
            // price changed at 17:00, a promotion inside the month) holds an unknown mix of the
            // prices: its volume lies anywhere between the quotients, so none is taken. A span the
            // card prices only in part is unpriced.
            if let price, line.quantity == nil, line.amount != nil {
                let changes = changesMemo[model] ?? card.priceChanges(model: model)
                changesMemo[model] = changes
                let inside = changes.filter { $0 > line.date && $0 < bucket.to }
                let later = inside.map { try? priced(PriceKey(model: model, tokenType: tokenType, date: $0, labels: line.labels)).get() }
                if later.contains(where: { $0 == nil }) {
                    skip("no_rate")
                    ledger.unplacedLines += 1
                    blockedNegative[CellKey(model: model, tokenType: tokenType), default: ("unpriced_vendor_usage", 0)].amount += line.amount ?? 0
                    continue
                }
                if let change = zip(inside, later).first(where: { $0.1?.perMillion != price.perMillion })?.0 {
                    skip("spans_price_change")
                    ledger.unplacedLines += 1
                    let key = CellKey(model: model, tokenType: tokenType)
                    spansPriceChange[key, default: (0, 0, line.date, bucket.to, change)].count += 1
                    spansPriceChange[key]!.amount += line.amount ?? 0
                    continue
                }
            }
            var account: String?
            switch attribution {
            case let .single(a): account = a
            case let .mapped(map, only):
                // Two of the line's ids mapped to two accounts (a workspace to one, its API key to
                // another): which account the usage is is not said; the first name in sort order won.
                let mapped = line.attribution.sorted { $0.key < $1.key }.compactMap { k, v in map[v].map { (k, v, $0) } }
                if Set(mapped.map(\.2)).count > 1 {
                    throw UsageBoxError.invalidArgument(
                        "\(line.location): the account map sends this line to "
                            + mapped.map { "\($0.2) (\($0.0) \($0.1))" }.joined(separator: " and ")
                            + "; map one of its ids only, or both to the same account", field: "account_map")
                }
                account = mapped.first?.2
                if account != nil {
                    ledger.mappedLines += 1
                } else if ledger.unmappedIDs.count < 1_000 {
                    ledger.unmappedIDs.formUnion(line.attribution.values)
                }
                if let a = account, let only, a != only {
                    otherAccounts[a, default: 0] += line.amount ?? 0
                    skip("other_account:\(a)")
                    ledger.linesForOtherAccounts += 1
                    continue
                }
                if let a = account, !o.scope.allows(a) {
                    skip("account_not_visible")
                    ledger.linesForOtherAccounts += 1
                    continue
                }
            case .none: account = nil
            }
            ledger.placedLines += 1
            for k in tenantKeys { ledger.tenantValues[k, default: []].insert(line.attribution[k] ?? "") }
            let key = CellKey(model: model, tokenType: tokenType, account: account)
            var bucketPart = VendorBucket()
            bucketPart.rows = (line.quantity ?? 0) != 0 || (line.amount ?? 0) != 0 ? 1 : 0
            let tenant = tenantKeys.sorted().first { line.attribution[$0] != nil }.map { "\($0)=\(line.attribution[$0]!)" } ?? ""
            if line.quantity != nil {
                bucketPart.statedTenants = [tenant]
                // The labels a price depends on (a value no key of the card's has is base only for
                // keys it does not price); other labels (a FOCUS row's costs) tell no tier, and a
                // set of every row's would grow a line at a time.
                let priced = line.labels.filter { !card.isBaseLabel($0.key, "\u{0}", model: model) }
                if priced.isEmpty { bucketPart.statedAnyTier = true } else { bucketPart.statedLabels = [priced] }
            } else if line.amount != nil {
                bucketPart.moneyTenants = [tenant]
                bucketPart.moneyTiers = Set(line.labels.filter { !card.isBaseLabel($0.key, $0.value, model: model) }.map { "\($0.key)=\($0.value)" })
            }
            if let q = line.quantity {
                bucketPart.stated = q
                bucketPart.hasStated = true
                // Without a card price the vendor's own amount stands (no pricing check possible).
                bucketPart.statedImpliedAmount = price.map { card.amount(for: q, at: $0) } ?? (line.amount.flatMap { a in fxRate.map { $0(a) } } ?? 0)
            }
            var moneyMissing = false
            if let a = line.amount {
                if let fxRate {
                    let converted = fxRate(a)
                    bucketPart.hasAmount = true
                    bucketPart.amount = converted
                    bucketPart.amountHalfUnits = fxRate(ExactDecimal.halfUnit(ofScale: line.amountScale))
                    bucketPart.listAmount = line.listAmount.map(fxRate.callAsFunction)
                    if line.quantity == nil, let price {
                        // Volume from the list price where the export gives it (a discount is not less usage).
                        let volumeMoney = line.listAmount.map(fxRate.callAsFunction) ?? converted
                        if line.listAmount == nil, netFileIndexes.contains(entry.file) { bucketPart.netFiles = [entry.file] }
                        bucketPart.atGivenRate = line.currency != card.currency && !(line.exchangeRate.map { $0 > 0 } ?? false)
                        bucketPart.exactTokens = card.tokens(for: volumeMoney, at: price)
                        bucketPart.moneyOnlyAmount = converted
                        // Read from a list written coarser than the money, the volume carries the list's rounding.
                        let scale = line.listAmount == nil ? line.amountScale : min(line.amountScale, line.listAmountScale ?? line.amountScale)
                        bucketPart.tolerance = fxRate(tolerance(scale, price))
                        guard ExactDecimal.roundedInt64(bucketPart.exactTokens) != nil else {
                            throw UsageBoxError.invalidArgument(
                                "\(line.location): \(ExactDecimal.text(a)) \(line.currency) is more tokens than 64 bits hold",
                                field: "invoice")
                        }
                    }
                } else {
                    moneyMissing = true
                }
            }
            if !oneDay, batch.coverage[entry.file].declared.isEmpty { ledger.undeclaredMultiDayModels.insert(key.model) }
            var cell = ledger.cells[key] ?? VendorCell()
            cell.moneyMissing = cell.moneyMissing || moneyMissing
            try cell.buckets[
                VendorCell.BucketKey(from: bucket.from.microseconds, to: bucket.to.microseconds, tag: tokenType.rawValue),
                default: VendorBucket()
            ].add(bucketPart)
            ledger.cells[key] = cell
        }

        for (key, cell) in ledger.cells.sorted(by: { $0.key < $1.key }) {
            let partial = cell.clustered.map(\.bucket).filter(\.statedCoversPart)
            guard !partial.isEmpty else { continue }
            blockedNegative[CellKey(model: key.model, tokenType: key.tokenType), default: ("stated_quantities_cover_part", 0)].amount +=
                partial.reduce(0) { $0 + $1.amount }
            statedTenantNotes[CellKey(model: key.model, tokenType: key.tokenType), default: []].formUnion(
                partial.flatMap(\.uncoveredTenants))
        }
        var omittedTiers: [CellKey: (tiers: Set<String>, amount: Decimal)] = [:]
        for (key, cell) in ledger.cells {
            for b in cell.clustered.map(\.bucket) where !b.uncoveredTiers.isEmpty {
                omittedTiers[CellKey(model: key.model, tokenType: key.tokenType), default: ([], 0)].tiers.formUnion(b.uncoveredTiers)
                omittedTiers[CellKey(model: key.model, tokenType: key.tokenType), default: ([], 0)].amount += b.amount
            }
        }
        // Either way: the counts stand for the cell, and the money of a tier they leave out has no
        // count beside it (below the meter it was proposed off it; above, the loss was short by it).
        for (key, o) in omittedTiers.sorted(by: { $0.key < $1.key }) {
            let what = key.named
            ledger.reasons.append(
                .init(
                    code: "stated_quantities_omit_tiers", effect: .blocksCell, modelID: key.model, tokenType: key.tokenType,
                    detail: "\(what): the money billed on these days includes tiers the token counts stated beside it (a usage report) "
                        + "do not name (\(o.tiers.sorted().joined(separator: ", "))): counts pulled for some tiers only stand for part of "
                        + "that usage",
                    remedy: "a usage report of every tier the cost report bills (or grouped by none), or the cost report alone",
                    amount: o.amount))
        }
        for (key, cell) in ledger.cells where cell.sum.checkedTokens == nil {
            throw UsageBoxError.invalidArgument(
                "the vendor's \(key.tokenType?.rawValue ?? "") tokens of \(key.model) overflow 64 bits; check the invoice's quantities", field: "invoice")
        }
        // A map none of whose ids names a line (written in another case than the export, or for
        // another export): every line was left unattributed and the run said only that, conclusive.
        if case let .mapped(map, _) = attribution, ledger.mappedLines == 0, !ledger.unmappedIDs.isEmpty {
            let folded = Dictionary(ledger.unmappedIDs.map { ($0.lowercased(), $0) }, uniquingKeysWith: { a, _ in a })
            let caseOnly = map.keys.sorted().compactMap { k in folded[k.lowercased()].map { "\(k) is written \($0) in the export" } }
            ledger.reasons.append(
                .init(
                    code: "account_map_matches_nothing", effect: .inconclusive,
                    detail:
                        "none of the account map's \(map.count) id(s) (\(map.keys.sorted().prefix(3).joined(separator: ", "))\(map.count > 3 ? ", …" : "")) "
                        + "names a line of the invoice, whose lines name \(ledger.unmappedIDs.sorted().prefix(3).joined(separator: ", "))"
                        + "\(ledger.unmappedIDs.count > 3 ? ", …" : "")"
                        + (caseOnly.isEmpty ? "" : "; ids are compared exactly: \(caseOnly.prefix(3).joined(separator: ", "))"),
                    remedy: "write the map's ids as the export writes them (workspace, project, subscription or account ids)"))
        }
        if unknownModels.count > 0 {
            ledger.reasons.append(
                .init(
                    code: "unplaced_vendor_usage", effect: .blocksNegative,
                    detail: "\(unknownModels.count) usage line(s) in the period name a model the card does not know; their volume could belong to any model",
                    remedy: "add the model to the rate card (or pass --rate-card with its aliases)", amount: unknownModels.amount))
        }
        if otherUnits.count > 0 {
            func listed(_ names: Set<String>) -> String {
                names.sorted().prefix(3).joined(separator: ", ") + (names.count > 3 ? ", …" : "")
            }
            ledger.reasons.append(
                .init(
                    code: "unplaced_vendor_usage", effect: .blocksNegative,
                    detail: "\(otherUnits.count) usage line(s) in the period count \(listed(otherUnits.units)), not tokens, of "
                        + "\(listed(otherUnits.models)), which the card does not price: their tokens cannot be read from their money",
                    remedy: "export the rows in tokens (ConsumedUnit Tokens), or pass --rate-card with prices for those models",
                    amount: otherUnits.amount))
        }
        // The unpriced tiers seen on a model (`context=long`), for the reasons' details.
        func tiersOf(_ model: String) -> [String] {
            tierNotes.filter { $0.hasPrefix(model + " ") }.map { String($0.dropFirst(model.count + 1)) }.sorted()
        }
        for (key, block) in blockedNegative.sorted(by: { $0.key < $1.key }) {
            let what = key.named
            let (detail, remedy): (String, String)
            switch block.code {
            case "unknown_token_type":
                (detail, remedy) = ("\(what): usage lines whose token type the plugin does not know", "map the vendor's token type in the plugin")
            case "stated_quantities_cover_part":
                let others = (statedTenantNotes[key] ?? []).map { $0.isEmpty ? "lines naming none" : $0 }.sorted().joined(separator: ", ")
                (detail, remedy) = (
                    "\(what): the token counts stated for these days (a usage report) name fewer tenants than the money billed on them "
                        + "(also \(others)): they may count part of that usage only",
                    "a usage report of every workspace or project the cost report bills, or the cost report alone"
                )
            default:
                let tiers = tiersOf(key.model)
                (detail, remedy) = (
                    "\(what): usage lines the card has no price for"
                        + (tiers.isEmpty
                            ? " (a date it does not price)"
                            : " (\(tiers.joined(separator: ", ")): never priced at the base rate)")
                        + (key.tokenType == nil ? "" : ": their tokens are in no count, so a gap either way may be short of them"),
                    "add the price to the rate card (see usagebox ratecards show)"
                )
            }
            // Tokens of one cell the card cannot price are left out of the vendor's side while the
            // meter counts them: a gap above the meter is short of them too (1,000,000 priority
            // tokens beside a 5,878,127 loss proposed +4,878,127: tester Q). Money of an unknown
            // token type could be any cell's: it holds the model's negative gaps only.
            // Money too small to matter beside the cell's priced money (a ten-thousandth: 100
            // priority tokens held a 5,878,027 loss, tester Q2) holds negatives only, as before.
            let priced = ledger.cells.filter { $0.key.model == key.model && $0.key.tokenType == key.tokenType }.values.reduce(Decimal(0)) {
                $0 + $1.vendorAmount
            }
            let wholeCell = block.code == "unpriced_vendor_usage" && key.tokenType != nil && abs(block.amount) * 10_000 > abs(priced)
            ledger.reasons.append(
                .init(
                    code: block.code, effect: wholeCell ? .blocksCell : .blocksNegative, modelID: key.model, tokenType: key.tokenType,
                    detail: detail, remedy: remedy, amount: block.amount))
        }
        for (key, count) in unpricedStated.sorted(by: { $0.key < $1.key }) {
            let what = key.named
            let tiers = tiersOf(key.model)
            ledger.reasons.append(
                .init(
                    code: "stated_usage_unpriced", effect: .note, modelID: key.model, tokenType: key.tokenType,
                    detail: "\(what): \(count) line(s) state their token counts in a tier the card does not price"
                        + (tiers.isEmpty ? "" : " (\(tiers.joined(separator: ", ")))")
                        + ": the counts are compared with the meter; what they cost is not checked against the card",
                    remedy: "add the price to the rate card (see usagebox ratecards show)"))
        }
        for (code, m) in missingFX.sorted(by: { $0.key < $1.key }) {
            let currency = code.isEmpty ? "a blank currency" : code
            ledger.reasons.append(
                .init(
                    code: "missing_fx", effect: m.stated ? .note : .inconclusive,
                    detail: m.stated
                        ? "\(m.count) line(s) in \(currency) have no exchange rate to \(card.currency); their stated quantities are compared, their money is not"
                        : "\(m.count) line(s) in \(currency) have no exchange rate to \(card.currency) and state no quantity: their volume is unknown",
                    remedy: code.isEmpty
                        ? "fill in the export's currency column (a blank currency cannot be given a rate)"
                        : "pass --fx \(currency)=RATE (units of \(card.currency) per \(currency))", amount: m.amount))
        }
        for (model, amount) in refunds.sorted(by: { $0.key < $1.key }) {
            ledger.reasons.append(
                .init(
                    code: "usage_refund", effect: .blocksModel, modelID: model,
                    detail: "\(model): usage refunded as money with no quantity; the volume it takes back is unknown",
                    remedy: "an export that states the refunded quantity", amount: amount))
        }
        for (key, r) in tokenRefunds.sorted(by: { $0.key < $1.key }) {
            let what = key.named
            ledger.reasons.append(
                .init(
                    code: "usage_refund", effect: .blocksCell, modelID: key.model, tokenType: key.tokenType,
                    detail: "\(what): a refund or credit note gives back \(r.tokens.magnitude) tokens, set aside (listed in unmapped): "
                        + "it may return an earlier period's usage (a CUR refund is dated over its billing period) or fix a price restated "
                        + "over the whole quantity, and it does not say whether those tokens were served",
                    remedy: "ask the vendor what the refund or credit returns; other models' and token types' corrections stand", amount: r.amount))
        }
        for (key, tokens) in restatedLower.sorted(by: { $0.key < $1.key }) {
            ledger.reasons.append(
                .init(
                    code: "usage_restated_lower", effect: .blocksNegative, modelID: key.model, tokenType: key.tokenType,
                    detail: "\(key.named): corrections reverse usage rows whole and bill \(tokens) fewer tokens in their place; "
                        + "the vendor does not say whether those were served, so over-metering there is held; under-metering is corrected "
                        + "to what the restatement bills, short by those tokens if they were served (never more than billed)",
                    remedy: "ask the vendor what the restatement takes back"))
        }
        for (key, spans) in spansPriceChange.sorted(by: { $0.key < $1.key }) {
            let what = key.named
            ledger.reasons.append(
                .init(
                    code: "line_spans_price_change", effect: .blocksCell, modelID: key.model, tokenType: key.tokenType,
                    detail: "\(what): \(spans.count) line(s) bill money alone for a span over which the card's price changes "
                        + "(\(spans.from.rfc3339) – \(spans.to.rfc3339), changing at \(spans.change.rfc3339), among them): "
                        + "the volume lies between what each price gives, set aside",
                    remedy: "an export by day (or by hour, where the price changed within a day), or one that states quantities",
                    amount: spans.amount))
        }
        for (key, l) in listBelowBilled.sorted(by: { $0.key < $1.key }) {
            ledger.reasons.append(
                .init(
                    code: "list_price_below_billed", effect: .blocksCell, modelID: key.model, tokenType: key.tokenType,
                    detail: "\(key.named): \(l.count) line(s) bill more than their list price (the first at "
                        + "\(l.first)), which no discount does: a value cut short (a download stopped mid-cell) or another column's; their "
                        + "volume is unknown, set aside",
                    remedy: "export the file again and check its last lines", amount: l.amount))
        }
        if !otherAccounts.isEmpty {
            ledger.reasons.append(
                .init(
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

    /// `model token_type` (the model alone when compared per model), as reasons name a cell.
    var named: String { tokenType.map { "\(model) \($0.rawValue)" } ?? model }
}
