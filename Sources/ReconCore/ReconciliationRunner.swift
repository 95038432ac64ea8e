public import Metering

/// Runs reconciliations and keeps their record: stage 9 (record) and applying or undoing a
/// run's corrections through ingest.
public struct ReconciliationRunner: Sendable {
    public var engine: ReconciliationEngine
    public init(engine: ReconciliationEngine) { self.engine = engine }

    /// What happened to a run's corrections.
    public enum ApplyOutcome: Sendable {
        case notRequested
        /// The evidence does not allow corrections; nothing was posted.
        case refused(UsageBoxError)
        case posted(IngestResponse, heldBack: Int)
    }

    /// Runs, records and optionally applies a reconciliation. `record: false` (a dry run) still
    /// reads `log`: without earlier runs, a dry run of a period overlapping an applied one read
    /// as conclusive, where the same run recorded holds.
    public func run(
        _ options: ReconciliationOptions, store: any MeterStore, log: (any ReconciliationLog)?, record: Bool = true, apply: Bool = false,
        confirmLarge: Bool = false
    ) async throws -> (report: ReconciliationReport, outcome: ApplyOutcome) {
        precondition(record || !apply, "a run that is not recorded cannot be applied")
        var report = try await engine.run(options, store: store, log: log)
        let archive = record ? log.map(ReconciliationArchive.init) : nil
        try await archive?.save(report)
        guard apply else { return (report, .notRequested) }
        do {
            let (answer, posted) = try await Self.oneAtATime.run(Self.applying) { [report] in
                var posting = report
                let answer = try await self.post(&posting, confirmLarge: confirmLarge, store: store, log: log)
                if posting.applied { try await archive?.update(posting) }
                return (answer, posting)
            }
            report = posted
            let (response, heldBack) = answer
            try Self.requireEveryCorrectionPosted(response, report: report)
            return (report, .posted(response, heldBack: heldBack))
        } catch let e as UsageBoxError where e.code == .inconclusive {
            return (report, .refused(e))
        }
    }

    /// Applies and reverts in this process, of any run, take turns: each checks the meter and
    /// then posts, and two runs of one month applied at once both passed the check before either
    /// posted (the gap corrected twice). Two processes can still race (a 409 from the store's
    /// checks is not promised there); docs/reconciliation.md says to apply from one place.
    static let oneAtATime = KeyedSerialQueue()
    static let applying = "apply"

    /// A correction the meter refused (a conflict with an event of the same id, a unit the meter
    /// does not take) was not posted: the run is not applied as it says, and the answer must not
    /// read as success. Those that were posted stay recorded, so revert takes them back.
    static func requireEveryCorrectionPosted(_ response: IngestResponse, report: ReconciliationReport) throws {
        guard response.rejected > 0 || response.conflicts > 0 else { return }
        let why = response.errors.prefix(3).map { "\($0.code): \($0.message)" }.joined(separator: "; ")
        throw UsageBoxError(
            .conflict,
            "reconciliation \(report.id): \(response.rejected + response.conflicts) correction(s) were not posted (\(why)); "
                + "\(response.accepted) posted\(response.accepted > 0 ? " and recorded (revert takes them back)" : ""). "
                + "Run the reconciliation again against the meter as it is now", field: "id")
    }

