import Foundation
import Metering

/// Stage 4: the meter, net of every correction already recorded, in the same cells as the
/// vendor's ledger; and every meter row that could not be compared, kept with its tokens.
struct MeterLedger: Sendable {
    var cells: [CellKey: Int64] = [:]
    /// The same per UTC day (`Timestamp.day`).
    var daily: [CellKey: [Int64: Int64]] = [:]
    /// Usage in the hours around each bound of the period, per cell: `hour offset from the bound`
    /// (−3…2; negative is before it) → tokens. A gap equal to an edge's usage is a boundary finding.
    var edges: [CellKey: (start: [Int: Int64], end: [Int: Int64])] = [:]
    /// Whether the events carry a `vendor` dimension at all, and the models with usage that does
    /// not say which vendor served it.
    var hasVendor = true
    var vendorUnknownModels = Set<String>()
    /// Correction events already recorded per cell (a correction's id includes it).
    var correctionCounts: [CellKey: Int64] = [:]
    /// Their net tokens per cell.
    var corrected: [CellKey: Int64] = [:]
    /// With `--meter-id`: other token meters holding the invoice's models, and their tokens.
    var otherMeters: [String: Int64] = [:]
    /// Canonical model → the model ids the meter wrote for it.
    var rawModels: [String: Set<String>] = [:]
    /// Whether the meter carries a `token_type` dimension at all.
    var hasTokenType = true
    /// Models with usage that has no `token_type` (compared per model).
    var untypedModels = Set<String>()
    var outOfScope: [ReconciliationReport.MeteredOutOfScope] = []
    /// The invoice's models metered on a meter whose unit is not tokens: canonical model → meter → unit.
    var otherUnits: [String: [String: String]] = [:]
    /// Raw model ids the card cannot place on events whose `vendor` names this invoice's vendor:
    /// this vendor's usage under a name the card lacks, whatever another card calls it.
    var unplacedOwnModels = Set<String>()
    /// The usage the card cannot place, per raw model id, token type and UTC day: whether it can be
    /// an invoice model's missing usage under another name is told by the days it is metered on.
    var unplacedDaily: [String: [TokenType?: [Int64: Int64]]] = [:]
    /// Tokens per account and canonical model over every account the caller may see (an admin:
    /// all of them), for the scope checks; and those accounts with any usage at all.
    var everyAccount: [String: [String: Int64]] = [:]
    var accountsWithUsage = Set<String>()

    /// Corrections set aside as another vendor's, per canonical model and the vendor they name:
    /// one named after a format that bills several providers (FOCUS, UBL) may be this vendor's.
    var correctionsUnderOtherVendors: [String: [String: Int64]] = [:]

    static let tokenUnits: Set<String> = ["tokens", "token"]

    /// Usage set aside as another vendor's (`served_by:`), per model as `place` reads the meter's
    /// id with the vendor label (nil: not counted) and per label.
    func servedElsewhere(_ place: (_ raw: String, _ label: String) -> String?) -> [String: [String: Int64]] {
        var byModel: [String: [String: Int64]] = [:]
        for row in outOfScope where row.reason.hasPrefix("served_by:") {
            let label = String(row.reason.dropFirst("served_by:".count))
            guard let raw = row.modelID, let model = place(raw, label) else { continue }
            byModel[model, default: [:]][label, default: 0] &+= row.tokens
        }
        return byModel
    }

    /// Each meter's unit, where one is set.
    static func units(_ store: any MeterStore) async throws -> [String: String] {
        var units: [String: String] = [:]
        for m in try await store.meters(scope: .all) { if let u = m.unit { units[m.meterID] = u } }
        return units
    }

    /// Whether a unit counts tokens at another scale (`tokens_k`, `kTok`, `MTok`, `tok`): its
    /// usage is the invoice's too, in a unit the comparison cannot read.
    static func isScaledTokens(_ unit: String) -> Bool {
        let u = unit.lowercased()
        return u.contains("tok") && !tokenUnits.contains(u)
    }

    /// Whether a meter's events are tokens at any scale (`tokens`, none, or `tokens_k`): what the
    /// checks of a run's moment and of its apply count, as a fresh run would read them.
    static func holdsTokens(_ meter: String?, _ units: [String: String]) -> Bool {
        inTokens(meter, units) || meter.flatMap { units[$0] }.map(isScaledTokens) == true
    }

