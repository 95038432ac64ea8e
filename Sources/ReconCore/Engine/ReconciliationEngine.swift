import Foundation
public import Metering

/// Reconciles vendor invoices against the meter, as a pipeline of named stages:
///
/// 1. `VerifyGate`: the meter agrees with itself, or the run stops.
/// 2. `InvoiceBatch`: the invoice files parsed by the vendor's plugin; `CardChoice` picks the card.
/// 3. `VendorLedger`: lines turned into tokens per model × token type × account; the rest kept.
/// 4. `MeterLedger`: the meter (net of corrections) in the same cells; rows it cannot compare kept.
/// 5. `CoverageCheck` and `ScopeCheck`: whether the invoice covers the period and the scope.
/// 6. `GapDiff`: vendor against meter, money beside tokens, and the gaps' shape.
/// 7. `Classification`: every gap through the classifier chain.
/// 8. `CorrectionProposal`: corrections only where the evidence allows, large ones held.
///
/// The service records the report (stage 9) and applies it.
public struct ReconciliationEngine: Sendable {
    public var registry: PluginRegistry
    /// Rate cards by vendor id.
    public var cards: [String: RateCard]
    public var now: @Sendable () -> Timestamp

    public init(registry: PluginRegistry, cards: [String: RateCard], now: @escaping @Sendable () -> Timestamp = Timestamp.now) {
        self.registry = registry
        self.cards = cards
        self.now = now
    }

    /// The longest period one run reconciles (a leap year).
    public static let longestPeriodDays: Int64 = 366

    /// Runs the pipeline. With the reconciliation `log`, earlier runs whose applied corrections
    /// cover part of this period are found (`overlaps_reconciled_period`).
    public func run(_ o: ReconciliationOptions, store: any MeterStore, log: (any ReconciliationLog)? = nil) async throws -> ReconciliationReport {
        guard let plugin = registry.plugin(o.vendor) else {
            throw UsageBoxError.invalidArgument(
                "unknown vendor '\(o.vendor)'; known: \(registry.plugins.map { $0.id }.joined(separator: ", "))", field: "vendor")
        }
        guard !o.invoices.isEmpty else { throw UsageBoxError.invalidArgument("no invoice file given", field: "invoice") }
        // The day-by-day evidence walks every day of the period: a period of centuries would hold
        // a request for hours. A billing period is a month, a quarter, at most a year.
        let span = o.range.to.microseconds - o.range.from.microseconds, day = Timestamp.microsPerHour * 24
        guard span <= Self.longestPeriodDays * day else {
            let days = (span + day - 1) / day
            throw UsageBoxError.invalidArgument(
                "the period is \(days) days long; a reconciliation covers one billing period of at most \(Self.longestPeriodDays) days: "
                    + "reconcile each period on its own", field: "to")
        }
        if let account = o.account, !o.scope.allows(account) {
            throw UsageBoxError(.permissionDenied, "this key may not see account \(account)", field: "account_id")
        }

        if let meterID = o.meterID, try await !store.meters(scope: o.scope).contains(where: { $0.meterID == meterID }) {
            throw UsageBoxError.invalidArgument("no meter '\(meterID)' in this store (usagebox meters lists them)", field: "meter_id")
        }
        let verify = try await VerifyGate.check(
            store, accounts: try await accountsToVerify(o, store: store), range: o.range,
            deep: o.deepVerify, allowDrift: o.allowDrift)
        // Parsing is CPU work on possibly large files: off the cooperative pool.
        let (invoices, allowOverlap) = (o.invoices, o.allowOverlap)
        let batch = try await BlockingWork.run { try InvoiceBatch.read(invoices, plugin: plugin, allowOverlap: allowOverlap) }
        let chosen = try CardChoice.choose(override: o.rateCard, cards: cards, plugin: plugin, lines: batch.lines.map(\.line))
        let card: any RateCardConverter = o.modelMap.isEmpty ? chosen : ModelMappedCard(card: chosen, map: o.modelMap)
        if !o.allowOverlap { try batch.checkOverlap(card: card, names: o.invoices.map(\.name)) }
        if let own = o.fx[card.currency], own != 1 {
            throw UsageBoxError.invalidArgument(
                "--fx \(card.currency)=\(ExactDecimal.text(own)): \(card.currency) is the rate card's own currency, which converts at 1; "
                    + "name the invoice's other currency", field: "fx")
        }
        let vendor = try VendorLedger.build(batch, card: card, options: o, tenantKeys: plugin.tenantKeys)
        // Metered events whose vendor dimension names the plugin, the card's vendor, or the
        // provider a multi-provider export (FOCUS) states on its lines, as written or as the
        // plugin that sells it is registered (Microsoft's lines are usage metered as azure-openai).
        let providers = Set(batch.lines.compactMap { $0.line.labels["provider"] })
        let vendorNames = Set([plugin.id, card.vendor] + providers + providers.flatMap(sellers(of:)))
        // What each account held just before the meter is read: the run's record of the meter
        // (`meterBasis`, which apply compares) is read at its end, and must be of the same moment.
        let readScope: AccountScope = o.attribution.account.map { .accounts([$0]) } ?? o.scope
        let countsAsVendor = countsAsVendor(vendorNames.union([plugin.id, card.vendor]))
        let eventsBefore = try await Self.eventsAround(o.range, scope: readScope, counts: countsAsVendor, store: store)
        let meter = try await MeterLedger.read(
            store, card: card, scopeModels: Set(vendor.cells.keys.map(\.model)).union(card.models),
            vendorNames: vendorNames, mayBeMisspelt: misspellings(of: vendorNames.union([plugin.id, card.vendor])), options: o)
        let (coverage, coverageReasons) = CoverageCheck.assess(batch, ledger: vendor, range: o.range)
        var diff = try GapDiff.compute(vendor: vendor, meter: meter, card: card, range: o.range)
        if diff.shape == .uniform,
            DailyEvidence.gapsConfinedToSomeDays(diff, range: o.range)
                || DailyEvidence.gapsOnDaysApart(diff.gappedRows.map(\.key), diff, range: o.range)
        {
            // The same share on every model, but only on some days: an outage of the whole
            // collector, not a price factor (which would show on every day); or on days that
            // never meet from one model to the next: two things, not one factor.
            (diff.shape, diff.impliedFactor) = (.localized, nil)
        }
        let unattributed = Self.unattributed(diff, attribution: o.attribution)
        let lateExport = diff.shape == .uniform && DailyEvidence.gapsOnlyOnTheLastDays(diff, range: o.range)
        var reasons =
            CoverageCheck.quietUncoveredDays(coverageReasons, diff: diff, meter: meter, range: o.range)
            + CoverageCheck.silentDayReasons(batch, ledger: vendor, diff: diff, range: o.range)
            + CoverageCheck.silentCellDayReasons(ledger: vendor, diff: diff, range: o.range) + vendor.reasons
            + ScopeCheck.assess(o, vendor: vendor, meter: meter, card: card)
            + unattributed.reasons + otherVendors(meter, card: card, plugin: plugin) + unplacedMetered(meter, card: card, diff: diff)
            + unknownVendorLabels(meter, card: card, plugin: plugin) + correctionsOfSeveralProviders(meter)
            + Self.gapMatchesUsageElsewhere(
                diff, meter: meter, card: card, scope: readScope, mistyped: misspellings(of: [plugin.id, card.vendor]))
            + ScopeCheck.gapMatchesAnotherAccount(o, diff: diff, meter: meter)
            + Self.providerNotStated(batch, meter: meter, card: card, plugin: plugin, known: { !sellers(of: $0).isEmpty })
            + (try await overlappingRuns(o, plugin: plugin, store: store, log: log))
            + Self.identicalRows(batch, card: card) + Self.capacityCharges(batch, card: card)
            + Self.amountsMayBeNet(diff, batch: batch)
            + batch.grossAmounts.map { file, why in
                EvidenceReason(
                    code: "amounts_may_include_charges", effect: .blocksPositive,
                    detail: "\(file): \(why), so a vendor total above the meter may be that charge, not under-metering",
                    remedy: "an invoice that states the token quantity of each line, or the vendor's usage report (token counts)")
            }
            + (diff.shape == .uniform
                ? [
                    // The defaults class it a pricing gap; a team rule tried before them (`input`
                    // and positive is a metering gap) billed a vendor's 10 % price rise to the customer.
                    EvidenceReason(
                        code: "uniform_gap", effect: .blocksCell,
                        detail:
                            "every model is off by the same factor (vendor ÷ meter \(diff.impliedFactor.map { ExactDecimal.format($0, scale: 4) } ?? "?")): "
                            + "a price change the card lacks, a discount or a markup looks like that; a meter losing the same share of every model's "
                            + "traffic on every day does too, and it cannot be told apart here, so no rule's class makes it a correction"
                            + (lateExport
                                ? "; the gap lies on the period's last days alone, as when an export is pulled before the vendor's last hours landed"
                                : ""),
                        remedy: lateExport
                            ? "reconcile again on an export pulled after the period settled; if it reads the same, check the card's prices from those days"
                            : "check the card's prices for the period (usagebox ratecards propose); correct a meter that really lost a share by hand")
                ] : [])
            + (diff.shape == .uniform ? [] : Self.uniformTokenTypes(diff, range: o.range))
            + Self.statedCountsShort(diff, range: o.range) + Self.unfinishedLongLines(vendor, diff: diff)
            + Self.roundingMayBeOneWay(diff, range: o.range, perAccount: o.attribution.isPerAccount)
            + (o.range.to > now()
                ? [
                    EvidenceReason(
                        code: "period_not_over", effect: .inconclusive,
                        detail: "the period ends \(o.range.to.rfc3339), after now: the vendor may still bill usage in it",
                        remedy: "reconcile once the period is over (and the vendor's export has caught up)")
                ] : [])
        let resolvedRules = o.teamRules?.resolvingModels(ClassificationRules.modelReader(card: card, cards: Array(cards.values)))
        let chain = ClassifierChain(plugin: plugin.classifiers + o.classifiers, team: resolvedRules)
        let (teamRules, allCards) = (o.teamRules, Array(cards.values))
        let runCells = Array(diff.vendor.keys) + Array(diff.metered.keys)
        let (runTokenTypes, runModels) = (Set(runCells.compactMap(\.tokenType)), Set(runCells.map(\.model)))
        reasons += try await BlockingWork.run {
            Self.failingRuleExamples(teamRules, card: card, cards: allCards)
                + Self.unmatchableRuleNames(teamRules, card: card, cards: allCards, runTokenTypes: runTokenTypes, runModels: runModels)
                + Self.respelledRuleModels(teamRules, card: card, cards: allCards) + Self.shadowedRules(resolvedRules)
        }
        var findings = Classification.classify(diff, chain: chain)
        var priceSteps = DailyEvidence.apply(
            to: &findings, diff, range: o.range,
            cardPrice: { key, at in key.tokenType.flatMap { try? card.price(model: key.model, tokenType: $0, date: at, labels: [:]).perMillion } },
            cardChanges: { card.priceChanges(model: $0) })
        // A cell with usage lines the card cannot price reads its money short of them, and its
        // price moves with that, not with the vendor's: no price to propose (a card proposed on a
        // run with unpriced long-context output wrote output at 16.0413 for 16.5: tester U).
        // Money too small to move the price (under a ten-thousandth of the cell's: it holds
        // negatives only) leaves the step be.
        let unpriced = Set(
            reasons.filter { $0.code == "unpriced_vendor_usage" && $0.effect == .blocksCell }.compactMap { r in
                r.modelID.map { CellKey(model: $0, tokenType: r.tokenType) }
            })
        for i in priceSteps.indices {
            priceSteps[i].rates.removeAll { unpriced.contains(CellKey(model: $0.modelID, tokenType: $0.tokenType)) }
        }
        priceSteps.removeAll { $0.rates.isEmpty }
        // A step of several models left with one is that model's alone, and says so when proposed.
        for i in priceSteps.indices where priceSteps[i].kind == .severalModels && Set(priceSteps[i].rates.map(\.modelID)).count == 1 {
            priceSteps[i].kind = .oneModel
        }
        reasons += DailyEvidence.holdWhereAGivenRateDecides(&findings, diff, range: o.range)
        reasons += Self.factorAroundCells(findings, reasons: reasons, diff)
        Self.noteUncoveredDays(&reasons, coverage: coverage)
        let reportID = Self.reportID(now())
        // A multi-provider export's corrections are its provider's usage: posted under the plugin
        // that sells it (FOCUS's Anthropic lines: vendor anthropic), so that plugin's own runs
        // count them as metered instead of as another vendor's and correcting the loss again.
        var providersOfModel: [String: Set<String>] = [:]
        for entry in batch.lines {
            guard let provider = entry.line.labels["provider"], let raw = entry.line.vendorModel,
                let model = card.canonicalModel(raw) ?? (entry.line.modelIsCanonical ? raw : nil)
            else { continue }
            providersOfModel[model, default: []].insert(provider.lowercased())
        }
        let vendorOfModel = providersOfModel.compactMapValues { providers -> String? in
            let sellers = Set(providers.flatMap(sellers(of:)))
            return providers.count == 1 && sellers.count == 1 ? sellers.first : nil
        }
        func propose() async throws -> CorrectionProposal {
            try await CorrectionProposal.propose(
                findings, reasons: reasons, diff: diff, meter: meter, options: o,
                vendor: plugin.id, vendorOfModel: vendorOfModel, vendorNames: vendorNames, reportID: reportID,
                mayBeMisspelt: misspellings(of: vendorNames.union([plugin.id, card.vendor])), store: store)
        }
        var proposal = try await propose()
        // Proposed again under the hold, so a held run lists no corrections and its findings say why.
        var eventsAfter: EventsAround?
        if !proposal.basis.isEmpty {
            let (moved, after) = try await Self.meterMovedDuringRun(
                o.range, scope: readScope, before: eventsBefore, counts: countsAsVendor, store: store)
            eventsAfter = after
            if let moved {
                reasons.append(moved)
                proposal = try await propose()
            }
        }
        reasons += try await Self.correctionsIntoClosedMonths(proposal.corrections + proposal.held.map(\.correction), store: store)
        var reported = proposal.findings
        try await Self.nameReissuedBills(
            &reported, vendor: plugin.id, card: card.fingerprint, range: o.range, scope: o.scope, store: store, log: log)

        var report = ReconciliationReport(
            id: reportID, vendor: plugin.id, accountID: o.account, invoiceScope: o.invoiceScope, from: o.range.from, to: o.range.to,
            verdict: reasons.contains { $0.effect == .inconclusive } ? .inconclusive : .conclusive, reasons: reasons,
            invoice: .init(
                sha256: batch.sha256, files: batch.files, format: batch.formats.sorted().joined(separator: "+"),
                currency: card.currency, lines: batch.lines.count, amount: ExactAmount(vendor.invoiceAmount),
                unmappedAmount: ExactAmount(vendor.unmappedAmount),
                amountsByCurrency: vendor.byCurrency.mapValues(ExactDecimal.text), unconvertedCurrencies: vendor.unconvertedCurrencies.sorted()),
            coverage: coverage,
            rateCard: .init(
                vendor: card.vendor, version: card.version, sha256: card.fingerprint,
                yaml: cards.values.contains { $0.fingerprint == chosen.fingerprint } ? nil : (chosen as? RateCard)?.source,
                modelMap: o.modelMap.isEmpty ? nil : o.modelMap),
            rules: .init(chain: chain.names, sha256: sha256Hex(Array(((o.teamRules?.source ?? "") + ClassificationRules.defaultYAML).utf8))),
            verify: verify, models: diff.models, total: diff.total, shape: diff.shape,
            impliedFactor: diff.impliedFactor.map { ExactDecimal.format($0, scale: 4) }, unmeteredTokenTypes: diff.unmeteredTokenTypes,
            findings: reported, priceSteps: priceSteps, days: DailyEvidence.rows(diff, range: o.range), unattributed: unattributed.volume,
            unmapped: vendor.unmapped, meteredOutOfScope: meter.outOfScope,
            corrections: proposal.corrections, held: proposal.held, meterBasis: proposal.basis,
            rounding: ["vendor_amount": "exact", "gap_amount": "half_even_\(GapDiff.moneyScale)dp"],
            applied: false, appliedEventIDs: [], appliedAt: nil, revertedAt: nil, runBy: o.runBy, createdAt: now())
        if case let .mapped(map, _) = o.attribution, !proposal.corrections.isEmpty || !proposal.held.isEmpty {
            report.mapBasis = .init(mapped: Set(map.values).sorted(), models: Set(vendor.cells.keys.map(\.model)).sorted())
        }
        if o.attribution.account == nil, let after = eventsAfter, !proposal.corrections.isEmpty || !proposal.held.isEmpty {
            let accounts: [String]? = if case let .accounts(list) = readScope { list.sorted() } else { nil }
            report.scopeEvents = .init(accounts: accounts, vendors: vendorNames.union([plugin.id, card.vendor]).sorted(), events: after.counted)
        }
        if case let .single(account) = o.attribution, o.invoiceScope == .asGiven {
            report.scopeBasis = .init(accountID: account, meterID: o.meterID, models: Set(vendor.cells.keys.map(\.model)).sorted())
        }
        return report
    }