    /// Posts a stored report's corrections (and, with `confirmLarge`, its held ones); applying
    /// twice answers duplicates. An inconclusive or reverted report is refused.
    public func apply(id: String, confirmLarge: Bool, store: any MeterStore, log: any ReconciliationLog) async throws -> ApplyAnswer {
        try await Self.oneAtATime.run(Self.applying) {
            let archive = ReconciliationArchive(log)
            guard var report = try await archive.report(id: id) else { throw UsageBoxError(.notFound, "no reconciliation \(id)", field: "id") }
            if let reverted = report.revertedAt {
                throw UsageBoxError(
                    .conflict,
                    "reconciliation \(id) was reverted at \(reverted.rfc3339): its corrections and their reverts are both on the meter; "
                        + "run the reconciliation again to propose corrections against the meter as it is now", field: "id")
            }
            // Reverted from another process, whose record this one may not have read yet: the
            // meter holds reverts of its corrections.
            let recorded = report
            func revertedOnTheMeter() async throws -> Bool {
                let present = try await Self.onTheMeter(recorded, store: store)
                return recorded.everyCorrection.contains { present.contains(Self.compensation($0).eventID) }
            }
            guard try await !revertedOnTheMeter() else {
                throw UsageBoxError(
                    .conflict,
                    "reconciliation \(id) was reverted: its corrections and their reverts are both on the meter; "
                        + "run the reconciliation again to propose corrections against the meter as it is now", field: "id")
            }
            let (response, _) = try await post(&report, confirmLarge: confirmLarge, store: store, log: log)
            if report.applied { try await archive.update(report) }
            // Reverted while this one posted: take back what it posted too (the revert reads the
            // meter again after its own post, so one of the two always sees the other).
            if response.accepted > 0, try await revertedOnTheMeter() {
                _ = try await revertNow(id: id, store: store, log: log)
                throw UsageBoxError(
                    .conflict,
                    "reconciliation \(id) was reverted while this apply posted; what it posted was taken back too. "
                        + "Run the reconciliation again to propose corrections against the meter as it is now", field: "id")
            }
            try Self.requireEveryCorrectionPosted(response, report: report)
            return ApplyAnswer(batch: response, heldNotPosted: report.heldNotPosted)
        }
    }

    /// Posts the compensating corrections of everything a run applied; reverting twice posts
    /// nothing new (the same ids answer duplicates).
    public func revert(id: String, store: any MeterStore, log: any ReconciliationLog) async throws -> IngestResponse {
        try await Self.oneAtATime.run(Self.applying) { try await revertNow(id: id, store: store, log: log) }
    }

    private func revertNow(id: String, store: any MeterStore, log: any ReconciliationLog) async throws -> IngestResponse {
        let archive = ReconciliationArchive(log)
        guard var report = try await archive.report(id: id) else { throw UsageBoxError(.notFound, "no reconciliation \(id)", field: "id") }
        let all = report.everyCorrection
        // What the meter holds of this run, not what its record says: an apply from another
        // process may have posted more than the record this one read (its record written after).
        // Read again after each post, so a correction posted before this revert's post is seen.
        var sent = Set<String>()
        var response = IngestResponse()
        for _ in 0..<4 {
            let present = try await Self.onTheMeter(report, store: store)
            let now = all.filter { present.contains($0.eventID) && !sent.contains($0.eventID) }
            guard !now.isEmpty else { break }
            response.add(try await store.ingest(try await Self.events(now.map(Self.compensation), store: store)))
            sent.formUnion(now.map(\.eventID))
            guard response.rejected == 0, response.conflicts == 0 else {
                // Never a success: the corrections whose reverts were refused stay on the meter.
                let refused = response.errors.compactMap(\.eventID).sorted()
                throw UsageBoxError(
                    .conflict,
                    "reconciliation \(id) was not reverted: \(refused.count) of its reverts were refused (\(refused.prefix(5).joined(separator: ", "))"
                        + "\(refused.count > 5 ? ", …" : "")): another event holds that id with other content, or the meter refused it "
                        + "(\(response.errors.first?.message ?? "")); its corrections stay on the meter: take them back with a Correction of your own",
                    field: "id")
            }
        }
        guard !sent.isEmpty else {
            throw UsageBoxError(.conflict, "reconciliation \(id) has no corrections on the meter: there is nothing to revert", field: "id")
        }
        if report.revertedAt == nil { report.revertedAt = Timestamp.now() }
        report.appliedEventIDs = Array(Set(report.appliedEventIDs).union(sent)).sorted()
        try await archive.update(report)
        return response
    }