    /// Whether a meter's events count as tokens: its unit says tokens, or it has none.
    static func inTokens(_ meter: String?, _ units: [String: String]) -> Bool {
        MeterUnit.countsTokens(meter.flatMap { units[$0] })
    }
    static let edgeHours = 3

    /// Hourly usage in the three hours each side of both bounds, for boundary findings: under
    /// this vendor's names, a label that may be one of them mistyped (`counts`) or none. Another
    /// vendor's usage there (Claude through Bedrock at 00:30) is on another bill: it made a gap of
    /// the same size read as a boundary, where apply's record of the edges leaves it out.
    mutating func readEdges(
        _ store: any MeterStore, scope: AccountScope, filters: [UsageFilter], optional: [String], counts: (String) -> Bool,
        canonical: (String?) -> String?, scopeModels: Set<String>, perAccount: Bool, range: TimeRange
    ) async throws {
        let typed = optional.contains("token_type")
        let vendorAt = optional.firstIndex(of: "vendor").map { 4 + $0 }
        let h = Timestamp.microsPerHour * Int64(Self.edgeHours)
        for (isStart, bound) in [(true, range.from), (false, range.to)] {
            let window = try TimeRange(from: Timestamp(microseconds: bound.microseconds - h), to: Timestamp(microseconds: bound.microseconds + h))
            let q = UsageQuery(
                scope: scope, range: window, groupBy: [.modelID, .accountID, .hour, .kind] + optional.map(UsageField.dimension), filters: filters)
            try await store.forEachGroup(q) { g in
                // Corrections sit in the period's last second by convention: no edge hour's usage.
                guard let model = canonical(g.keys[0]), scopeModels.contains(model), g.keys[3] != EventKind.correction.rawValue,
                    let hour = g.keys[2].flatMap({ Timestamp(rfc3339: $0) }), vendorAt.flatMap({ g.keys[$0] }).map(counts) ?? true
                else { return }
                let key = CellKey(model: model, tokenType: typed ? g.keys[4].map { TokenType($0) } : nil, account: perAccount ? g.keys[1] : nil)
                let offset = Int((hour.microseconds - bound.microseconds) / Timestamp.microsPerHour)
                var e = edges[key] ?? ([:], [:])
                if isStart { e.start[offset, default: 0] &+= g.aggregate.sum } else { e.end[offset, default: 0] &+= g.aggregate.sum }
                edges[key] = e
            }
        }
    }