    /// Events the accounts in `scope` hold in the period and the hours either side of it (where
    /// a boundary finding looks), on meters in tokens at any scale: `all` of them (any model,
    /// vendor or kind: what the run's reads could see there — a `tokens_k` meter, a mistyped
    /// vendor label, an account an account map leaves out; a request meter's backfill is not),
    /// and those `counts` takes for this vendor's (its names, a label that may be one mistyped,
    /// none). A late event, or another run's correction, adds one.
    struct EventsAround: Sendable, Equatable {
        var all: Int64 = 0
        var counted: Int64 = 0
    }

    static func eventsAround(
        _ range: TimeRange, scope: AccountScope, counts: (String?) -> Bool, store: any MeterStore
    ) async throws -> EventsAround {
        let edges = try ReconciliationReport.MeterBasis.edgeWindows(range)
        let around = try TimeRange(from: edges[0].from, to: edges[1].to)
        let units = try await MeterLedger.units(store)
        // By kind too: corrections count in the period only (the period before keeps its own at its
        // last second, inside the hours before this one: applying April's run moved May's count).
        func read(_ range: TimeRange, labelled: Bool) async throws -> [UsageGroup] {
            try await store.usage(
                UsageQuery(
                    scope: scope, range: range, groupBy: [.meterID, .kind] + (labelled ? [.dimension("vendor")] : []), metrics: [.count])
            ).groups
        }
        var labelled = true
        var aroundGroups: [UsageGroup]
        do {
            aroundGroups = try await read(around, labelled: true)
        } catch let e as UsageBoxError where e.code == .invalidArgument && e.field == "vendor" {
            // No event read names a vendor.
            labelled = false
            aroundGroups = try await read(around, labelled: false)
        }
        var total = EventsAround()
        for g in aroundGroups where MeterLedger.holdsTokens(g.keys[0], units) {
            total.all += g.aggregate.count
            if g.keys[1] != EventKind.correction.rawValue, counts(labelled ? g.keys[2] : nil) { total.counted += g.aggregate.count }
        }
        for g in try await read(range, labelled: labelled)
        where g.keys[1] == EventKind.correction.rawValue && MeterLedger.holdsTokens(g.keys[0], units) && counts(labelled ? g.keys[2] : nil) {
            total.counted += g.aggregate.count
        }
        return total
    }

