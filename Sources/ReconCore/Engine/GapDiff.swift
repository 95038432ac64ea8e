import Foundation
import Metering

/// Stage 6: vendor against meter per cell, rows per model × token type with money beside every
/// figure, and the shape of the gaps.
struct GapDiff: Sendable {
    var vendor: [CellKey: VendorCell]
    var metered: [CellKey: Int64]
    var meteredDaily: [CellKey: [Int64: Int64]]
    var edges: [CellKey: (start: [Int: Int64], end: [Int: Int64])]
    /// Net tokens of the corrections already recorded per cell (inside `metered`).
    var corrected: [CellKey: Int64] = [:]
    var models: [ReconciliationReport.ModelRow]
    var total: ReconciliationReport.Total
    var shape: GapShape
    var impliedFactor: Decimal?
    var unmeteredTokenTypes: [TokenType]
    /// Realized price per token per model × token type (vendor money ÷ vendor tokens, else the card's).
    var unitPrices: [CellKey: Decimal]
    /// Per model × token type over every account, worked out once: the day-by-day evidence asks
    /// for them per finding and per day, and filtering every cell each time made a run of 1,200
    /// accounts take minutes (quadratic in accounts). Set by `compute`.
    var vendorDailyByModelType: [CellKey: [Int64: BucketSum]] = [:]
    var undatedModelTypes: Set<CellKey> = []
    var meteredDailyByModelType: [CellKey: [Int64: Int64]] = [:]
    var meteredByModelType: [CellKey: Int64] = [:]

    /// Computed money is rounded half-even to this many decimals (vendor amounts stay exact).
    static let moneyScale = 6

    var keys: [CellKey] { Set(vendor.keys).union(metered.keys).sorted() }

    /// Each model × token type row beyond tolerance, with its cell (over every account).
    var gappedRows: [(key: CellKey, row: ReconciliationReport.TokenTypeRow)] {
        models.flatMap { m in m.tokenTypes.filter(\.beyondTolerance).map { (CellKey(model: m.modelID, tokenType: $0.tokenType), $0) } }
    }

    func unitPrice(_ key: CellKey) -> Decimal { unitPrices[key.modelType] ?? 0 }

    func money(_ tokens: Int64, _ key: CellKey) -> Decimal {
        ExactDecimal.rounded(Decimal(exactly: tokens) * unitPrice(key), scale: Self.moneyScale)
    }

    /// Metered usage of a cell's model × token type over every account.
    func meteredModelType(_ key: CellKey) -> Int64 { meteredByModelType[key.modelType] ?? 0 }

