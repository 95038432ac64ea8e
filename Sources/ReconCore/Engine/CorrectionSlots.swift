import Metering

/// How many correction events each account's model has ever held — any token type, any vendor,
/// any period: the first slot a run's corrections of that model claim. A run's k corrections of
/// a model take the slots n…n+k−1 and their ids name the account, the model and the slot alone,
/// so any two runs computed from one meter state that correct the same model claim the same
/// first id — two pulls of one month, an overlapping period, a run comparing the model per
/// token type beside one comparing it whole, a multi-provider FOCUS run beside the Anthropic
/// run — and the account's one writer posts one and answers the other `conflict`, even from two
/// processes at once. A correction of the model posted since a run, by anyone, for any period,
/// moves the count on, which apply compares (`MeterBasis.slot`).
struct CorrectionSlots: Sendable {
    var counts: [String: [String: Int64]] = [:]

    func count(account: String, model: String) -> Int64 { counts[account]?[model] ?? 0 }

    /// The id of the correction in `slot` of an account's model.
    static func eventID(account: String, model: String, slot: Int64) -> String {
        "recon_" + String(sha256Hex(Array("slot|\(account)|\(model)|\(slot)".utf8)).prefix(40))
    }

    /// Every correction of `models` on `accounts` from 1970 (events cannot be older) to 2100
    /// (corrections are dated at their period's end, never past a few minutes from now; every
    /// backend's time types reach it). Corrections are written under canonical model ids.
    static func read(accounts: Set<String>, models: Set<String>, store: any MeterStore) async throws -> CorrectionSlots {
        var out = CorrectionSlots()
        guard !accounts.isEmpty, !models.isEmpty else { return out }
        let allTime = try TimeRange(from: Timestamp(microseconds: 0), to: Timestamp(rfc3339: "2100-01-01T00:00:00Z")!)
        let r = try await store.usage(
            UsageQuery(
                scope: .accounts(accounts.sorted()), range: allTime, groupBy: [.accountID, .modelID],
                filters: [
                    UsageFilter(field: .kind, op: .eq, values: [EventKind.correction.rawValue]),
                    UsageFilter(field: .modelID, op: .in, values: models.sorted()),
                ]))
        for g in r.groups {
            guard let account = g.keys[0], let model = g.keys[1] else { continue }
            out.counts[account, default: [:]][model, default: 0] += g.aggregate.count
        }
        return out
    }
}