    /// Whether a `vendor` label counts as one of `names`' usage: one of them, a label that may be
    /// one mistyped, or none.
    public func countsAsVendor(_ names: Set<String>) -> @Sendable (String?) -> Bool {
        let mayBeMisspelt = misspellings(of: names)
        return { label in label.map { names.contains($0) || mayBeMisspelt($0) } ?? true }
    }

    /// Events that arrived while the run read the meter: its gaps were read before them and its
    /// record of the meter after, so apply would see nothing move and bill a late event twice
    /// (a request's late event, under a model id spelt anew, was: +19,000,000 posted where a fresh
    /// run then found −500,000). The run is held; run again. Answers the count after, too.
    static func meterMovedDuringRun(
        _ range: TimeRange, scope: AccountScope, before: EventsAround, counts: (String?) -> Bool, store: any MeterStore
    ) async throws -> (EvidenceReason?, EventsAround) {
        let after = try await eventsAround(range, scope: scope, counts: counts, store: store)
        // Both counts: `counted` reads the period's corrections a moment after `all` (a correction
        // landing in between is in the record of the meter the run did not read).
        guard after != before else { return (nil, after) }
        return (
            EvidenceReason(
                code: "meter_moved_during_run", effect: .inconclusive,
                detail:
                    "\(after.all - before.all) event(s) arrived in the period (or \(MeterLedger.edgeHours) hours either side) for the accounts this run read "
                    + "while it read the meter, so its gaps and its record of the meter are of different moments",
                remedy: "run the reconciliation again once late events have stopped arriving"), after
        )
    }

    /// A gap that takes back an applied run's correction (`earlier_corrections_now_metered`), where
    /// the meter has not moved since that run and the bill has: the vendor re-issued its invoice
    /// (billing less, or more), no late usage arrived. A re-issued May invoice billing +1,000,000
    /// where the first billed +2,200,000 was explained as late events now metered, dated by days
    /// the vendor billed more. Still held (revert that run and reconcile again), under its name.
    static func nameReissuedBills(
        _ findings: inout [ReconciliationReport.Finding], vendor: String, card: String, range: TimeRange, scope: AccountScope,
        store: any MeterStore, log: (any ReconciliationLog)?
    ) async throws {
        // Off the bill on one day only too: with the meter as the run left it, no batch was replayed.
        let named: Set<String> = ["earlier_corrections_now_metered", "usage_off_the_bill_on_a_day_after_earlier_corrections"]
        let held = findings.indices.filter { named.contains(findings[$0].reason) && findings[$0].accountID != nil }
        guard let log, !held.isEmpty else { return }
        // The runs whose corrections are in the period: dated at its last second.
        let accounts = scope.intersect(.accounts(Set(held.compactMap { findings[$0].accountID }).sorted()))
        // Rollups that drop these dimensions: the reason stays as it is.
        guard let byRun = try await Self.correctionsByRun(vendor: vendor, scope: accounts, range: range, store: store) else { return }
        var earlier: [ReconciliationReport] = []
        for g in byRun.groups where g.aggregate.count > 0 {
            guard let id = g.keys[0], let r = try await ReconciliationArchive(log).report(id: id), r.applied, r.revertedAt == nil else { continue }
            earlier.append(r)
        }
        for i in held {
            let f = findings[i]
            func sameCell(_ model: String?, _ type: String?, _ account: String?) -> Bool {
                model == f.modelID && type == f.tokenType?.rawValue && account == f.accountID
            }
            let touching = earlier.compactMap { r -> (ReconciliationReport.Finding, Int64, String)? in
                let posted = r.everyCorrection.filter {
                    r.appliedEventIDs.contains($0.eventID) && sameCell($0.modelID, $0.dimensions["token_type"], $0.accountID)
                }
                guard !posted.isEmpty, let then = r.findings.first(where: { sameCell($0.modelID, $0.tokenType?.rawValue, $0.accountID) }) else { return nil }
                return (then, posted.reduce(0) { $0 &+ $1.quantity }, r.rateCard.sha256)
            }
            // One run's correction in the cell, the meter as that run left it, another bill read
            // through the same card (money-only lines read through another card's prices change
            // their tokens with the bill unchanged).
            guard touching.count == 1, let (then, posted, earlierCard) = touching.first, earlierCard == card,
                f.metered == then.metered &+ posted, f.vendor != then.vendor
            else { continue }
            findings[i].reason = "invoice_changed_since_earlier_corrections"
            (findings[i].gapSince, findings[i].gapDays) = (nil, nil)
        }
    }

    /// Token counts the vendor states, below the meter by one share on every model and every day:
    /// stated counts short are read as the meter's over-count, but short by the same share
    /// everywhere, an export missing part of its rows (two of three part files, a partitioned or
    /// sharded export) is the likelier cause: the defaults leave it unexplained, but a run called
    /// conclusive and a team rule could make it −33 % on every cell. Above the meter by one share
    /// stays the meter's loss.
    static func statedCountsShortByOneShare(_ diff: GapDiff, range: TimeRange) -> [EvidenceReason] {
        guard diff.shape != .uniform, diff.total.vendor < diff.total.metered,
            GapDiff.shape(diff.models, totalMetered: diff.total.metered, totalVendor: diff.total.vendor).0 == .uniform,
            !DailyEvidence.gapsConfinedToSomeDays(diff, range: range)
        else { return [] }
        let share = Decimal(exactly: diff.total.metered - diff.total.vendor) * 100 / Decimal(exactly: diff.total.metered)
        return [
            EvidenceReason(
                code: "stated_counts_short_by_one_share", effect: .blocksNegative,
                detail: "the vendor states \(ExactDecimal.format(share, scale: 1)) % fewer tokens than the meter, the same share of every model: "
                    + "an export missing a share of its rows (one part file of several, a partitioned export, an account's or a day's rows) looks like that, "
                    + "so it is no evidence the meter over-counted",
                remedy: "reconcile against every part of the export; if it is whole, correct the meter by hand")
        ]
    }

    /// Every model short by one share, else each model short day after day.
    static func statedCountsShort(_ diff: GapDiff, range: TimeRange) -> [EvidenceReason] {
        let every = statedCountsShortByOneShare(diff, range: range)
        return every.isEmpty ? statedModelShortDayAfterDay(diff, range: range) : every
    }

    /// The same for one model (when not every model is short so): its stated counts below the
    /// meter on every token type it is metered and billed for, each by a steady share of its day
    /// (the day's share within a quarter of the month's, half a point at least) on three of its
    /// metered days in four (four at least). An export scoped to the resource groups (projects,
    /// deployments) of the month but one where the model also runs reads so, each token type by
    /// that group's own share, and a third of the model was proposed off the meter (−72,300,826 of
    /// gpt-4o's input, tester I; with two parts input at 49.9 % was proposed and output at 50.1 %
    /// held). A loss is the vendor billing more, and is untouched.
    static func statedModelShortDayAfterDay(_ diff: GapDiff, range: TimeRange) -> [EvidenceReason] {
        var byModel: [CellKey: [CellKey]] = [:]
        for key in diff.keys where key.tokenType != nil && (diff.metered[key] ?? 0) > 0 {
            byModel[CellKey(model: key.model, tokenType: nil, account: key.account), default: []].append(key)
        }
        let days = Set(DailyEvidence.periodDays(range))
        var reasons: [EvidenceReason] = []
        for (model, cells) in byModel.sorted(by: { $0.key < $1.key }) {
            let shares = cells.map { key -> Decimal? in
                let metered = diff.metered[key] ?? 0
                guard let cell = diff.vendor[key], cell.sum.allStated, !cell.hasUndated, cell.tokens < metered else { return nil }
                let share = (Decimal(exactly: metered) - Decimal(exactly: cell.tokens)) / Decimal(exactly: metered)
                guard share >= leastFactor else { return nil }
                // Spread over the month, not an outage's days: the day's share within a quarter of the month's.
                let vendorDays = cell.daily
                let meteredDays = (diff.meteredDaily[key] ?? [:]).filter { $0.value > 0 && days.contains($0.key) }
                let alike = meteredDays.filter { d, q in
                    let day = (Decimal(exactly: q) - Decimal(exactly: vendorDays[d]?.tokens ?? 0)) / Decimal(exactly: q)
                    return abs(day - share) <= share / 4
                }
                return meteredDays.count >= 4 && alike.count * 4 >= meteredDays.count * 3 ? share : nil
            }
            guard !shares.isEmpty, !shares.contains(nil) else { continue }
            let named = zip(cells, shares).map { "\($0.tokenType?.rawValue ?? "") \(ExactDecimal.format($1! * 100, scale: 1)) %" }
            reasons.append(
                EvidenceReason(
                    code: "stated_counts_of_a_model_short_by_one_share", effect: .blocksNegative, modelID: model.model, accountID: model.account,
                    detail: "the vendor states fewer tokens of \(model.model) than the meter on every token type, each by a steady share "
                        + "day after day (\(named.joined(separator: ", "))): an export scoped to fewer deployments, projects or resource "
                        + "groups than the model runs in looks like that, so it is no evidence the meter over-counted",
                    remedy: "export every deployment, project or resource group of the model (or the whole account); if it is whole, correct the meter by hand")
            )
        }
        return reasons
    }