    /// The ids of a run's corrections, and of their reverts, that the meter holds, read by id
    /// (however many corrections share the period's last second). Only an event with the very
    /// content the run posts under that id is its own: two runs from one meter state propose the
    /// same slot ids, told apart by their `reconciliation_id` (reverting a run never applied took
    /// back another run's corrections), and an unrelated event sent under the id (a Usage event in
    /// August) made revert post −520,000 for a correction never posted.
    static func onTheMeter(_ report: ReconciliationReport, store: any MeterStore) async throws -> Set<String> {
        var ids = Set<String>()
        for (account, corrections) in Dictionary(grouping: report.everyCorrection, by: \.accountID).sorted(by: { $0.key < $1.key }) {
            var expected: [String: UsageEvent] = [:]
            for c in corrections {
                for e in [c, compensation(c)] { expected[e.eventID] = e.event }
            }
            let wanted = expected.keys.sorted()
            for start in stride(from: 0, to: wanted.count, by: StoredEventLookup.maxIDs) {
                let stored = try await store.storedEvents(
                    account: account, ids: Array(wanted[start..<min(start + StoredEventLookup.maxIDs, wanted.count)]))
                for e in stored {
                    // Posted in the meter's unit, which the record does not hold.
                    guard var own = expected[e.eventID] else { continue }
                    own.unit = e.unit
                    if e == own { ids.insert(e.eventID) }
                }
            }
        }
        return ids
    }

    /// The card the run read model ids through: the shipped card of its fingerprint, else the
    /// text it recorded, seen through its model map. A card this binary neither ships nor can
    /// read back (a shipped card since replaced by an upgrade, a run recorded before file cards
    /// were kept) refuses: apply's checks would read late events' ids otherwise than the run did,
    /// and the new card may price the invoice otherwise too.
    func readingCard(_ report: ReconciliationReport) throws -> any RateCardConverter {
        guard let card = Self.card(of: report, shipped: engine.cards) else {
            throw UsageBoxError(
                .conflict,
                "reconciliation \(report.id) read the invoice through \(report.rateCard.vendor) rate card \(report.rateCard.version) "
                    + "(sha256 \(report.rateCard.sha256.prefix(12))…), which is not a card this usagebox ships\(report.rateCard.yaml == nil ? " (a card given as a file was not kept by runs recorded before this version)" : ", and the card the run kept cannot be read back")"
                    + ": apply's checks cannot read model ids as the run did; run the reconciliation again", field: "id")
        }
        return report.rateCard.modelMap.map { ModelMappedCard(card: card, map: $0) } ?? card
    }

    /// The card a run priced its invoice with: the shipped card of its fingerprint, else the text
    /// the run recorded (`--rate-card FILE`); nil when it is neither.
    public static func card(of report: ReconciliationReport, shipped: [String: RateCard]) -> RateCard? {
        if let card = shipped.values.first(where: { $0.fingerprint == report.rateCard.sha256 }) { return card }
        guard let text = report.rateCard.yaml, let loaded = try? RateCard.load(text: text, file: "the run's rate card"),
            loaded.fingerprint == report.rateCard.sha256
        else { return nil }
        return loaded
    }

