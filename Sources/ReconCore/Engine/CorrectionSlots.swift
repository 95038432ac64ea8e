import Metering

/// How many correction events each cell has ever held, whatever period they were posted for:
/// the slot a cell's next correction's id names. Counting over all time (not the run's period)
/// makes any two runs computed from one meter state claim the same id for a cell — two pulls of
/// one month, or May and May 15 to June 15 — so the account's one writer posts one and answers
/// the other `conflict`, even from two processes at once; and a correction posted to the cell
/// for any period since a run moves the slot on, which apply compares.
struct CorrectionSlots: Sendable {
    struct Key: Hashable, Sendable {
        var account: String
        var model: String
        var tokenType: String?
        var vendor: String?
    }
    var counts: [Key: Int64] = [:]
    /// False when the store cannot group by `token_type` (it never saw it): every count is the model's.
    var byTokenType = true

    /// The cell's corrections under one of `vendors` or under no vendor at all (corrections by
    /// hand often name none). Corrections are written under canonical model ids.
    func count(account: String, model: String, tokenType: String?, vendors: Set<String>) -> Int64 {
        counts.reduce(Int64(0)) { total, entry in
            let k = entry.key
            guard k.account == account, k.model == model, !byTokenType || k.tokenType == tokenType else { return total }
            if let v = k.vendor, !vendors.contains(v) { return total }
            return total &+ entry.value
        }
    }

    /// Every correction of `models` on `accounts` from 1970 (events cannot be older) to 2100
    /// (corrections are dated at their period's end, never past a few minutes from now; every
    /// backend's time types reach it).
    static func read(accounts: Set<String>, models: Set<String>, store: any MeterStore) async throws -> CorrectionSlots {
        var out = CorrectionSlots()
        guard !accounts.isEmpty, !models.isEmpty else { return out }
        let allTime = try TimeRange(from: Timestamp(microseconds: 0), to: Timestamp(rfc3339: "2100-01-01T00:00:00Z")!)
        var optional = ["token_type", "vendor"]
        while true {
            do {
                let r = try await store.usage(
                    UsageQuery(
                        scope: .accounts(accounts.sorted()), range: allTime,
                        groupBy: [.accountID, .modelID] + optional.map(UsageField.dimension),
                        filters: [
                            UsageFilter(field: .kind, op: .eq, values: [EventKind.correction.rawValue]),
                            UsageFilter(field: .modelID, op: .in, values: models.sorted()),
                        ]))
                out.byTokenType = optional.contains("token_type")
                for g in r.groups {
                    guard let account = g.keys[0], let model = g.keys[1] else { continue }
                    var i = 2
                    let tokenType = out.byTokenType ? g.keys[i] : nil
                    if out.byTokenType { i += 1 }
                    let vendor = optional.contains("vendor") ? g.keys[i] : nil
                    out.counts[Key(account: account, model: model, tokenType: tokenType, vendor: vendor), default: 0] += g.aggregate.count
                }
                return out
            } catch let e as UsageBoxError where e.field.map(optional.contains) == true {
                // A store that never saw the dimension refuses to group by it: count without it
                // (more corrections per cell, never fewer; run and apply read it the same way).
                optional.removeAll { $0 == e.field }
            }
        }
    }
}
