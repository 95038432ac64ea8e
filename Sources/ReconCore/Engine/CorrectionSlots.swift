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
    /// Correction events per account and the model id they were written under.
    var counts: [String: [String: Int64]] = [:]

    /// The model's corrections: those under its canonical id and under any id holding it (a dated
    /// id, `claude-sonnet-4-5-20250929`, or a Bedrock one, which a run reads as the same model — a
    /// correction by hand under one was seen by a fresh run and by no apply check). Counting a
    /// few too many (`claude-sonnet-4` in `claude-sonnet-4-5`) refuses an apply, to be run again;
    /// run and apply count alike, so the ids stay consistent.
    func count(account: String, model: String) -> Int64 {
        let canonical = model.lowercased()
        return (counts[account] ?? [:]).reduce(Int64(0)) { $1.key.lowercased().contains(canonical) ? $0 &+ $1.value : $0 }
    }

    /// The id of the correction in `slot` of an account's model.
    static func eventID(account: String, model: String, slot: Int64) -> String {
        "recon_" + String(sha256Hex(Array("slot|\(account)|\(model)|\(slot)".utf8)).prefix(40))
    }

    /// Every correction on `accounts` (of any model: few events are corrections) from 1970
    /// (events cannot be older) to 2100 (corrections are dated at their period's end, never past
    /// a few minutes from now; every backend's time types reach it).
    static func read(accounts: Set<String>, store: any MeterStore) async throws -> CorrectionSlots {
        var out = CorrectionSlots()
        guard !accounts.isEmpty else { return out }
        let allTime = try TimeRange(from: Timestamp(microseconds: 0), to: Timestamp(rfc3339: "2100-01-01T00:00:00Z")!)
        let r = try await store.usage(
            UsageQuery(
                scope: .accounts(accounts.sorted()), range: allTime, groupBy: [.accountID, .modelID],
                filters: [UsageFilter(field: .kind, op: .eq, values: [EventKind.correction.rawValue])]))
        for g in r.groups {
            guard let account = g.keys[0], let model = g.keys[1] else { continue }
            out.counts[account, default: [:]][model, default: 0] += g.aggregate.count
        }
        return out
    }
}