    /// Refuses to post corrections computed against a meter that has moved since the run (a late
    /// event would otherwise be billed twice): each corrected cell must hold what it held then,
    /// and each corrected account's whole metered tokens in the period too (late events under a
    /// dated or differently written model id, or without a token type, land outside the cell's
    /// raw ids yet are the same usage; another run may have corrected the same model already),
    /// plus whatever this run already posted; and the account's usage in the hours just outside
    /// the period, which a fresh run would match a gap against as a boundary. Usage another
    /// vendor's `vendor` dimension claims,
    /// and other runs' corrections of models this one does not correct (or posted under another
    /// vendor), do not count: reconciling two vendors, then applying both, is the usual month-end.
    /// `present`: the run's corrections and reverts on the meter, as `onTheMeter` read them just before.
    func checkMeterUnchanged(
        _ report: ReconciliationReport, posting: [ProposedCorrection], present: Set<String>, store: any MeterStore
    ) async throws {
        let card = try readingCard(report)
        let units = try await MeterLedger.units(store)
        if let scope = report.scopeBasis {
            let others = try await scope.otherAccounts(
                range: report.range, store: store, counts: engine.countsAsVendor(Set(report.meterBasis.flatMap(\.vendors) + [report.vendor])),
                units: units, canonical: { card.canonicalModel($0) })
            if !others.isEmpty {
                // Neither named nor counted: the caller may be a key of this account alone (a
                // fresh run names the ones it may see), and how many others metered, and how
                // much, is not its to learn.
                throw UsageBoxError(
                    .conflict,
                    "the meter changed since reconciliation \(report.id) ran: other accounts now meter the invoice's "
                        + "models in the period, so the invoice may bill their usage too and a fresh "
                        + "run is inconclusive (other_accounts_in_scope); run the reconciliation again, with --account-map, or "
                        + "--invoice-scope account if the invoice is \(scope.accountID)'s alone", field: "id")
            }
        }
        if let map = report.mapBasis {
            let upward = Set(posting.filter { $0.quantity > 0 }.compactMap(\.modelID))
            let unmapped = try await ReconciliationReport.accounts(
                outside: Set(map.mapped), metering: map.models, range: report.range, store: store,
                counts: engine.countsAsVendor(Set(report.meterBasis.flatMap(\.vendors) + [report.vendor])), units: units,
                canonical: { card.canonicalModel($0) })
            let now = unmapped.values.flatMap { $0.filter { upward.contains($0.key) && $0.value > 0 } }
            if !now.isEmpty {
                throw UsageBoxError(
                    .conflict,
                    "the meter changed since reconciliation \(report.id) ran: "
                        + "accounts the account map does not name now meter \(Set(now.map(\.key)).sorted().joined(separator: ", ")), "
                        + "which the invoice may bill under a mapped workspace, project or key, so a "
                        + "fresh run holds the correction (unmapped_account_meters_model); add them to the map and run the reconciliation again",
                    field: "id")
            }
            // An account the map does not name, whose usage the run backs out, metering one of
            // the invoice's models since: the invoice may bill it under a mapped key, and a fresh
            // run holds its backing out (account_not_in_map).
            let mapped = Set(map.mapped)
            // (A run of one account, `--account` with a map, checks no account outside it.)
            let billedSince = Set(posting.filter { $0.quantity < 0 && !mapped.contains($0.accountID) && report.accountID == nil }.map(\.accountID))
                .filter { unmapped[$0]?.values.contains { $0 > 0 } == true }.sorted()
            if !billedSince.isEmpty {
                throw UsageBoxError(
                    .conflict,
                    "the meter changed since reconciliation \(report.id) ran: \(billedSince.joined(separator: ", ")), which the account map "
                        + "does not name and whose usage the run backs out, now meter(s) the invoice's models, so the invoice may bill that "
                        + "usage under a mapped workspace, project or key and a fresh run holds the correction (account_not_in_map); add them "
                        + "to the map and run the reconciliation again", field: "id")
            }
        }
        let all = report.everyCorrection
        func postsIn(_ b: ReconciliationReport.MeterBasis) -> (ProposedCorrection) -> Bool {
            { c in c.accountID == b.accountID && c.modelID == b.modelID && c.tokenType == b.tokenType?.rawValue }
        }
        let slotted = report.meterBasis.filter { $0.slot != nil && posting.contains(where: postsIn($0)) }
        let slots = try await CorrectionSlots.read(accounts: Set(slotted.map(\.accountID)), store: store)
        for b in report.meterBasis {
            let inCell = postsIn(b)
            guard posting.contains(where: inCell) else { continue }
            let postedHere = all.filter { inCell($0) && report.appliedEventIDs.contains($0.eventID) }
            let alreadyPosted = postedHere.reduce(Int64(0)) { $0 + $1.quantity }
            var optional = ["token_type", "vendor"]
            // Corrections are written under the canonical model id, which the meter's own ids may not be.
            var filters = [UsageFilter(field: .modelID, op: .in, values: Set(b.rawModelIDs + [b.modelID]).sorted())]
            if let m = b.meterID { filters.append(UsageFilter(field: .meterID, op: .eq, values: [m])) }
            var now: Int64 = 0
            var corrections: Int64 = 0
            while true {
                do {
                    let r = try await store.usage(
                        UsageQuery(
                            scope: .accounts([b.accountID]), range: report.range,
                            groupBy: [.meterID, .kind] + optional.map(UsageField.dimension), filters: filters))
                    now = 0
                    corrections = 0
                    for g in r.groups {
                        guard MeterLedger.inTokens(g.keys[0], units) else { continue }
                        var i = 2
                        if optional.contains("token_type") {
                            if let tt = b.tokenType, g.keys[i] != tt.rawValue { continue }
                            i += 1
                        }
                        if optional.contains("vendor"), let v = g.keys[i], !b.vendors.contains(v) { continue }
                        now += g.aggregate.sum
                        if g.keys[1] == EventKind.correction.rawValue { corrections += g.aggregate.count }
                    }
                    break
                } catch let e as UsageBoxError where e.field.map(optional.contains) == true {
                    optional.removeAll { $0 == e.field }
                }
            }
            guard now == b.metered + alreadyPosted else {
                throw UsageBoxError(
                    .conflict,
                    "the meter changed since reconciliation \(report.id) ran: \(b.accountID) \(b.modelID) "
                        + "\(b.tokenType?.rawValue ?? "") held \(b.metered) tokens then and \(now - alreadyPosted) now; "
                        + "run the reconciliation again rather than apply its corrections", field: "id")
            }
            // A correction posted and reverted since (another run's, by hand) nets to nothing, but
            // moves the cell's slot on: a run made after it claims another id, and two applies at
            // once would both post. The count must be what this run read, plus what it posted.
            if let then = b.corrections, corrections != then + Int64(postedHere.count) {
                throw UsageBoxError(
                    .conflict,
                    "the meter changed since reconciliation \(report.id) ran: \(b.accountID) \(b.modelID) "
                        + "\(b.tokenType?.rawValue ?? "") held \(then) correction(s) then and \(corrections - Int64(postedHere.count)) now "
                        + "(another run's corrections, posted or reverted since); run the reconciliation again rather than apply its corrections",
                    field: "id")
            }
            // The same for the account over everything: any correction posted on it since
            // (another period's run, applied from another process; a multi-provider FOCUS run's,
            // posted under `focus`; one by hand under an alias of the model) took this run's slot.
            if let then = b.slot {
                let mine = all.filter { $0.accountID == b.accountID && report.appliedEventIDs.contains($0.eventID) }
                let now = slots.count(account: b.accountID)
                guard now == then + Int64(mine.count) else {
                    throw UsageBoxError(
                        .conflict,
                        "the meter changed since reconciliation \(report.id) ran: \(b.accountID) held \(then) correction(s) of any model, "
                            + "period, token type or vendor then and \(now - Int64(mine.count)) now (another run's or a person's corrections, "
                            + "posted or reverted since); run the reconciliation again rather than apply its corrections", field: "id")
                }
            }
        }

        // Usage under another spelling of this vendor's name holds a model's positive gaps in a
        // run (`metered_under_unknown_vendor`), so a conclusive run positively correcting a model
        // had none then: any now arrived since, and may be the very tokens the run calls missing.
        // A run of several accounts (an account map) read every account's labels, and the hold
        // names a model, not an account: another account's mislabelled usage holds it too.
        let upwardAccounts = Set(posting.filter { $0.quantity > 0 }.map(\.accountID)).sorted()
        let labelReadings: [(scope: AccountScope, name: String, accounts: Set<String>)] =
            report.accountID == nil && !upwardAccounts.isEmpty
            ? [(.all, "the meter", Set(upwardAccounts))] : upwardAccounts.map { (.accounts([$0]), $0, [$0]) }
        for (readScope, holder, accounts) in labelReadings {
            let cells = report.meterBasis.filter { b in
                accounts.contains(b.accountID) && posting.contains { $0.quantity > 0 && $0.accountID == b.accountID && $0.modelID == b.modelID }
            }
            let names = Set(cells.flatMap(\.vendors) + [report.vendor])
            let rawModels = Set(cells.flatMap(\.rawModelIDs))
            // Under any id the run's card reads as one of the models, not only the ids the run
            // saw: a late event's dated id (`claude-sonnet-4-5-20250929`) under `vendor=Anthropic`
            // passed, and a fresh run held what apply posted.
            let models = Set(cells.map(\.modelID))
            // On the meters a fresh run reads (in tokens at any scale; the run's own, when it named one).
            let meterFilter = cells.compactMap(\.meterID).first.map { [UsageFilter(field: .meterID, op: .eq, values: [$0])] } ?? []
            let byLabel: UsageResult
            do {
                byLabel = try await store.usage(
                    UsageQuery(
                        scope: readScope, range: report.range, groupBy: [.modelID, .dimension("vendor"), .meterID], filters: meterFilter))
            } catch let e as UsageBoxError where e.code == .invalidArgument && e.field == "vendor" {
                continue  // no event read names a vendor
            }
            let mayBeMisspelt = engine.misspellings(of: names)
            let loose = ModelID.LooseModels(models.sorted())
            for g in byLabel.groups where g.aggregate.sum != 0 {
                guard let raw = g.keys[0], rawModels.contains(raw) || card.canonicalModel(raw).map(models.contains) == true || loose.match(raw) != nil,
                    MeterLedger.holdsTokens(g.keys[2], units)
                else { continue }
                guard let label = g.keys[1], mayBeMisspelt(label) else { continue }
                throw UsageBoxError(
                    .conflict,
                    "the meter changed since reconciliation \(report.id) ran: \(holder) now holds \(g.aggregate.sum) tokens of "
                        + "\(g.keys[0] ?? "") under vendor='\(label)', which may be \(report.vendor)'s usage under a mistyped label "
                        + "(a fresh run holds the correction); send vendor=\(report.vendor) on those events, then run the reconciliation again",
                    field: "id")
            }
        }

        // The cells held what they held: the account as a whole must too.
        for account in Set(posting.map(\.accountID)).sorted() {
            guard let then = report.meterBasis.first(where: { $0.accountID == account && $0.accountTokens != nil })?.accountTokens else { continue }
            let posted = all.filter { $0.accountID == account && report.appliedEventIDs.contains($0.eventID) }.reduce(Int64(0)) { $0 &+ $1.quantity }
            let now = try await ReconciliationReport.MeterBasis.accountTokens(
                account, basis: report.meterBasis, range: report.range, store: store, units: units)
            guard now == then &+ posted else {
                throw UsageBoxError(
                    .conflict,
                    "the meter changed since reconciliation \(report.id) ran: \(account) metered \(then) tokens in the period then and "
                        + "\(now &- posted) now (late events, perhaps under another model id or without a token type, or another run's "
                        + "corrections of the same models); run the reconciliation again rather than apply its corrections", field: "id")
            }
            // Just outside the period: a late event there may be the gap's usage on the other
            // side of a bound (a fresh run calls it `boundary` and corrects nothing).
            guard let edgesThen = report.meterBasis.first(where: { $0.accountID == account && $0.edgeTokens != nil })?.edgeTokens else { continue }
            let edgesNow = try await ReconciliationReport.MeterBasis.edgeTokens(
                account, basis: report.meterBasis, range: report.range, store: store, units: units,
                mayBeMisspelt: engine.misspellings(of: Set(report.meterBasis.flatMap(\.vendors) + [report.vendor])))
            guard edgesNow == edgesThen else {
                throw UsageBoxError(
                    .conflict,
                    "the meter changed since reconciliation \(report.id) ran: \(account) metered \(edgesThen) tokens in the "
                        + "\(MeterLedger.edgeHours) hours either side of the period then and \(edgesNow) now (late events that may be "
                        + "the gap's usage dated across a bound); run the reconciliation again rather than apply its corrections "
                        + "(from \(try ReconciliationReport.MeterBasis.edgeWindows(report.range)[1].to.rfc3339) "
                        + "the hours after the period no longer move)", field: "id")
            }
        }
        if let scope = report.scopeEvents {
            // Last, as the widest: a run of every account in its scope, which a fresh run holds for
            // what any of them meters since (a loosely written id, tokens_k, an untyped token, Claude
            // others sell), where the checks above read the corrected accounts.
            let counts = engine.countsAsVendor(Set(scope.vendors))
            let now = try await ReconciliationEngine.eventsAround(
                report.range, scope: scope.accounts.map { .accounts($0) } ?? .all, counts: counts, store: store
            ).counted
            // (Read before `now`: one of this run's corrections posted in between counts as another's: refused, never missed.)
            let own = Int64(report.everyCorrection.filter { present.contains($0.eventID) && counts($0.dimensions["vendor"]) }.count)
            guard now == scope.events + own else {
                throw UsageBoxError(
                    .conflict,
                    "the meter changed since reconciliation \(report.id) ran: the accounts it read hold \(now - scope.events - own) event(s) "
                        + "more (or fewer) in the period or \(MeterLedger.edgeHours) hours either side, under \(report.vendor)'s names, a label "
                        + "that may be one mistyped, or none: late usage, or another run's corrections; a fresh run reads them all. Run the "
                        + "reconciliation again rather than apply its corrections (from "
                        + "\(try ReconciliationReport.MeterBasis.edgeWindows(report.range)[1].to.rfc3339) the hours after the period no longer move)",
                    field: "id")
            }
        }
    }

