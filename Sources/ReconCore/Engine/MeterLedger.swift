import Foundation
import Metering

/// Stage 4: the meter, net of every correction already recorded, in the same cells as the
/// vendor's ledger; and every meter row that could not be compared, kept with its tokens.
struct MeterLedger: Sendable {
    var cells: [CellKey: Int64] = [:]
    /// Canonical model → the model ids the meter wrote for it.
    var rawModels: [String: Set<String>] = [:]
    /// Whether the meter carries a `token_type` dimension at all.
    var hasTokenType = true
    /// Models with usage that has no `token_type` (compared per model).
    var untypedModels = Set<String>()
    var outOfScope: [ReconciliationReport.MeteredOutOfScope] = []
    /// Tokens per account and canonical model over every account (not only the caller's), for the
    /// scope checks; and the accounts with any usage at all.
    var everyAccount: [String: [String: Int64]] = [:]
    var accountsWithUsage = Set<String>()

    static let tokenUnits: Set<String> = ["tokens", "token"]

    static func read(_ store: any MeterStore, card: any RateCardConverter, scopeModels: Set<String>, options o: ReconciliationOptions)
        async throws -> MeterLedger {
        var ledger = MeterLedger()
        let attribution = o.attribution
        let scope: AccountScope = attribution.account.map { .accounts([$0]) } ?? o.scope
        var filters: [UsageFilter] = []
        if let m = o.meterID { filters.append(UsageFilter(field: .meterID, op: .eq, values: [m])) }
        var units: [String: String] = [:]
        for m in try await store.meters(scope: .all) { if let u = m.unit { units[m.meterID] = u } }

        let reading: UsageResult
        do {
            reading = try await store.usage(UsageQuery(scope: scope, range: o.range,
                                                       groupBy: [.modelID, .dimension("token_type"), .accountID, .meterID], filters: filters))
        } catch let e as UsageBoxError where e.field == "token_type" {
            ledger.hasTokenType = false
            reading = try await store.usage(UsageQuery(scope: scope, range: o.range, groupBy: [.modelID, .accountID, .meterID], filters: filters))
        }
        func canonical(_ raw: String?) -> String? {
            guard let raw else { return nil }
            return card.canonicalModel(raw) ?? (scopeModels.contains(raw) ? raw : nil)
        }
        var outside: [String: Int64] = [:]
        for g in reading.groups {
            let raw = g.keys[0]
            let tokenType: TokenType? = ledger.hasTokenType ? g.keys[1].map { TokenType($0) } : nil
            let account = g.keys[ledger.hasTokenType ? 2 : 1]
            let meter = g.keys[ledger.hasTokenType ? 3 : 2]
            let unit = meter.flatMap { units[$0] }
            if let unit, !Self.tokenUnits.contains(unit.lowercased()) {
                outside["\(raw ?? "")|\(meter ?? "")|meter_unit:\(unit)", default: 0] += g.aggregate.sum
                continue
            }
            guard let model = canonical(raw), scopeModels.contains(model) else {
                outside["\(raw ?? "")|\(meter ?? "")|\(raw == nil ? "no_model" : "model_unknown_to_card")", default: 0] += g.aggregate.sum
                continue
            }
            if ledger.hasTokenType, tokenType == nil { ledger.untypedModels.insert(model) }
            let key = CellKey(model: model, tokenType: tokenType, account: attribution.isPerAccount ? account : nil)
            let (sum, overflow) = ledger.cells[key, default: 0].addingReportingOverflow(g.aggregate.sum)
            guard !overflow else {
                throw UsageBoxError.invalidArgument("the metered total of \(model) overflows 64 bits; reconcile a shorter period", field: "from")
            }
            ledger.cells[key] = sum
            if let raw { ledger.rawModels[model, default: []].insert(raw) }
        }
        ledger.outOfScope = outside.sorted { $0.key < $1.key }.map { key, tokens in
            let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            return .init(modelID: parts[0].isEmpty ? nil : parts[0], meterID: parts[1].isEmpty ? nil : parts[1], tokens: tokens, reason: parts[2])
        }

        // Every account, whatever the caller may see: an invoice shared with accounts the caller
        // cannot see is still shared. Only visible accounts are named.
        let all = try await store.usage(UsageQuery(scope: .all, range: o.range, groupBy: [.accountID, .modelID], filters: filters))
        for g in all.groups {
            guard let account = g.keys[0] else { continue }
            ledger.accountsWithUsage.insert(account)
            if let model = canonical(g.keys[1]), scopeModels.contains(model) {
                ledger.everyAccount[account, default: [:]][model, default: 0] &+= g.aggregate.sum
            }
        }
        return ledger
    }
}