    static func compute(vendor v: VendorLedger, meter m: MeterLedger, card: any RateCardConverter, range: TimeRange) throws -> GapDiff {
        // Every figure below is a sum or difference of parts of these: bounded here once, none of
        // them can overflow (one tenant's 2^63 − 1 event took the server down in the sums).
        var magnitude: UInt64 = 0
        let parts =
            m.cells.values.map(\.magnitude) + m.corrected.values.map(\.magnitude)
            + m.daily.values.flatMap { $0.values.map(\.magnitude) } + v.cells.values.map { $0.tokens.magnitude }
        for part in parts {
            let (sum, overflow) = magnitude.addingReportingOverflow(part)
            guard !overflow, sum <= UInt64(Int64.max / 4) else {
                throw UsageBoxError.invalidArgument(
                    "the tokens compared (metered and billed) add up past what 64 bits hold; reconcile one account, or a shorter period",
                    field: "from")
            }
            magnitude = sum
        }
        var vendor = v.cells
        var metered = m.cells
        var meteredDaily = m.daily
        var edges = m.edges
        var corrected = m.corrected
        // Models compared per model: every model when the meter has no token types, else those with
        // untyped usage (an untyped row beside typed ones would read as its own over-metering).
        let perModel: (String) -> Bool = { model in !m.hasTokenType || m.untypedModels.contains(model) }
        if vendor.keys.contains(where: { perModel($0.model) }) || metered.keys.contains(where: { perModel($0.model) }) {
            func collapse(_ k: CellKey) -> CellKey { perModel(k.model) ? CellKey(model: k.model, tokenType: nil, account: k.account) : k }
            var merged: [CellKey: VendorCell] = [:]
            for (k, c) in vendor {
                guard perModel(k.model) else { merged[k] = c; continue }
                try merged[collapse(k), default: VendorCell()].merge(c)
            }
            vendor = merged
            metered = metered.reduce(into: [:]) { $0[collapse($1.key), default: 0] += $1.value }
            corrected = corrected.reduce(into: [:]) { $0[collapse($1.key), default: 0] &+= $1.value }
            meteredDaily = meteredDaily.reduce(into: [:]) { out, kv in
                for (d, q) in kv.value { out[collapse(kv.key), default: [:]][d, default: 0] += q }
            }
            edges = edges.reduce(into: [:]) { out, kv in
                var e = out[collapse(kv.key)] ?? ([:], [:])
                // Hours outside the period are not bounded above: wrapping only spoils a boundary match.
                for (h, q) in kv.value.start { e.start[h, default: 0] &+= q }
                for (h, q) in kv.value.end { e.end[h, default: 0] &+= q }
                out[collapse(kv.key)] = e
            }
        }

        var unitPrices: [CellKey: Decimal] = [:]
        var sums: [CellKey: BucketSum] = [:]
        for (k, c) in vendor { for b in c.clustered { sums[k.modelType, default: BucketSum()].add(b.bucket) } }
        let byModelType = sums.mapValues { (tokens: $0.tokens, amount: $0.amount, tolerance: $0.tolerance) }
        let listAmounts = sums.compactMapValues(\.listAmount)
        let allModelTypes = Set(vendor.keys.map(\.modelType)).union(metered.keys.map(\.modelType))
        for key in allModelTypes {
            if let agg = byModelType[key], agg.tokens > 0, agg.amount != 0 {
                unitPrices[key] = agg.amount / Decimal(exactly: agg.tokens)
            } else if let tt = key.tokenType, let p = try? card.price(model: key.model, tokenType: tt, date: range.from, labels: [:]) {
                unitPrices[key] = p.perToken
            }
        }

        var diff = GapDiff(
            vendor: vendor, metered: metered, meteredDaily: meteredDaily, edges: edges, corrected: corrected, models: [],
            total: .init(metered: 0, vendor: 0, gap: 0, gapAmount: .zero),
            shape: .none, impliedFactor: nil, unmeteredTokenTypes: [], unitPrices: unitPrices)
        for (k, c) in vendor {
            let clustered = c.clustered
            if clustered.contains(where: { !VendorCell.isOneDay($0.key) }) { diff.undatedModelTypes.insert(k.modelType) }
            for (bucket, b) in clustered {
                diff.vendorDailyByModelType[k.modelType, default: [:]][Timestamp(microseconds: bucket.from).day, default: BucketSum()].add(b)
            }
        }
        for (k, days) in meteredDaily {
            for (d, q) in days { diff.meteredDailyByModelType[k.modelType, default: [:]][d, default: 0] += q }
        }
        for (k, q) in metered { diff.meteredByModelType[k.modelType, default: 0] += q }
        var rows: [String: [ReconciliationReport.TokenTypeRow]] = [:]
        for key in allModelTypes.sorted() {
            let agg = byModelType[key] ?? (0, 0, 0)
            let meteredTotal = diff.meteredModelType(key)
            var row = ReconciliationReport.TokenTypeRow(
                tokenType: key.tokenType, metered: meteredTotal, vendor: agg.tokens,
                tolerance: ExactDecimal.ceilInt64(agg.tolerance) ?? 0, vendorAmount: agg.amount,
                gapAmount: 0)
            row.gapAmount = ExactAmount(diff.money(row.gap, key))
            row.listAmount = listAmounts[key].map(ExactAmount.init)
            rows[key.model, default: []].append(row)
        }
        diff.models = rows.keys.sorted().map { ReconciliationReport.ModelRow(modelID: $0, tokenTypes: rows[$0]!) }
        let totalMetered = diff.models.reduce(Int64(0)) { $0 + $1.metered }
        let totalVendor = diff.models.reduce(Int64(0)) { $0 + $1.vendor }
        diff.total = .init(
            metered: totalMetered, vendor: totalVendor, gap: totalVendor - totalMetered,
            gapAmount: ExactAmount(diff.models.reduce(Decimal(0)) { $0 + $1.gapAmount.value }))
        // A factor comes out of converting money; a token count the vendor states has none.
        let pricedFromMoney = Set(sums.filter { !$0.value.allStated }.map(\.key.model))
        (diff.shape, diff.impliedFactor) = shape(
            diff.models, totalMetered: totalMetered, totalVendor: totalVendor, pricedFromMoney: pricedFromMoney)

        var vendorByType: [TokenType: Int64] = [:], meteredByType: [TokenType: Int64] = [:]
        for row in diff.models.flatMap(\.tokenTypes) {
            guard let tt = row.tokenType else { continue }
            vendorByType[tt, default: 0] += row.vendor
            meteredByType[tt, default: 0] += row.metered
        }
        diff.unmeteredTokenTypes = vendorByType.filter { $0.value > 0 && (meteredByType[$0.key] ?? 0) == 0 }.map(\.key).sorted()
        return diff
    }

    /// `none` when no model × token type is beyond tolerance (equal and opposite token-type gaps
    /// are not `none`); `uniform` when at least two models are off, all of one sign, every metered
    /// model is off, each within 0.5 points of the total's percentage, and no token type is off the
    /// other way, and the vendor billed something, some of it in money (`pricedFromMoney`: a
    /// stated token count off by the same share everywhere is a meter's loss, not a price); else
    /// `localized`.
    static func shape(
        _ models: [ReconciliationReport.ModelRow], totalMetered: Int64, totalVendor: Int64, pricedFromMoney: Set<String>? = nil
    ) -> (GapShape, Decimal?) {
        let rowsBeyond = models.flatMap(\.tokenTypes).filter(\.beyondTolerance)
        guard !rowsBeyond.isEmpty else { return (.none, nil) }
        let gapped = models.filter(\.beyondTolerance)
        // A vendor that billed nothing (or only credits) is no factor of the meter.
        guard gapped.count >= 2, totalMetered != 0, totalVendor > 0, gapped.contains(where: { pricedFromMoney?.contains($0.modelID) ?? true })
        else { return (.localized, nil) }
        let totalPct = Decimal(exactly: totalVendor - totalMetered) * 100 / Decimal(exactly: totalMetered)
        let signs = Set(gapped.map { $0.gap > 0 } + rowsBeyond.map { $0.gap > 0 })
        let everyMetered = models.filter { $0.metered != 0 }.allSatisfy(\.beyondTolerance)
        let close = gapped.allSatisfy { m in
            m.metered != 0 && abs(Decimal(exactly: m.gap) * 100 / Decimal(exactly: m.metered) - totalPct) <= Decimal(string: "0.5")!
        }
        guard signs.count == 1, everyMetered, close else { return (.localized, nil) }
        return (.uniform, Decimal(exactly: totalVendor) / Decimal(exactly: totalMetered))
    }
}