    /// Posts a run's corrections in slot order, a round at a time: each account's first
    /// correction (the slot two runs from one meter state both claim), then each one's second,
    /// and so on, stopping after a round with anything not posted. A run that lost a claim to
    /// another process's apply posts nothing more — its corrections of other token types would
    /// otherwise land beside the winner's, a state neither order of applying makes — and the
    /// slots posted are always an account's first ones: a slot left empty before a posted one
    /// would make every later run of the account claim a taken id. Error indexes are `events'`.
    static func postInSlotOrder(_ events: [ProposedCorrection], store: any MeterStore) async throws -> IngestResponse {
        var round: [String: Int] = [:]
        let rounds = events.map { c -> Int in
            defer { round[c.accountID, default: 0] += 1 }
            return round[c.accountID] ?? 0
        }
        var response = IngestResponse()
        for r in 0..<(rounds.max().map { $0 + 1 } ?? 0) {
            let indexes = events.indices.filter { rounds[$0] == r }
            var part = try await store.ingest(try await Self.events(indexes.map { events[$0] }, store: store))
            part.errors = part.errors.map {
                var e = $0; e.index = indexes[e.index]; return e
            }
            response.add(part)
            guard response.conflicts == 0, response.rejected == 0 else {
                let lost = response.errors.first.map { events[$0.index] }
                for i in events.indices where rounds[i] > r {
                    response.conflicts += 1
                    response.errors.append(
                        .init(
                            index: i, eventID: events[i].eventID, status: .conflict, code: "conflict",
                            message: "not posted: \(lost.map { "the correction of \($0.modelID ?? "") on \($0.accountID)" } ?? "a correction") "
                                + "of the same run was not, so nothing more of it is posted"))
                }
                return response
            }
        }
        return response
    }