    /// A team's rules whose own examples fail (as `usagebox rules test` runs them: the file, then
    /// the defaults) do not classify as the team wrote they do: the run was conclusive and its
    /// corrections proposed through them, saying nothing.
    static func failingRuleExamples(_ rules: ClassificationRules?, card: any RateCardConverter, cards: [RateCard]) -> [EvidenceReason] {
        guard let rules else { return [] }
        let resolved = rules.resolvingModels(ClassificationRules.modelReader(card: card, cards: cards))
        let chain = ClassifierChain(team: resolved)
        let failing = resolved.examples.filter { !$0.check(chain).passed }
        guard !failing.isEmpty else { return [] }
        let named = failing.prefix(5).map { "\(rules.file):\($0.line) (rule \($0.rule): \($0.summary), expected \($0.expect.rawValue))" }
        return [
            EvidenceReason(
                code: "rules_examples_fail", effect: .inconclusive,
                detail: "\(failing.count) example(s) of the rules fail: \(named.joined(separator: "; "))\(failing.count > 5 ? "; …" : ""): "
                    + "the rules do not classify gaps as they say they do",
                remedy: "usagebox rules test \(rules.file), and fix the rules or their examples")
        ]
    }

    /// A team rule's condition naming what no finding carries (a misspelt token type or model)
    /// matches nothing, and the gaps it meant to class go to the next rule: said, with the names.
    /// Team rules an earlier rule decides every finding of (`ClassificationRules.shadowedRules`).
    static func shadowedRules(_ rules: ClassificationRules?) -> [EvidenceReason] {
        guard let warnings = rules?.shadowedRules(), !warnings.isEmpty else { return [] }
        return [
            EvidenceReason(
                code: "rules_that_never_decide", effect: .note,
                detail: warnings.prefix(5).joined(separator: "; ") + (warnings.count > 5 ? "; …" : ""),
                remedy: "put the narrower rule first (usagebox rules test FILE lists every such rule)")
        ]
    }

    /// Team rules naming a model in another case or with spaces, which the run reads through its
    /// card's aliases (`ClassificationRules.respelledModels`).
    static func respelledRuleModels(_ rules: ClassificationRules?, card: any RateCardConverter, cards: [RateCard]) -> [EvidenceReason] {
        guard let warnings = rules?.respelledModels(card: card, cards: cards), !warnings.isEmpty else { return [] }
        return [
            EvidenceReason(
                code: "rules_name_models_as_cards_do_not", effect: .note,
                detail: warnings.prefix(5).joined(separator: "; ") + (warnings.count > 5 ? "; …" : "")
                    + ": the rule applies to the model it is read as",
                remedy: "spell the model as the card does (usagebox ratecards show lists a card's models)")
        ]
    }

    static func unmatchableRuleNames(
        _ rules: ClassificationRules?, card: any RateCardConverter, cards: [RateCard], runTokenTypes: Set<TokenType>, runModels: Set<String>
    ) -> [EvidenceReason] {
        guard let warnings = rules?.unmatchableNames(card: card, cards: cards, runTokenTypes: runTokenTypes, runModels: runModels), !warnings.isEmpty
        else { return [] }
        return [
            EvidenceReason(
                code: "rules_name_what_no_finding_carries", effect: .note,
                detail: warnings.prefix(5).joined(separator: "; ") + (warnings.count > 5 ? "; …" : "")
                    + ": no finding the cards or this run name carries them, so such a condition matches nothing (the gaps it meant to class"
                    + " went to the rules after it) and such an example tests no case a run has",
                remedy: "spell the names as findings carry them (usagebox ratecards show lists a card's models and token types)")
        ]
    }

    /// A cell whose volume is read from money and whose gap is beyond the contract's tolerance
    /// (half a unit of each line's last written decimal), where the days within a whole unit of
    /// their lines add up beyond their half units: rounding to the nearest unit cannot do that, a
    /// vendor rounding every line up (or down) to the cent does, and an export does not say how
    /// it rounds. +235,000 tokens of Haiku input were proposed (and applied) on a meter equal to
    /// the vendor's usage, every day within a cent; beside a real loss on a few days, the whole
    /// month's rounding was proposed with it (+345,396 for a loss of 100,000). Either way the
    /// gap's size is unknown by that much, so the cell is held. Without daily lines, the month's
    /// gap must be within a whole unit of every line. Unattributed cells of a per-account run are
    /// `unattributed`'s: such a hold would name no account and block every account's cell.
    static func roundingMayBeOneWay(_ diff: GapDiff, range: TimeRange, perAccount: Bool) -> [EvidenceReason] {
        diff.vendor.compactMap { key, cell -> EvidenceReason? in
            if perAccount, key.account == nil { return nil }
            let tolerance = max(cell.toleranceTokens, 0)
            let gap = cell.tokens &- (diff.metered[key] ?? 0)
            guard !cell.sum.allStated, tolerance > 0, gap.magnitude > UInt64(tolerance) else { return nil }
            var (rounding, roundingTolerance) = (Int64(0), Int64(0))
            if let vendorDays = DailyEvidence.vendorDaily(diff, key, accountwise: true) {
                let metered = DailyEvidence.meteredDaily(diff, key, accountwise: true)
                for d in DailyEvidence.periodDays(range) {
                    guard let v = vendorDays[d] else { continue }
                    let t = max(v.toleranceTokens, 0)
                    let off = v.tokens &- (metered[d] ?? 0)
                    guard t > 0, off.magnitude <= 2 * UInt64(t) else { continue }
                    (rounding, roundingTolerance) = (rounding &+ off, roundingTolerance &+ t)
                }
            } else if gap.magnitude <= 2 * UInt64(tolerance) {
                (rounding, roundingTolerance) = (gap, tolerance)
            }
            guard roundingTolerance > 0, rounding.magnitude > UInt64(roundingTolerance) else { return nil }
            return EvidenceReason(
                code: "rounding_may_be_one_way", effect: .blocksCell, modelID: key.model, tokenType: key.tokenType, accountID: key.account,
                detail: "\(key.model) \(key.tokenType?.rawValue ?? "?")\(key.account.map { " on \($0)" } ?? ""): the vendor bills \(gap) tokens "
                    + "\(gap > 0 ? "above" : "below") the meter; on the days (or lines) within a whole unit of their amounts it is \(rounding) tokens "
                    + "\(rounding > 0 ? "above" : "below"), beyond rounding to the nearest unit (±\(roundingTolerance)): a vendor rounding every line "
                    + "up or down makes that, the export does not say how it rounds, and the gap's size is unknown by that much",
                remedy: "the vendor's token counts (a usage report) for the period; correct by hand if the vendor is known to round to the nearest unit")
        }.sorted { ($0.modelID ?? "", $0.tokenType?.rawValue ?? "", $0.accountID ?? "") < ($1.modelID ?? "", $1.tokenType?.rawValue ?? "", $1.accountID ?? "") }
    }

    /// A model the vendor bills below the meter in lines longer than a day, from a file that
    /// declares no period: such a line (a FOCUS month row restated as the month fills) cannot
    /// show it was complete when exported, and other models' daily lines covering the period
    /// took the hold of an uncovered period away from it (its shortfall was proposed as
    /// `metered_beyond_billed`).
    static func unfinishedLongLines(_ vendor: VendorLedger, diff: GapDiff) -> [EvidenceReason] {
        diff.models.filter { vendor.undeclaredMultiDayModels.contains($0.modelID) && ($0.gap < 0 || $0.tokenTypes.contains { $0.gap < 0 }) }.map { m in
            EvidenceReason(
                code: "long_lines_may_be_unfinished", effect: .blocksNegative, modelID: m.modelID,
                detail: "\(m.modelID) is billed in lines longer than a day by a file that declares no billing period: "
                    + "such a line cannot show whether its span was complete when the file was exported, "
                    + "so the vendor billing less than the meter is no evidence the meter over-counted",
                remedy: "an export with daily lines for \(m.modelID), or one that declares its billing period once the period is closed")
        }
    }

    /// One token type off the meter by one share on every model that has it (within two points),
    /// the models' other token types aside: `uniform_gap` for that token type. Input billed 10 %
    /// above the meter on Sonnet and Haiku and 11.5 % on Opus, output exact, read as `localized`
    /// and turned a vendor's input price rise into +41,335,903 of corrections. Only where the
    /// volume is read from money (stated quantities off by a share are the meter's), on two models
    /// or more, and not when the gaps lie on some days only (an outage).
    /// Read over days the invoice does not cover, every model is short by those days: a page of an
    /// export listed a `uniform_gap` and a `price_factor_around_cell` per cell, each sending the
    /// reader to the card's prices (tester Z). They say so, and send the reader to the coverage
    /// first; they block as before.
    static func noteUncoveredDays(_ reasons: inout [EvidenceReason], coverage: CoverageSummary) {
        let missing = coverage.periodDays - coverage.coveredDays
        guard missing > 0 else { return }
        for i in reasons.indices where ["uniform_gap", "price_factor_around_cell"].contains(reasons[i].code) {
            reasons[i].detail += " (read over the whole period, whose \(missing) day(s) the invoice does not cover count as gaps: this may be that alone)"
            reasons[i].remedy = "cover the whole period first (coverage_gap), then read this again"
        }
    }

