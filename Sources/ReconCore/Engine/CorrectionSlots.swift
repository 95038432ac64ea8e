import Metering

/// How many correction events each account has ever held — any model, token type, vendor or
/// period, by a run or by hand: the first slot a run's corrections on that account claim. A
/// run's k corrections on an account take the slots n…n+k−1 (its proposed corrections first, its
/// held ones after) and their ids name the account and the slot alone, so any two runs computed
/// from one meter state that correct the account claim the same first id — two pulls of one
/// month, an overlapping period, a run comparing a model whole beside one comparing it per
/// token type, a multi-provider FOCUS run beside the Anthropic run — and the account's one
/// writer posts one and answers the other `conflict`, even from two processes at once. Any
/// correction posted on the account since a run moves the count on, which apply compares
/// (`MeterBasis.slot`). Counted per account, not per model: a correction by hand under an alias
/// of the model (`gpt-4o` for `gpt-4o-2024-08-06`, another case, no token type), which a fresh
/// run reads as the model, passed every per-model check.
struct CorrectionSlots: Sendable {
    var counts: [String: Int64] = [:]

    func count(account: String) -> Int64 { counts[account] ?? 0 }

    /// The id of the correction in an account's `slot`.
    static func eventID(account: String, slot: Int64) -> String {
        "recon_" + String(sha256Hex(Array("slot|\(account)|\(slot)".utf8)).prefix(40))
    }

    /// Every correction on `accounts` from 1970 (events cannot be older) to 2100 (corrections
    /// are dated at their period's end, never past a few minutes from now; every backend's time
    /// types reach it).
    static func read(accounts: Set<String>, store: any MeterStore) async throws -> CorrectionSlots {
        var out = CorrectionSlots()
        guard !accounts.isEmpty else { return out }
        let allTime = try TimeRange(from: Timestamp(microseconds: 0), to: Timestamp(rfc3339: "2100-01-01T00:00:00Z")!)
        let r = try await store.usage(
            UsageQuery(
                scope: .accounts(accounts.sorted()), range: allTime, groupBy: [.accountID],
                filters: [UsageFilter(field: .kind, op: .eq, values: [EventKind.correction.rawValue])]))
        for g in r.groups {
            guard let account = g.keys[0] else { continue }
            out.counts[account, default: 0] += g.aggregate.count
        }
        // A slot whose id another kind of event holds (a Usage event sent under `recon_…`) is
        // skipped: every fresh run proposed that id again and every apply of it conflicted.
        for account in accounts.sorted() {
            var slot = out.count(account: account)
            for _ in 0..<16 {
                let held = try await store.storedEvents(account: account, ids: [eventID(account: account, slot: slot)])
                guard let other = held.first, other.kind != .correction else { break }
                slot += 1
            }
            if slot != out.count(account: account) { out.counts[account] = slot }
        }
        return out
    }
}