    /// The correction that takes `c` back: its own id and correction_ref, the opposite quantity.
    public static func compensation(_ c: ProposedCorrection) -> ProposedCorrection {
        var dims = c.dimensions
        dims["reason"] = "revert"
        dims["reverts"] = c.eventID
        return ProposedCorrection(
            eventID: "revert_" + String(sha256Hex(Array(c.eventID.utf8)).prefix(40)), accountID: c.accountID,
            meterID: c.meterID, modelID: c.modelID, correctionRef: c.correctionRef + "_revert", quantity: -c.quantity,
            unit: c.unit, timestamp: c.timestamp, dimensions: dims)
    }

    /// The events corrections post as: in their meter's own unit ("Tokens", "token": the engine
    /// counts any spelling of tokens, and a meter refuses a unit not its own), none on a meter
    /// that has none (a correction's "tokens" would claim that meter's unit for it).
    public static func events(_ corrections: [ProposedCorrection], store: any MeterStore) async throws -> [IngestItem] {
        let units = try await MeterLedger.units(store)
        return corrections.map { c in
            var e = c.event
            e.unit = units[c.meterID]
            return .event(e)
        }
    }

    /// Ingests a report's corrections and records which were posted. `log`: the runs recorded,
    /// whose applied periods this run's must not cut across (one applied since this one ran).
    public func post(
        _ report: inout ReconciliationReport, confirmLarge: Bool, store: any MeterStore, log: (any ReconciliationLog)?
    ) async throws -> (IngestResponse, heldBack: Int) {
        guard report.isConclusive else {
            let why = report.reasons.filter { $0.effect == .inconclusive }.map { "\($0.code): \($0.detail)" }.joined(separator: "; ")
            throw UsageBoxError(.inconclusive, "reconciliation \(report.id) is inconclusive, so it proposes no corrections to apply (\(why))")
        }
        let events = report.corrections + (confirmLarge ? report.held.map(\.correction) : [])
        guard !events.isEmpty else { return (IngestResponse(), report.heldNotPosted) }
        // A retried apply of a run whose every correction is on the meter already answers
        // duplicates, as posting them again would: the checks below are of what is to be posted,
        // and a correction posted since by hand answered "the meter changed" to a retry.
        let present = try await Self.onTheMeter(report, store: store)
        if events.allSatisfy({ present.contains($0.eventID) }) {
            var again = IngestResponse()
            again.duplicates = events.count
            // Recorded as applied, as a post would have (one that died before its record was
            // written left the run unapplied, and runs cutting across its period unheld).
            report.appliedEventIDs = Array(Set(report.appliedEventIDs).union(events.map(\.eventID))).sorted()
            report.applied = true
            if report.appliedAt == nil { report.appliedAt = Timestamp.now() }
            return (again, report.heldNotPosted)
        }
        let accounts = Set(events.map(\.accountID))
        let overlapping = try await ReconciliationEngine.overlappingRuns(
            range: report.range, scope: .accounts(accounts.sorted()), vendor: report.vendor, store: store, log: log)
        if let first = overlapping.first {
            throw UsageBoxError(
                .conflict,
                "reconciliation \(report.id) cannot be applied: \(first.detail); \(first.remedy ?? "")", field: "id")
        }
        try await checkMeterUnchanged(report, posting: events, present: present, store: store)
        let response = try await Self.postInSlotOrder(events, store: store)
        let failed = Set(response.errors.map(\.index))
        let posted = events.indices.filter { !failed.contains($0) }.map { events[$0].eventID }
        report.appliedEventIDs = Array(Set(report.appliedEventIDs).union(posted)).sorted()
        if response.accepted > 0 {
            report.applied = true
            if report.appliedAt == nil { report.appliedAt = Timestamp.now() }
        }
        return (response, report.heldNotPosted)
    }

}