    static func uniformTokenTypes(_ diff: GapDiff, range: TimeRange) -> [EvidenceReason] {
        guard !DailyEvidence.gapsConfinedToSomeDays(diff, range: range) else { return [] }
        func fromMoney(_ model: String, _ type: TokenType?) -> Bool {
            diff.vendor.contains { $0.key.model == model && $0.key.tokenType == type && !$0.value.sum.allStated }
        }
        var byType: [TokenType: [(model: String, row: ReconciliationReport.TokenTypeRow)]] = [:]
        for m in diff.models {
            for row in m.tokenTypes where row.metered > 0 {
                guard let type = row.tokenType, fromMoney(m.modelID, type) else { continue }
                byType[type, default: []].append((m.modelID, row))
            }
        }
        var reasons: [EvidenceReason] = []
        for (type, rows) in byType.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            // A model too small for the share to show past its rounding says nothing against it
            // (Opus at 195,000 tokens, +25,512 inside tolerance, let +26,115,005 through).
            let beyond = rows.filter(\.row.beyondTolerance)
            let shares = beyond.map { Decimal(exactly: $0.row.gap) / Decimal(exactly: $0.row.metered) }
            guard beyond.count >= 2 else { continue }
            // Within a fifth of a share (half a point at least) is one factor: 10/10/11.5 % is one;
            // a meter losing 1 % of one model and 2.5 % of another is two losses. The factor is
            // the share most models agree on (two at least; the nearest zero among as many), and
            // a model apart from it holds it too, beside a loss of its own either way: input 5 %
            // above the card on every model and a Sonnet outage besides proposed the factor on the
            // others, and a 5.8 % shortfall of net money on every model but Sonnet, whose outage
            // outweighed it, shrank Sonnet's correction by the shortfall (+2,676,000 of 6,390,000).
            guard let best = Self.mostAgreedShare(shares), best.agreeing.count >= 2, Set(best.agreeing.map { $0 > 0 }).count == 1 else { continue }
            let share = best.agreeing.reduce(0, +) / Decimal(best.agreeing.count)
            // No price moves by less than half a point: shares of 0.03–0.09 % are meter noise, and
            // steady drift of 0.05 % on two models made a Sonnet outage "past the factor".
            guard abs(share) >= Self.leastFactor else { continue }
            let apart = shares.filter { !Self.oneFactor($0, best.share) }.count
            // Agreeing shares on days that never meet are two things, not one factor.
            let agreeing = zip(beyond, shares).filter { Self.oneFactor($0.1, best.share) }.map { CellKey(model: $0.0.model, tokenType: type) }
            guard !DailyEvidence.gapsOnDaysApart(agreeing, diff, range: range) else { continue }
            guard
                rows.allSatisfy({
                    $0.row.beyondTolerance
                        || abs(Decimal(exactly: $0.row.gap) - share * Decimal(exactly: $0.row.metered)) <= Decimal(max($0.row.tolerance, 0))
                })
            else { continue }
            reasons.append(
                EvidenceReason(
                    code: "uniform_gap", effect: .blocksCell, tokenType: type,
                    detail: "\(type.rawValue) is off the meter by about the same share on "
                        + (apart == 0
                            ? "every model that has it "
                            : "\(rows.count - apart) of the \(rows.count) models that have it, the others holding it beside a gap of their own ")
                        + "(\(rows.map { "\($0.model) \(ReconciliationReport.gapPercent(gap: $0.row.gap, metered: $0.row.metered) ?? "?") %" }.joined(separator: ", "))): "
                        + "a price change of that token type the card lacks looks like that, and so does a meter losing the same share of it",
                    remedy:
                        "check the card's \(type.rawValue) prices for the period (usagebox ratecards propose); correct a meter that really lost a share by hand"
                ))
        }
        return reasons
    }

    /// The least share taken for a price factor beneath a loss (factor plus a loss of its own):
    /// below it, drift and rounding.
    static let leastFactor = Decimal(string: "0.005")!

    /// Two shares of the meter that are one factor: within a fifth of the second, half a point at
    /// least (10/10/11.5 % is one; a meter losing 1 % of one model and 2.5 % of another is two).
    static func oneFactor(_ a: Decimal, _ b: Decimal) -> Bool { abs(a - b) <= max(leastFactor, abs(b) / 5) }

    /// The share most of `shares` are one factor with (the nearest zero among as many: a loss
    /// only adds to a factor), and the shares that are.
    static func mostAgreedShare(_ shares: [Decimal]) -> (share: Decimal, agreeing: [Decimal])? {
        shares.map { s in (share: s, agreeing: shares.filter { oneFactor($0, s) }) }
            .max { ($0.agreeing.count, -abs($0.share)) < ($1.agreeing.count, -abs($1.share)) }
    }

    /// A cell whose model's other token types and whose token type's other models are off by a
    /// price factor (`uniform_gap` of a token type, `one-model-factor`, `card-step`) holds that factor too,
    /// beside whatever else: every price 5 % above the card and Sonnet input really short
    /// 1,320,000 tokens proposed +7,520,000 for it (the loss and 5 % of 124M tokens), and an
    /// `--fx` rate 1.1 % off did the same. Held, money-priced cells only.
    static func factorAroundCells(_ findings: [ReconciliationReport.Finding], reasons: [EvidenceReason], _ diff: GapDiff) -> [EvidenceReason] {
        let uniform = reasons.filter { $0.code == "uniform_gap" && $0.tokenType != nil }
        var factor: [(model: String, type: TokenType)] = []
        // Models off by one factor on every token type read (`one-model-factor`): a price of the
        // model the card lacks, or its requests lost at one rate, which a cell of it read from money
        // holds too, whatever other models say.
        var modelWide = Set<String>()
        for f in findings where f.gapClass != .withinTolerance {
            guard let t = f.tokenType else { continue }
            // A card step the bill does not show is a price factor on its cell too (and one on every
            // token type of a model is named so rather than `one-model-factor`: review 9).
            if f.isEngine("one-model-factor") || f.isEngine("card-step") || uniform.contains(where: { $0.tokenType == t && $0.applies(to: f) }) {
                factor.append((f.modelID, t))
            }
            // One model's price step held the same way (from May 20 rather than all month: review Z3).
            let oneModelStep = f.isEngine("price-step") && f.reason.hasPrefix("implied_price_of_")
            if oneModelStep { factor.append((f.modelID, t)) }
            if f.isEngine("one-model-factor") || oneModelStep { modelWide.insert(f.modelID) }
        }
        guard !factor.isEmpty else { return [] }
        var out: [EvidenceReason] = []
        var seen = Set<String>()
        for f in findings where f.gapClass == .meteringGap {
            // Every account's cell is looked at: the first may be one the vendor states or does not bill.
            guard let t = f.tokenType, !seen.contains("\(f.modelID)|\(t.rawValue)"),
                diff.vendor[CellKey(model: f.modelID, tokenType: t, account: f.accountID)].map({ !$0.sum.allStated }) ?? false
            else { continue }
            seen.insert("\(f.modelID)|\(t.rawValue)")
            let row = factor.filter { $0.model == f.modelID && $0.type != t }.map(\.type.rawValue)
            let column = factor.filter { $0.model != f.modelID && $0.type == t }.map(\.model)
            // A cell of a model off by one factor on its other token types (Sonnet's cache reads,
            // never metered, forced a metering gap by a team rule beside Sonnet 10 % dearer on
            // input and output) was held for review at the factor's volume too (tester Z2).
            guard !row.isEmpty, !column.isEmpty || modelWide.contains(f.modelID) else { continue }
            let around = column.isEmpty ? "" : " and \(t.rawValue) of \(Set(column).sorted().joined(separator: ", "))"
            out.append(
                EvidenceReason(
                    code: "price_factor_around_cell", effect: .blocksCell, modelID: f.modelID, tokenType: t,
                    detail: "\(f.modelID)'s \(Set(row).sorted().joined(separator: ", "))\(around) "
                        + "are off the meter by a price factor, so \(f.modelID) \(t.rawValue)'s gap holds that factor too: how much of it is lost usage cannot be told",
                    remedy: "fix the card's prices for the period (usagebox ratecards propose) or the fx rate, and reconcile again"))
        }
        return out
    }

    /// The accounts whose meter is read: the run's own, else every visible account with usage.
    func accountsToVerify(_ o: ReconciliationOptions, store: any MeterStore) async throws -> [String] {
        if let account = o.attribution.account { return [account] }
        let byAccount = try await store.usage(UsageQuery(scope: o.scope, range: o.range, groupBy: [.accountID]))
        return byAccount.groups.compactMap { $0.keys.first ?? nil }
    }

    /// Vendor volume on no account, when the run is per account: shown beside the residuals, and
    /// a block on over-metering corrections of its model × token type (it may be anyone's).
    static func unattributed(_ diff: GapDiff, attribution: Attribution) -> (volume: [ReconciliationReport.UnattributedVolume], reasons: [EvidenceReason]) {
        guard attribution.isPerAccount else { return ([], []) }
        var volume: [ReconciliationReport.UnattributedVolume] = []
        var reasons: [EvidenceReason] = []
        for key in diff.vendor.keys.sorted() where key.account == nil {
            let cell = diff.vendor[key]!
            guard cell.tokens != 0 else { continue }
            volume.append(.init(modelID: key.model, tokenType: key.tokenType, vendor: cell.tokens, vendorAmount: ExactAmount(cell.vendorAmount)))
            reasons.append(
                .init(
                    code: "unattributed_vendor_volume", effect: .blocksNegative, modelID: key.model, tokenType: key.tokenType,
                    detail: "\(cell.tokens) \(key.tokenType?.rawValue ?? "") tokens of \(key.model) are on no mapped account: they may be any account's",
                    remedy: "map the vendor's workspace, project or key to its account", amount: cell.vendorAmount))
        }
        return (volume, reasons)
    }

    /// A model the meter cannot say the vendor of, which other registered vendors also sell: a
    /// shortfall on this invoice may be traffic another vendor served.
    func otherVendors(_ meter: MeterLedger, card: any RateCardConverter, plugin: any VendorPlugin.Type) -> [EvidenceReason] {
        meter.vendorUnknownModels.sorted().compactMap { model in
            let raw = meter.rawModels[model] ?? [model]
            let sellers = cards.values.filter { c in
                c.vendor != card.vendor && c.vendor != plugin.rateCardName && raw.contains { c.canonicalModel($0) != nil }
            }.map(\.vendor).sorted()
            guard !sellers.isEmpty else { return nil }
            return EvidenceReason(
                code: "model_sold_by_other_vendors", effect: .blocksNegative, modelID: model,
                detail: "\(model) is also sold by \(sellers.joined(separator: ", ")) and the meter's events do not say which vendor served them: "
                    + "usage the \(plugin.id) invoice lacks may be theirs",
                remedy: "send the dimension vendor=\(plugin.id) (or the vendor that served it) on every event")
        }
    }

    /// Metered usage under a model id no registered card knows (a new snapshot the cards lack): it
    /// may be the invoice's models under another name, so the vendor billing more than the meter
    /// shows is no evidence of under-metering.
    /// Identical rows of an export that keeps no line-item ids: one row pasted twice, or two
    /// charges whose telling columns were left out. Each model × token type they bill is held
    /// (a model the card cannot place holds the run); the rest of the invoice stands.
    /// Reserved capacity billed by the hour (Bedrock Provisioned Throughput, Azure PTU, Vertex
    /// GSUs; lines marked `capacity:` by their plugin): the tokens served on it are on no token
    /// line, so the meter above the per-token bill may be that capacity's traffic, not over-
    /// metering. Its model's negative gaps are held (every model's when the charge names none).
    static func capacityCharges(_ batch: InvoiceBatch, card: any RateCardConverter) -> [EvidenceReason] {
        var byModel: [String: (amount: Decimal, lines: Int, first: String, currency: String)] = [:]
        for l in batch.lines where l.line.nonUsageReason?.hasPrefix("capacity:") == true {
            let model = l.line.vendorModel.flatMap(card.canonicalModel) ?? ""
            let prior = byModel[model]
            byModel[model] = (
                (prior?.amount ?? 0) + (l.line.amount ?? 0), (prior?.lines ?? 0) + 1, prior?.first ?? l.line.location, prior?.currency ?? l.line.currency
            )
        }
        return byModel.sorted { $0.key < $1.key }.map { model, c in
            EvidenceReason(
                code: "capacity_charges", effect: .blocksNegative, modelID: model.isEmpty ? nil : model,
                detail: "\(c.lines) line(s) from \(c.first) bill \(ExactDecimal.text(c.amount)) \(c.currency) of reserved capacity (provisioned throughput) "
                    + "\(model.isEmpty ? "naming no model" : "for \(model)"): tokens served on it are billed by the hour on no token line, "
                    + "so usage metered beyond the per-token bill may be that capacity's traffic",
                remedy: "meter capacity-served requests apart (their own meter, then --meter-id) and reconcile the per-token traffic alone",
                amount: c.amount)
        }
    }

    static func identicalRows(_ batch: InvoiceBatch, card: any RateCardConverter) -> [EvidenceReason] {
        var groups: [CellKey: [(file: String, pair: String)]] = [:]
        for r in batch.identicalRows {
            let model = r.line.vendorModel.flatMap(card.canonicalModel) ?? ""
            let tokenType = r.line.tokenType ?? r.line.vendorModel.flatMap(card.aliasTokenType)
            groups[CellKey(model: model, tokenType: model.isEmpty ? nil : tokenType), default: []].append((r.file, r.pair))
        }
        return groups.sorted { $0.key < $1.key }.map { key, repeats in
            let what = key.model.isEmpty ? "lines of a model the card does not know" : key.named
            return EvidenceReason(
                code: "identical_rows", effect: key.model.isEmpty ? .inconclusive : key.tokenType == nil ? .blocksModel : .blocksCell,
                modelID: key.model.isEmpty ? nil : key.model, tokenType: key.tokenType,
                detail: "\(what): \(repeats.count) row(s) billing what an earlier one bills (first \(repeats[0].pair)): "
                    + "one row pasted twice, one charge of two deliveries under two line-item ids, or two charges whose telling columns were left out",
                remedy: "export one delivery with line-item ids (CUR identity_line_item_id, Vertex export_time, Azure ResourceId), or drop the "
                    + "repeated rows; pass --allow-overlap when they are distinct charges")
        }
    }

    func unplacedMetered(_ meter: MeterLedger, card: any RateCardConverter, diff: GapDiff) -> [EvidenceReason] {
        // An unlabelled event of a model another card knows is that vendor's; one labelled as this
        // vendor's is this invoice's usage under a name its card lacks (a FOCUS export's undated
        // ModelId beside the meter's dated one).
        let unknown = meter.outOfScope.filter { row in
            row.reason == "model_unknown_to_card"
                && (row.modelID.map(meter.unplacedOwnModels.contains) == true
                    || !cards.values.contains { c in row.modelID.map { c.canonicalModel($0) != nil } ?? false })
        }
        guard !unknown.isEmpty else { return [] }
        let detail =
            "the meter holds \(unknown.map { "\($0.tokens) tokens of \($0.modelID ?? "(no model)")" }.joined(separator: ", ")) under model ids "
            + "this invoice's card cannot place (unknown to every card, or labelled as this vendor's)"
        // Usage under another name stands in for the invoice model's on the days it is missing: a
        // cell billed beyond the meter can be it unless a tenth or more of the unplaced usage (of
        // its token type, or of none) is metered on days the cell is not billed beyond the meter.
        // An embedding model metered every day is no chat model's two lost days (tester I: every
        // Azure outage was held beside it); a snapshot id's test call before its cut-over, or a
        // request across midnight, leaves a rename held (review 7). Where the days are unknown (a
        // line of the month), any can.
        let gapCells = diff.gappedRows.filter { $0.row.gap > 0 }.map(\.key)
        func fits(_ key: CellKey) -> Bool {
            guard let vendorDays = DailyEvidence.vendorDaily(diff, key, accountwise: false) else { return true }
            let metered = DailyEvidence.meteredDaily(diff, key, accountwise: false)
            let gapDays = Set(vendorDays.filter { d, b in b.tokens &- (metered[d] ?? 0) > max(b.toleranceTokens, 0) }.keys)
            return unknown.contains { row in
                guard let id = row.modelID, let byType = meter.unplacedDaily[id] else { return true }
                let metered = byType.filter { $0.key == nil || $0.key == key.tokenType }.values.flatMap { $0.filter { $0.value > 0 } }
                let total = metered.reduce(Decimal(0)) { $0 + Decimal(exactly: $1.value) }
                let elsewhere = metered.filter { !gapDays.contains($0.key) }.reduce(Decimal(0)) { $0 + Decimal(exactly: $1.value) }
                return total > 0 && elsewhere * 10 < total
            }
        }
        let held = gapCells.filter(fits)
        guard !held.isEmpty else {
            return [
                EvidenceReason(
                    code: "unplaced_metered_usage", effect: .note,
                    detail: detail + ", metered on days the invoice's models are not billed beyond the meter: no model's missing usage under another name",
                    remedy: "add the model id to a card if it is one (or fix the collector's model id)")
            ]
        }
        return held.map { key in
            EvidenceReason(
                code: "unplaced_metered_usage", effect: .blocksPositive, modelID: key.model, tokenType: key.tokenType,
                detail: detail + ", on days \(key.named) is billed beyond the meter: they may be its usage under another name",
                remedy: "add the model id to the card's aliases (or fix the collector's model id)")
        }
    }

    /// A format that bills several providers (FOCUS, UBL) whose lines of a
    /// model name none: the meter's usage of that model that names who served it is set aside as
    /// another vendor's, yet the invoice may be that vendor's. A FOCUS 1.2 export naming Anthropic
    /// only in ServiceProviderName proposed +9,300,000 input, billing the Anthropic-labelled
    /// usage twice. The model's positive gaps are held.
    static func providerNotStated(
        _ batch: InvoiceBatch, meter: MeterLedger, card: any RateCardConverter, plugin: any VendorPlugin.Type, known: (String) -> Bool
    ) -> [EvidenceReason] {
        // Whatever the card: a reseller's own card (`--rate-card`) says nothing of who served it.
        guard plugin.providerNames.isEmpty else { return [] }
        func model(_ raw: String, canonical: Bool) -> String? { card.canonicalModel(raw) ?? (canonical ? raw : nil) }
        var unstated = Set<String>()
        // A UBL supplier the card is named after ("Anthropic, PBC" priced by the anthropic card,
        // as `CardChoice` reads it) states who served it: a team's Bedrock usage of the same model
        // held Anthropic's corrections every month. A provider no plugin sells ("OpenRouter")
        // says no more than none: the meter's aws-bedrock usage was set aside under it and
        // proposed again. Each name is judged once, not once a line.
        var stated: [String: Bool] = [:]
        func isStated(_ line: InvoiceLine) -> Bool {
            if let p = line.labels["provider"] {
                if let known = stated["p:" + p] { return known }
                stated["p:" + p] = known(p)
                return stated["p:" + p]!
            }
            guard card.vendor != plugin.rateCardName, let supplier = line.labels["supplier"] else { return false }
            if let named = stated["s:" + supplier] { return named }
            stated["s:" + supplier] = CardChoice.names(supplier, card.vendor)
            return stated["s:" + supplier]!
        }
        for l in batch.lines where !isStated(l.line) {
            if let raw = l.line.vendorModel, let m = model(raw, canonical: l.line.modelIsCanonical) { unstated.insert(m) }
        }
        // Loosely too: the meter's `claude-sonnet-4-5-20250929` is the export's `claude-sonnet-4-5`.
        let loose = ModelID.LooseModels(unstated.sorted())
        let byModel = meter.servedElsewhere { raw, _ -> String? in
            if let m = card.canonicalModel(raw), unstated.contains(m) { return m }
            return loose.match(raw)
        }
        return byModel.sorted { $0.key < $1.key }.map { model, byVendor in
            EvidenceReason(
                code: "provider_not_stated", effect: .blocksPositive, modelID: model,
                detail: "the \(plugin.id) lines of \(model) name no provider, and the meter sets aside "
                    + byVendor.sorted { $0.key < $1.key }.map { "\($0.value) tokens served by \($0.key)" }.joined(separator: ", ")
                    + ": if that is who billed, a correction would bill those tokens twice",
                remedy: "an export that names each line's provider (ProviderName, ServiceProviderName or x_Vendor), or events that name the vendor billing them"
            )
        }
    }

    /// The plugins that sell what a provider label names: its id (`aws-bedrock`, any spelling),
    /// or a provider name it registers, alone or leading the label ("amazon web services emea
    /// sarl", "aws marketplace", "microsoft azure").
    func sellers(of provider: String) -> [String] {
        let label = ProviderName.normalized(provider), spelt = Self.letters(provider)
        return registry.plugins.filter { p in
            Self.letters(p.id) == spelt || p.providerNames.contains { label == $0 || label.hasPrefix($0 + " ") }
        }.map { $0.id }
    }

    /// Corrections an earlier run posted under a format that bills several providers (a FOCUS
    /// export's model sold by two of them, a UBL invoice): they may be this vendor's usage, which
    /// this run would otherwise set aside as another vendor's and correct again (a loss, or an
    /// over-metering). The model's corrections are held.
    func correctionsOfSeveralProviders(_ meter: MeterLedger) -> [EvidenceReason] {
        let formats = Set(registry.plugins.filter { $0.providerNames.isEmpty }.map { $0.id })
        return meter.correctionsUnderOtherVendors.sorted { $0.key < $1.key }.compactMap { model, byVendor in
            let named = byVendor.filter { formats.contains($0.key) && $0.value != 0 }.sorted { $0.key < $1.key }
            guard !named.isEmpty else { return nil }
            return EvidenceReason(
                code: "corrections_under_a_multi_provider_format", effect: .blocksModel, modelID: model,
                detail: "corrections of \(model) were posted under \(named.map { "vendor=\($0.key) (\($0.value) tokens)" }.joined(separator: ", ")) "
                    + "by a run over an export that bills several providers: they may be this vendor's usage already corrected",
                remedy: "revert that run (usagebox reconcile revert ID) and reconcile each provider with its own export, or keep to that export's runs")
        }
    }

    /// Metered usage of the invoice's models under another spelling of this vendor's name
    /// ("Anthropic", " anthropic", "anthropic-console"): set aside as another vendor's, it may be
    /// this vendor's usage under a mistyped label, so the vendor billing more than the meter shows
    /// is no evidence of under-metering for that model. A label naming a vendor UsageBox knows
    /// (Claude served by aws-bedrock) or another seller (openrouter) is that seller's, and billed by it.
    func unknownVendorLabels(_ meter: MeterLedger, card: any RateCardConverter, plugin: any VendorPlugin.Type) -> [EvidenceReason] {
        let mayBeMisspelt = misspellings(of: [plugin.id, card.vendor])
        // Read loosely too (`claude-sonnet-4.5`): a check that holds when unsure, as apply's is.
        let loose = ModelID.LooseModels(card.models)
        let byModel = meter.servedElsewhere { raw, label in mayBeMisspelt(label) ? card.canonicalModel(raw) ?? loose.match(raw) : nil }
        return byModel.sorted { $0.key < $1.key }.map { model, labels in
            EvidenceReason(
                code: "metered_under_unknown_vendor", effect: .blocksPositive, modelID: model,
                detail: "the meter holds "
                    + labels.sorted { $0.key < $1.key }.map { "\($0.value) tokens of \(model) under vendor='\($0.key)'" }.joined(separator: ", ")
                    + ", a vendor no plugin or card is called by: it may be \(plugin.id)'s usage under a mistyped label",
                remedy: "send vendor=\(plugin.id) on those events (or the id of the vendor that served them)")
        }
    }

    /// A model billed above the meter by what the meter holds of it under another vendor's label
    /// (one token type's gap, or the model's gaps together, within their tolerance or a
    /// thousandth): a collector that labelled this vendor's traffic as another's (a failover)
    /// looks exactly like that, and the correction would bill those tokens twice. +3,300,000 was
    /// proposed on a Bedrock bill whose gap was, token for token, Claude labelled `anthropic`.
    /// Only where the meter was read for one account: usage set aside is not counted by account,
    /// and another account's Bedrock traffic is no mislabel of this one's.
    /// Labels that may be this vendor's mistyped are `metered_under_unknown_vendor`'s.
    static func gapMatchesUsageElsewhere(
        _ diff: GapDiff, meter: MeterLedger, card: any RateCardConverter, scope: AccountScope, mistyped: (String) -> Bool
    ) -> [EvidenceReason] {
        guard case let .accounts(read) = scope, read.count == 1 else { return [] }
        let loose = ModelID.LooseModels(card.models)
        let elsewhere = meter.servedElsewhere { raw, label in mistyped(label) ? nil : card.canonicalModel(raw) ?? loose.match(raw) }
        return diff.models.compactMap { m -> EvidenceReason? in
            guard let labels = elsewhere[m.modelID],
                let (label, tokens) = labels.sorted(by: { $0.key < $1.key }).first(where: { m.isAboveTheMeter(by: $0.value) })
            else { return nil }
            return EvidenceReason(
                code: "gap_matches_usage_under_another_vendor", effect: .blocksPositive, modelID: m.modelID,
                detail: "the vendor bills \(m.modelID) above the meter by what the meter holds of it under vendor='\(label)' "
                    + "(\(tokens) tokens): a collector that labelled this vendor's traffic as \(label)'s looks like that, "
                    + "and a correction would bill those tokens twice",
                remedy: "check which vendor served those events; if \(label) did, correct by hand")
        }
    }

    /// Whether a `vendor` label may be another spelling of one of `names` ("Anthropic",
    /// "anthropic-console", "bedrock" for aws-bedrock, "azure" for azure-openai): a vendor no plugin
    /// or card is called by whose letters contain one of theirs, a word of theirs of four letters
    /// or more ("vertex-ai"), or one of their plugins' provider names ("google" for google-vertex),
    /// or make up four or more letters of one of theirs. A reseller (openrouter, litellm) is its
    /// own vendor. The sets are built once, for every label a loop asks about.
    public func misspellings(of names: Set<String>) -> @Sendable (String) -> Bool {
        let known = Set(registry.plugins.map { $0.id } + cards.values.map(\.vendor) + cards.keys)
        let own = Set(names.map(Self.letters)).filter { !$0.isEmpty }
        let providers = Set(registry.plugins.filter { names.contains($0.id) }.flatMap { $0.providerNames }.map(Self.letters)).filter { !$0.isEmpty }
        // The words of a vendor's id ("vertex" of google-vertex), four letters or more.
        let words = names.flatMap { $0.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init) }.filter { $0.count >= 4 }
        let contained = own.union(providers).union(words)
        return { (label: String) -> Bool in
            if known.contains(label) || names.contains(label) { return false }
            let spelt: String = Self.letters(label)
            if contained.contains(where: { (name: String) in spelt.contains(name) }) { return true }
            return spelt.count >= 4 && own.contains(where: { (name: String) in name.contains(spelt) })
        }
    }

    /// A name's letters and digits, lowercased ("AWS Bedrock" → "awsbedrock").
    static func letters(_ s: String) -> String { String(s.lowercased().unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) }) }

    /// Where money that may be net matters: a cell (per account, as corrections are made) whose
    /// volume that money gives (not a stated count, as a usage report beside the cost report
    /// states them, nor a list price) is below the meter beyond its rounding tolerance. A discount
    /// only makes the vendor's side read short; above the meter, within rounding, counted, or
    /// priced at list, it changes nothing the run proposes. (Summed per model, one account's
    /// discount hid behind another's under-metering, and its −200,000 was proposed.) The hold is
    /// the model's, every account's: a discount is on a model's price, not on one cell. Models
    /// whose volume came from list prices or counts are not held (Haiku rows with `list_amount`
    /// were, because Sonnet's rows had none).
    static func amountsMayBeNet(_ diff: GapDiff, batch: InvoiceBatch) -> [EvidenceReason] {
        var filesByModel: [String: Set<String>] = [:]
        for (key, cell) in diff.vendor where !cell.sum.netFiles.isEmpty && !cell.sum.allStated {
            guard (diff.metered[key] ?? 0) &- cell.tokens > max(cell.toleranceTokens, 0) else { continue }
            filesByModel[key.model, default: []].formUnion(cell.sum.netFiles.map { batch.files[$0].name })
        }
        // Metered and not billed at all beside such a file: a model credited in full (or its
        // zero-cost rows left out) bills nothing, and the whole meter read as over-metering.
        let allNet = Set(batch.netAmounts.map(\.file))
        if !allNet.isEmpty {
            for (key, metered) in diff.metered where metered > 0 && diff.vendor[key] == nil {
                filesByModel[key.model, default: []].formUnion(allNet)
            }
        }
        let whyOf = Dictionary(batch.netAmounts.map { ($0.file, $0.why) }, uniquingKeysWith: { first, _ in first })
        // Above the meter too, where days read below it by one share from money that may be net:
        // the gap is the loss less those days' discount (20 % off with no list price on May 1–9,
        // beside a Sonnet outage, proposed +2,676,000 of 6,390,000 lost). A discount is a share
        // of the price, on two days or more; one day below (a batch metered twice, a late event)
        // is no discount, and nets as before. Held when what those days take off passes the
        // cell's rounding and a twentieth of its gap.
        var cells: [EvidenceReason] = []
        // One cell held: which files, why their money may be net, and what shows it here.
        func holdCell(_ key: CellKey, files: [String], _ shows: String, remedy: String) {
            cells.append(
                EvidenceReason(
                    code: "amounts_may_be_net", effect: .blocksCell, modelID: key.model, tokenType: key.tokenType, accountID: key.account,
                    detail: "\(key.model) \(key.tokenType?.rawValue ?? "") on \(key.account ?? "every account"): \(files.joined(separator: ", ")): "
                        + "\(Set(files.compactMap { whyOf[$0] }).sorted().joined(separator: "; ")), \(shows)", remedy: remedy))
        }
        // Money that may be net over more than a day (a monthly UBL or FOCUS line): no day can
        // show the discount, so a gap above the meter is the loss less a discount of unknown size
        // (a 5 % allowance on a monthly line beside a 5,878,127 loss proposed +2,830,350: tester Q).
        for (key, cell) in diff.vendor.sorted(by: { $0.key < $1.key }) {
            let spans = cell.clustered.filter { !VendorCell.isOneDay($0.key) && !$0.bucket.netFiles.isEmpty }
            guard !spans.isEmpty else { continue }
            let gap = cell.tokens &- (diff.metered[key] ?? 0)
            guard gap > max(cell.toleranceTokens, 0) else { continue }
            holdCell(
                key, files: Set(spans.flatMap(\.bucket.netFiles)).sorted().map { batch.files[$0].name },
                "over more than a day, so no day shows a discount: the \(gap) above the meter may be the loss less a discount of unknown size",
                remedy: "an invoice that states the token quantity of each line or its list price, or the vendor's daily usage export")
        }
        for (key, cell) in diff.vendor.sorted(by: { $0.key < $1.key }) where !cell.sum.netFiles.isEmpty && !cell.sum.allStated && !cell.hasUndated {
            let gap = cell.tokens &- (diff.metered[key] ?? 0)
            guard gap > max(cell.toleranceTokens, 0) else { continue }
            let metered = diff.meteredDaily[key] ?? [:]
            var under: [(tokens: Int64, share: Decimal)] = []
            for (day, sum) in cell.daily where !sum.netFiles.isEmpty && !sum.allStated {
                let m = metered[day] ?? 0, u = m &- sum.tokens
                // Half a point at least: midnight jitter of 0.1 % on busy days is no discount.
                if u > max(sum.toleranceTokens, 0), m > 0, Decimal(exactly: u) / Decimal(exactly: m) >= Self.leastFactor {
                    under.append((u, Decimal(exactly: u) / Decimal(exactly: m)))
                }
            }
            // The share most of those days agree on (a dictionary's order chose among as many).
            guard let share = Self.mostAgreedShare(under.map(\.share))?.share else { continue }
            let discounted = under.filter { Self.oneFactor($0.share, share) }
            let short = discounted.reduce(Int64(0)) { $0 &+ $1.tokens }, days = discounted.count
            guard days >= 2, short > max(cell.toleranceTokens, gap / 20) else { continue }
            holdCell(
                key, files: cell.sum.netFiles.sorted().map { batch.files[$0].name },
                "and on \(days) day(s) that money reads \(short) tokens below the meter: the \(gap) above it is the loss less a discount of unknown size",
                remedy: "an export that states list prices, or the vendor's usage report (token counts)")
        }
        return cells
            + filesByModel.sorted { $0.key < $1.key }.flatMap { model, files in
                Dictionary(grouping: files.sorted()) { whyOf[$0] ?? "" }.sorted { $0.key < $1.key }.map { why, files in
                    EvidenceReason(
                        code: "amounts_may_be_net", effect: .blocksNegative, modelID: model,
                        detail: "\(model): \(files.joined(separator: ", ")): \(why), so a vendor total below the meter may be a discount, not over-metering",
                        remedy: "an export that states list prices, or the vendor's usage report (token counts)")
                }
            }
    }

    /// Earlier runs of this vendor whose corrections are still on the meter (applied, not
    /// reverted) and whose period overlaps this one without being it or lying inside it. Their
    /// corrections sit at their period's last second: outside this period they leave its share of
    /// the gap to be corrected again (May corrected, then May 1–31 00:00 proposed it twice); inside
    /// it they count a whole period's gap against part of it.
    func overlappingRuns(
        _ o: ReconciliationOptions, plugin: any VendorPlugin.Type, store: any MeterStore, log: (any ReconciliationLog)?
    ) async throws -> [EvidenceReason] {
        try await Self.overlappingRuns(range: o.range, scope: o.account.map { .accounts([$0]) } ?? o.scope, vendor: plugin.id, store: store, log: log)
    }

    /// The corrections runs of `vendor` posted in `range`, grouped by run (`reconciliation_id`);
    /// nil when the rollups drop the dimensions that say so.
    static func correctionsByRun(vendor: String, scope: AccountScope, range: TimeRange, store: any MeterStore) async throws -> UsageResult? {
        do {
            return try await store.usage(
                UsageQuery(
                    scope: scope, range: range, groupBy: [.dimension("reconciliation_id")],
                    filters: [
                        UsageFilter(field: .kind, op: .eq, values: [EventKind.correction.rawValue]),
                        UsageFilter(field: .dimension("source"), op: .eq, values: ["vendor_reconciliation"]),
                        UsageFilter(field: .dimension("vendor"), op: .eq, values: [vendor]),
                    ]))
        } catch let e as UsageBoxError where e.code == .invalidArgument {
            return nil
        }
    }

    /// The same, for a recorded run about to post (another run applied since it ran).
    static func overlappingRuns(
        range: TimeRange, scope: AccountScope, vendor: String, store: any MeterStore, log: (any ReconciliationLog)?
    ) async throws -> [EvidenceReason] {
        let o = (range: range, scope: scope)
        guard let log else { return [] }
        // An overlapping period ends after this one starts and starts before it ends, so its
        // corrections (at its end, less a second) fall in this window; periods are at most a year.
        let year = Self.longestPeriodDays * 24 * Timestamp.microsPerHour
        guard
            let window = try? TimeRange(
                from: Timestamp(microseconds: o.range.from.microseconds - 1_000_000),
                to: Timestamp(microseconds: o.range.to.microseconds + year))
        else { return [] }
        // A meter whose rollups drop these dimensions: nothing to compare.
        guard let byRun = try await correctionsByRun(vendor: vendor, scope: o.scope, range: window, store: store) else { return [] }
        let archive = ReconciliationArchive(log)
        var reasons: [EvidenceReason] = []
        // By the log, not the meter's net: a relabel's pair nets to zero and is still applied.
        for g in byRun.groups where g.aggregate.count > 0 {
            guard let id = g.keys[0], let earlier = try await archive.report(id: id), earlier.applied, earlier.revertedAt == nil else { continue }
            let p = (from: earlier.from, to: earlier.to)
            let overlaps = p.from < o.range.to && o.range.from < p.to
            let inside = o.range.from <= p.from && p.to <= o.range.to
            guard overlaps, !inside else { continue }
            reasons.append(
                EvidenceReason(
                    code: "overlaps_reconciled_period", effect: .inconclusive,
                    detail: "reconciliation \(id) (\(p.from.rfc3339) to \(p.to.rfc3339)) posted \(g.aggregate.count) correction(s) "
                        + "for a period this one cuts across; they are dated \(Timestamp(microseconds: p.to.microseconds - 1_000_000).rfc3339), "
                        + (p.to > o.range.to
                            ? "after this period, so its share of the gap would be corrected again" : "inside this period, for days outside it too"),
                    remedy: "reconcile the period \(id) reconciled (or one containing it), or revert \(id) first"))
        }
        return reasons
    }

    /// `recon_may_2026_vendor_anthropic` for a calendar month, else `recon_<from>_<to>_vendor_<vendor>`.
    public static func correctionRef(range: TimeRange, vendor: String) -> String {
        let months = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"]
        if range.from == range.from.startOfMonth, range.to == range.from.startOfNextMonth {
            let parts = range.from.monthString.split(separator: "-")
            return "recon_\(months[Int(parts[1])! - 1])_\(parts[0])_vendor_\(vendor)"
        }
        return "recon_\(range.from.dayString)_\(range.to.dayString)_vendor_\(vendor)"
    }

    static func reportID(_ now: Timestamp) -> String {
        let stamp = now.rfc3339.filter(\.isNumber).prefix(14)
        var generator = SystemRandomNumberGenerator()
        let random = (0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        return "rec_\(stamp)_\(random)"
    }
}