    static func read(
        _ store: any MeterStore, card: any RateCardConverter, scopeModels: Set<String>, vendorNames: Set<String>,
        mayBeMisspelt: @escaping (String) -> Bool, options o: ReconciliationOptions
    ) async throws -> MeterLedger {
        var ledger = MeterLedger()
        let attribution = o.attribution
        let scope: AccountScope = attribution.account.map { .accounts([$0]) } ?? o.scope
        var filters: [UsageFilter] = []
        if let m = o.meterID { filters.append(UsageFilter(field: .meterID, op: .eq, values: [m])) }
        let units = try await Self.units(store)
        if let m = o.meterID, !Self.inTokens(m, units) {
            // A correction in tokens on it would be off by its unit's scale.
            throw UsageBoxError.invalidArgument(
                "meter \(m) counts \(units[m] ?? "?"), not tokens: an invoice's tokens cannot be compared with it", field: "meter_id")
        }

        // token_type and vendor are optional dimensions: a store that never saw one refuses to group by it.
        var optional = ["token_type", "vendor"]
        // Asked alone first: the month's read may come in sets of accounts, and a set may lack one
        // the whole has.
        while true {
            do {
                // By account too, so a store whose rows pass its bound (ClickHouse's, per rollup key)
                // reads it in sets of accounts like the month.
                try await store.forEachGroup(
                    UsageQuery(scope: scope, range: o.range, groupBy: [.accountID] + optional.map(UsageField.dimension), filters: filters)
                ) { _ in }
                break
            } catch let e as UsageBoxError where e.field.map(optional.contains) == true {
                optional.removeAll { $0 == e.field }
            }
        }
        ledger.hasTokenType = optional.contains("token_type")
        ledger.hasVendor = optional.contains("vendor")
        func canonical(_ raw: String?) -> String? {
            guard let raw else { return nil }
            return card.canonicalModel(raw) ?? (scopeModels.contains(raw) ? raw : nil)
        }
        var outside: [String: Int64] = [:]
        // Whether a `vendor` label counts as this vendor's: one of its names or one it may be mistyped as.
        let countsAsOwn: (String) -> Bool = { vendorNames.contains($0) || mayBeMisspelt($0) }
        // Every in-scope group's size added up: within 64 bits, no sum the run makes of them (per
        // model, per token type, per day, across accounts) can pass it.
        var magnitude: Int128 = 0
        let reading = UsageQuery(
            scope: scope, range: o.range, groupBy: [.modelID, .accountID, .meterID, .day, .kind] + optional.map(UsageField.dimension),
            filters: filters)
        try await store.forEachGroup(reading) { g in
            let raw = g.keys[0], account = g.keys[1], meter = g.keys[2]
            let day = g.keys[3].flatMap { Timestamp(date: $0) }?.day
            let isCorrection = g.keys[4] == EventKind.correction.rawValue
            let tokenType: TokenType? = ledger.hasTokenType ? g.keys[5].map { TokenType($0) } : nil
            let servedBy: String? = ledger.hasVendor ? g.keys[ledger.hasTokenType ? 6 : 5] : nil
            let unit = meter.flatMap { units[$0] }
            if let unit, !MeterUnit.countsTokens(unit) {
                outside["\(raw ?? "")|\(meter ?? "")|meter_unit:\(unit)", default: 0].addSaturating(g.aggregate.sum)
                if let model = canonical(raw), scopeModels.contains(model), let meter, servedBy.map(vendorNames.contains) ?? true {
                    ledger.otherUnits[model, default: [:]][meter] = unit
                }
                return
            }
            if let servedBy, !vendorNames.contains(servedBy) {
                outside["\(raw ?? "")|\(meter ?? "")|served_by:\(servedBy)", default: 0].addSaturating(g.aggregate.sum)
                if isCorrection, let model = canonical(raw), scopeModels.contains(model) {
                    ledger.correctionsUnderOtherVendors[model, default: [:]][servedBy, default: 0] &+= g.aggregate.sum
                }
                return
            }
            guard let model = canonical(raw), scopeModels.contains(model) else {
                outside["\(raw ?? "")|\(meter ?? "")|\(raw == nil ? "no_model" : "model_unknown_to_card")", default: 0].addSaturating(g.aggregate.sum)
                if let raw, servedBy != nil { ledger.unplacedOwnModels.insert(raw) }
                if let raw, let day { ledger.unplacedDaily[raw, default: [:]][tokenType, default: [:]][day, default: 0] &+= g.aggregate.sum }
                return
            }
            if ledger.hasTokenType, tokenType == nil { ledger.untypedModels.insert(model) }
            if servedBy == nil { ledger.vendorUnknownModels.insert(model) }
            let key = CellKey(model: model, tokenType: tokenType, account: attribution.isPerAccount ? account : nil)
            magnitude += Int128(g.aggregate.sum.magnitude)
            let (sum, overflow) = ledger.cells[key, default: 0].addingReportingOverflow(g.aggregate.sum)
            guard !overflow, magnitude <= Int128(Int64.max) else {
                throw UsageBoxError.invalidArgument(
                    "the metered usage of \(model)\(overflow ? "" : " and the invoice's other models") adds up past 64 bits; reconcile a shorter period",
                    field: "from")
            }
            ledger.cells[key] = sum
            if isCorrection {
                ledger.correctionCounts[key, default: 0] += g.aggregate.count
                ledger.corrected[key, default: 0] &+= g.aggregate.sum
            }
            // Day by day is usage: a correction is dated at its period's last second by
            // convention, not used on that day (it would read as that day's traffic).
            if let day, !isCorrection { ledger.daily[key, default: [:]][day, default: 0] &+= g.aggregate.sum }
            if let raw { ledger.rawModels[model, default: []].insert(raw) }
        }
        if let only = o.meterID {
            // The invoice bills every meter the account counts its models on, not only the one named.
            let meters = try await store.usage(UsageQuery(scope: scope, range: o.range, groupBy: [.meterID, .modelID]))
            for g in meters.groups {
                guard let m = g.keys[0], m != only, let model = canonical(g.keys[1]), scopeModels.contains(model), g.aggregate.sum != 0 else { continue }
                if Self.inTokens(m, units) {
                    ledger.otherMeters[m, default: 0] &+= g.aggregate.sum
                } else {
                    ledger.otherUnits[model, default: [:]][m] = units[m]
                }
            }
        }
        try await ledger.readEdges(
            store, scope: scope, filters: filters, optional: optional, counts: countsAsOwn,
            canonical: canonical, scopeModels: scopeModels, perAccount: attribution.isPerAccount, range: o.range)
        ledger.outOfScope = outside.sorted { $0.key < $1.key }.map { key, tokens in
            let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            return .init(modelID: parts[0].isEmpty ? nil : parts[0], meterID: parts[1].isEmpty ? nil : parts[1], tokens: tokens, reason: parts[2])
        }

        // Every account the caller may see (an admin: all). A scoped caller's run is held whatever
        // the others metered (`invoice_scope_unchecked`) and names none of them, so reading theirs
        // told it nothing, and their errors (a hidden account's sums past 64 bits, its groups past
        // the read's limit) failed its run. Every token meter, not only
        // `--meter-id`'s (another account's usage on its own meter is billed all the same), and
        // not usage another vendor served (a team's Claude through Bedrock is on no Anthropic bill).
        // Meters in no token unit are filtered out rather than grouped by: an org's accounts ×
        // models × meters would reach the read's group limit long before its accounts × models.
        let notTokens = units.filter { !tokenUnits.contains($0.value.lowercased()) && !Self.isScaledTokens($0.value) }.keys.sorted()
        let scopeList = ModelID.LooseModels(scopeModels.sorted())
        // Labels are read across every account, whether or not the run's own carry them (apply
        // reads them so: an account sending no `vendor` made another's Bedrock-labelled Claude
        // count here and not at apply).
        var byVendor = true
        while true {
            let all = UsageQuery(
                scope: o.scope, range: o.range, groupBy: [.accountID, .modelID] + (byVendor ? [.dimension("vendor")] : []),
                filters: notTokens.isEmpty ? [] : [UsageFilter(field: .meterID, op: .notIn, values: notTokens)])
            do {
                var every: [String: [String: Int64]] = [:]
                try await store.forEachGroup(all) { g in
                    // A label that may be this vendor's mistyped counts: another account's `Anthropic`
                    // left out, an org-wide bill's share of it was proposed on the run's account.
                    guard let account = g.keys[0], !byVendor || (g.keys[2].map(countsAsOwn) ?? true) else { return }
                    // Loosely too (`claude-sonnet-4.5`): another account's usage of the invoice's models
                    // under a spelling the card does not know passed the scope check.
                    if let model = canonical(g.keys[1]) ?? g.keys[1].flatMap(scopeList.match), scopeModels.contains(model) {
                        every[account, default: [:]][model, default: 0] &+= g.aggregate.sum
                    }
                }
                ledger.everyAccount = every
                break
            } catch let e as UsageBoxError where byVendor && e.field == "vendor" {
                byVendor = false  // no event of any account names a vendor
            }
        }
        // Accounts with any usage (on `--meter-id` when given), whatever its unit.
        let accounts = try await store.usage(
            UsageQuery(
                scope: o.scope, range: o.range, groupBy: [.accountID],
                filters: o.meterID.map { [UsageFilter(field: .meterID, op: .eq, values: [$0])] } ?? []))
        for g in accounts.groups { if let account = g.keys[0] { ledger.accountsWithUsage.insert(account) } }
        return ledger
    }
}

extension Int64 {
    /// Adds, stopping at the largest or smallest value: a total reported, never one a run
    /// decides from (an out-of-scope row of 5e18 tokens twice trapped, and stopped the server).
    fileprivate mutating func addSaturating(_ other: Int64) {
        let (sum, overflow) = addingReportingOverflow(other)
        self = overflow ? (other > 0 ? .max : .min) : sum
    }
}

/// What a meter's unit says its events count, as reconcile and the FOCUS export read it.
public enum MeterUnit {
    /// Tokens: the unit says so (`tokens`, `token`, any case), or the meter has none.
    public static func countsTokens(_ unit: String?) -> Bool {
        unit.map { MeterLedger.tokenUnits.contains($0.lowercased()) } ?? true
    }
}
