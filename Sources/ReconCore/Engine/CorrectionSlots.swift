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
    /// Slots from an account's count on whose id some stored event sits already (a Usage event
    /// sent under `recon_…`, or a correction of a run that skipped such a slot): a run's ids skip
    /// them. Every fresh run proposed such an id again and every apply of it conflicted, for good.
    var held: [String: Set<Int64>] = [:]

    /// The correction count, which apply compares (`MeterBasis.slot`).
    func count(account: String) -> Int64 { counts[account] ?? 0 }

    /// The slot of an account's `index`th correction of a run: the slots from its count on, held
    /// ones skipped.
    func slot(account: String, index: Int64) -> Int64 {
        var slot = count(account: account), free: Int64 = 0
        let taken = held[account] ?? []
        while true {
            if !taken.contains(slot) {
                if free == index { return slot }
                free += 1
            }
            slot += 1
        }
    }

    /// The id of the correction in an account's `slot`.
    static func eventID(account: String, slot: Int64) -> String {
        "recon_" + String(sha256Hex(Array("slot|\(account)|\(slot)".utf8)).prefix(40))
    }

    /// Slots looked up past the count beyond the run's corrections on the account: room to skip.
    static let slack = 8

    /// Every correction on `accounts` from 1970 (events cannot be older) to 2100 (corrections
    /// are dated at their period's end, never past a few minutes from now; every backend's time
    /// types reach it). `holding`: for a run assigning ids, how many corrections it may make on
    /// each account; the slots they may take are looked up for held ids.
    static func read(accounts: Set<String>, store: any MeterStore, holding: [String: Int]? = nil) async throws -> CorrectionSlots {
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
        guard let holding else { return out }
        for account in accounts.sorted() {
            let first = out.count(account: account)
            let window = Int64(min((holding[account] ?? 0) + slack, StoredEventLookup.maxIDs))
            let slots = Dictionary(uniqueKeysWithValues: (first..<first + window).map { (eventID(account: account, slot: $0), $0) })
            let stored = try await store.storedEvents(account: account, ids: Array(slots.keys))
            let taken = Set(stored.compactMap { slots[$0.eventID] })
            if !taken.isEmpty { out.held[account] = taken }
        }
        return out
    }
}
