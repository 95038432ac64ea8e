public import ExactJSON
public import Foundation
public import Metering

/// The result of a reconciliation run: what the JSON, table and Markdown show, and what the log
/// stores. It is its own wire shape (`Codable`, snake_case keys, money as exact decimal strings,
/// quantities as 64-bit integers), so a stored report reads back equal to the one written.
public struct ReconciliationReport: Codable, Equatable, Sendable {
    public var id: String
    public var vendor: String
    public var accountID: String?
    /// `account` when the caller asserted the invoice is that account's alone.
    public var invoiceScope: InvoiceScope
    public var from: Timestamp
    public var to: Timestamp
    /// Whether the evidence allows corrections at all (docs/reconciliation.md).
    public var verdict: Verdict
    /// Every limit on the evidence, on a conclusive run too, each with what would lift it.
    public var reasons: [EvidenceReason]
    public var invoice: InvoiceSummary
    public var coverage: CoverageSummary
    public var rateCard: CardSummary
    public var rules: RulesSummary
    public var verify: VerifySummary
    public var models: [ModelRow]
    public var total: Total
    public var shape: GapShape
    /// Vendor total ÷ metered total, four decimals, for a uniform gap.
    public var impliedFactor: String?
    public var unmeteredTokenTypes: [TokenType]
    public var findings: [Finding]
    /// Days on which the vendor's implied price changed for several models at once.
    public var priceSteps: [PriceStep]
    /// Per day × model × token type: metered, vendor, gap, money, implied price.
    public var days: [DayRow]
    /// Vendor volume no account map entry claims, beside the per-account residuals.
    public var unattributed: [UnattributedVolume]
    public var unmapped: [Unmapped]
    /// Meter rows the reconciliation could not compare (a model no card knows, a meter not in tokens).
    public var meteredOutOfScope: [MeteredOutOfScope]
    public var corrections: [ProposedCorrection]
    /// Corrections that need a person's review before `--apply --confirm-large` posts them.
    public var held: [HeldCorrection]
    /// Every correction the run may post: proposed, then held (the order their slots follow).
    public var everyCorrection: [ProposedCorrection] { corrections + held.map(\.correction) }
    /// What the meter held in each corrected cell when the run was made: applying checks it has
    /// not moved since (a late event would otherwise be billed twice).
    public var meterBasis: [MeterBasis]
    /// How computed money is rounded (vendor amounts are exact sums of the invoice's own amounts).
    public var rounding: [String: String]
    /// True only once something was posted.
    public var applied: Bool
    public var appliedEventIDs: [String]
    public var appliedAt: Timestamp?
    public var revertedAt: Timestamp?
    public var runBy: String
    public var createdAt: Timestamp
    /// For a run of one account with no account map (the invoice as given): what apply checks of
    /// the other accounts. Nil otherwise, and in reports written before it was kept.
    public var scopeBasis: ScopeBasis? = nil

    /// A conclusive run of one account saw no other account meter the invoice's models; another
    /// account's late events of them make a fresh run inconclusive (`other_accounts_in_scope`),
    /// so apply refuses once any appears. An old run applied after them posted the other
    /// account's usage to this one.
    public struct ScopeBasis: Codable, Equatable, Sendable {
        public var accountID: String
        public var meterID: String?
        /// The invoice's models (canonical ids): another account's usage under any id that may be
        /// one of them (`ModelID.mayBe`, as the run's own check reads the other accounts) counts.
        public var models: [String]
        enum CodingKeys: String, CodingKey { case accountID = "account_id", meterID = "meter_id", models }

        public init(accountID: String, meterID: String?, models: [String]) {
            self.accountID = accountID
            self.meterID = meterID
            self.models = models
        }

        // Reports recorded for a few minutes on the day it landed kept raw ids instead.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            accountID = try c.decode(String.self, forKey: .accountID)
            meterID = try c.decodeIfPresent(String.self, forKey: .meterID)
            models = try c.decodeIfPresent([String].self, forKey: .models) ?? []
        }

        /// Tokens per other account, of the invoice's models, in `range` (`MeterBasis.accounts`).
        func otherAccounts(
            range: TimeRange, store: any MeterStore, counts: (String?) -> Bool, units: [String: String],
            canonical: (String) -> String? = { _ in nil }
        ) async throws -> [String: Int64] {
            // Each account's models added up, as the fresh run's `other_accounts_in_scope` adds them.
            try await ReconciliationReport.accounts(
                outside: [accountID], metering: models, range: range, store: store, counts: counts, units: units, canonical: canonical
            ).mapValues { $0.values.reduce(0, &+) }.filter { $0.value > 0 }
        }
    }

    /// Per account not in `named`, the tokens of each of `models` it metered in `range`. `canonical`: the run's card's reading of a model id where the card is one
    /// shipped (its aliases: Azure's `4o`), beside the loose reading. Read as a fresh run's scope
    /// check reads them (`MeterLedger.everyAccount`): every meter in tokens at any scale, not only
    /// the run's `--meter-id`; usage labelled as served by another vendor left out (`counts`: this
    /// run's names, a label that may be one mistyped, or none) — another account's Claude through
    /// Bedrock refused every apply of a conclusive run, for good; another account's `Anthropic`
    /// counts (it was left out, and an org-wide bill's share of it was proposed on the run's
    /// account). Per model, for the map's check (`unmapped_account_meters_model`
    /// is per model: a hand correction taking one model's tokens off an account hid another's).
    static func accounts(
        outside named: Set<String>, metering models: [String], range: TimeRange, store: any MeterStore, counts: (String?) -> Bool,
        units: [String: String], canonical: (String) -> String?
    ) async throws -> [String: [String: Int64]] {
        let loose = ModelID.LooseModels(models)
        var byVendor = true
        while true {
            do {
                var out: [String: [String: Int64]] = [:]
                let query = UsageQuery(
                    scope: .all, range: range, groupBy: [.accountID, .modelID, .meterID] + (byVendor ? [.dimension("vendor")] : []))
                try await store.forEachGroup(query) { g in
                    guard let account = g.keys[0], !named.contains(account), let raw = g.keys[1], MeterLedger.holdsTokens(g.keys[2], units),
                        !byVendor || counts(g.keys[3]),
                        let model = canonical(raw).flatMap({ models.contains($0) ? $0 : nil }) ?? loose.match(raw)
                    else { return }
                    out[account, default: [:]][model, default: 0] &+= g.aggregate.sum
                }
                return out
            } catch let e as UsageBoxError where byVendor && e.field == "vendor" {
                byVendor = false  // no event names a vendor
            }
        }
    }

    /// For a run with an account map that proposes corrections: the accounts the map names and
    /// the invoice's models. A fresh run holds a mapped account's positive gap of a model while an
    /// account the map does not name meters it (`unmapped_account_meters_model`), and the backing
    /// out of an unmapped account's usage while it meters any of them (`account_not_in_map`); the
    /// run saw neither, so apply refuses once either appears (an unmapped account's late events
    /// were posted to the mapped account: +520,000). Nil otherwise, and in reports written
    /// before it was kept (before 2026-12-03, only for runs correcting upward).
    public var mapBasis: MapBasis? = nil

    /// For a run of every account in its scope (no `--account`) that proposes corrections: how
    /// many events those accounts held, in the period and three hours either side, on meters in
    /// tokens at any scale, under this vendor's names, a label that may be one mistyped, or none.
    /// A fresh run holds corrections for what any account in scope meters (a loosely written id,
    /// a `tokens_k` meter, an untyped or unbilled token type, Claude others sell too), and apply
    /// checked only the corrected accounts: it refuses once this count moved beyond the run's
    /// own corrections. Nil otherwise, and in reports written before it was kept.
    public var scopeEvents: ScopeEvents? = nil

    public struct ScopeEvents: Codable, Equatable, Sendable {
        /// The accounts read; nil for every account.
        public var accounts: [String]?
        public var vendors: [String]
        public var events: Int64
        public init(accounts: [String]?, vendors: [String], events: Int64) {
            self.accounts = accounts
            self.vendors = vendors
            self.events = events
        }
    }

    public struct MapBasis: Codable, Equatable, Sendable {
        public var mapped: [String]
        public var models: [String]
        public init(mapped: [String], models: [String]) {
            self.mapped = mapped
            self.models = models
        }
    }

    public var range: TimeRange { (try? TimeRange(from: from, to: to)) ?? { fatalError("a report's range is validated when it is made") }() }

    enum CodingKeys: String, CodingKey {
        case id, vendor, accountID = "account_id", invoiceScope = "invoice_scope", from, to, verdict, reasons, invoice, coverage
        case rateCard = "rate_card", rules, verify, models, total, shape, impliedFactor = "implied_factor"
        case unmeteredTokenTypes = "unmetered_token_types", findings, priceSteps = "price_steps", days, unattributed, unmapped
        case meteredOutOfScope = "metered_out_of_scope", corrections, held, meterBasis = "meter_basis", rounding, applied
        case appliedEventIDs = "applied_event_ids", appliedAt = "applied_at", revertedAt = "reverted_at", runBy = "run_by"
        case createdAt = "created_at", scopeBasis = "scope_basis", mapBasis = "map_basis", scopeEvents = "scope_events"
    }

    public enum Verdict: String, Codable, Sendable { case conclusive, inconclusive }

    public struct InvoiceSummary: Codable, Equatable, Sendable {
        public var sha256: String
        public var files: [File]
        public var format: String
        public var currency: String
        public var lines: Int
        /// In `currency` (the card's): lines in another currency count where a rate converts them.
        public var amount: ExactAmount
        public var unmappedAmount: ExactAmount
        /// What the invoice bills per currency, as written.
        public var amountsByCurrency: [String: String]
        /// Currencies left out of `amount` for want of a rate.
        public var unconvertedCurrencies: [String]

        public struct File: Codable, Equatable, Sendable {
            public var name: String
            public var sha256: String
            public var parser: String
        }

        enum CodingKeys: String, CodingKey {
            case sha256, files, format, currency, lines, amount, unmappedAmount = "unmapped_amount"
            case amountsByCurrency = "amounts_by_currency", unconvertedCurrencies = "unconverted_currencies"
        }
    }

    public struct CardSummary: Codable, Equatable, Sendable {
        public var vendor: String
        public var version: String
        public var sha256: String
        /// The card's text when it is not one this binary ships (`--rate-card FILE`): apply reads
        /// late events' model ids through the card the run read them with.
        public var yaml: String? = nil
        /// The run's `--model-map`, when it had one: an input of the run, and how apply reads ids.
        public var modelMap: [String: String]? = nil

        enum CodingKeys: String, CodingKey { case vendor, version, sha256, yaml, modelMap = "model_map" }
    }

    public struct RulesSummary: Codable, Equatable, Sendable {
        /// In the order they are consulted: plugin classifiers, the team's file, the defaults.
        public var chain: [String]
        public var sha256: String
    }

    public struct VerifySummary: Codable, Equatable, Sendable {
        public var ok: Bool
        public var mode: VerifyMode
        public var drift: Int64
    }

    public struct TokenTypeRow: Codable, Equatable, Sendable {
        public var tokenType: TokenType?
        public var metered: Int64
        public var vendor: Int64
        public var gap: Int64
        public var gapPct: String?
        public var tolerance: Int64
        public var vendorAmount: ExactAmount
        public var gapAmount: ExactAmount
        /// The list (pre-discount) money where the export gives it; `vendor_amount` is what was billed.
        public var listAmount: ExactAmount?

        public init(tokenType: TokenType?, metered: Int64, vendor: Int64, tolerance: Int64, vendorAmount: Decimal, gapAmount: Decimal) {
            self.tokenType = tokenType
            self.metered = metered
            self.vendor = vendor
            self.gap = vendor - metered
            self.gapPct = ReconciliationReport.gapPercent(gap: vendor - metered, metered: metered)
            self.tolerance = tolerance
            self.vendorAmount = ExactAmount(vendorAmount)
            self.gapAmount = ExactAmount(gapAmount)
        }

        public var beyondTolerance: Bool { gap.magnitude > UInt64(clamping: tolerance) }

        enum CodingKeys: String, CodingKey {
            case tokenType = "token_type", metered, vendor, gap, gapPct = "gap_pct", tolerance, vendorAmount = "vendor_amount"
            case gapAmount = "gap_amount", listAmount = "list_amount"
        }
    }

    public struct ModelRow: Codable, Equatable, Sendable {
        public var modelID: String
        public var metered: Int64
        public var vendor: Int64
        public var gap: Int64
        public var gapPct: String?
        public var tolerance: Int64
        public var vendorAmount: ExactAmount
        public var gapAmount: ExactAmount
        public var tokenTypes: [TokenTypeRow]

        public init(modelID: String, tokenTypes: [TokenTypeRow]) {
            self.modelID = modelID
            self.tokenTypes = tokenTypes
            metered = tokenTypes.reduce(0) { $0 + $1.metered }
            vendor = tokenTypes.reduce(0) { $0 + $1.vendor }
            gap = vendor - metered
            gapPct = ReconciliationReport.gapPercent(gap: gap, metered: metered)
            tolerance = tokenTypes.reduce(0) { $0 + $1.tolerance }
            vendorAmount = ExactAmount(tokenTypes.reduce(Decimal(0)) { $0 + $1.vendorAmount.value })
            gapAmount = ExactAmount(tokenTypes.reduce(Decimal(0)) { $0 + $1.gapAmount.value })
        }

        public var beyondTolerance: Bool { gap.magnitude > UInt64(clamping: tolerance) }

        enum CodingKeys: String, CodingKey {
            case modelID = "model_id", metered, vendor, gap, gapPct = "gap_pct", tolerance, vendorAmount = "vendor_amount"
            case gapAmount = "gap_amount", tokenTypes = "token_types"
        }
    }

    public struct Total: Codable, Equatable, Sendable {
        public var metered: Int64
        public var vendor: Int64
        public var gap: Int64
        public var gapAmount: ExactAmount

        enum CodingKeys: String, CodingKey { case metered, vendor, gap, gapAmount = "gap_amount" }
    }

    public struct Finding: Codable, Equatable, Sendable {
        /// Whether the engine itself decided this finding by `rule`: a team rule may carry any id,
        /// `token-type-swap` or `stated-quantity` too (such an id lifted the swap hold).
        func isEngine(_ rule: String) -> Bool { classifier == "engine" && self.rule == rule }

        /// Who decided, as reports print it: a blocked finding was decided by the evidence,
        /// whatever rule classed it first (the rule alone read as if a team's rule had called the
        /// gap unexplained: tester N).
        public var decidedBy: String { blockedBy.isEmpty ? "\(classifier) \(rule)" : "evidence, over \(classifier) \(rule)" }

        public var modelID: String
        public var tokenType: TokenType?
        public var accountID: String?
        /// Vendor minus metered, tokens.
        public var quantity: Int64
        public var amount: ExactAmount
        public var metered: Int64
        public var vendor: Int64
        public var gapClass: GapClass
        /// The rule (or classifier) that decided, and where it came from.
        public var rule: String
        public var classifier: String
        public var reason: String
        /// The evidence that kept this gap from becoming a correction (reason codes).
        public var blockedBy: [String]
        /// The first day the daily gap went beyond tolerance, and on how many days it was.
        public var gapSince: String?
        public var gapDays: Int?
        /// For a mislabel, the token type this one was confused with, and the money the pair nets to.
        public var pairedWith: TokenType?
        public var pairAmount: ExactAmount?

        public init(
            modelID: String, tokenType: TokenType?, accountID: String?, quantity: Int64, amount: ExactAmount, metered: Int64,
            vendor: Int64, gapClass: GapClass, rule: String, classifier: String, reason: String, blockedBy: [String] = [],
            gapSince: String? = nil, gapDays: Int? = nil, pairedWith: TokenType? = nil, pairAmount: ExactAmount? = nil
        ) {
            self.modelID = modelID
            self.tokenType = tokenType
            self.accountID = accountID
            self.quantity = quantity
            self.amount = amount
            self.metered = metered
            self.vendor = vendor
            self.gapClass = gapClass
            self.rule = rule
            self.classifier = classifier
            self.reason = reason
            self.blockedBy = blockedBy
            self.gapSince = gapSince
            self.gapDays = gapDays
            self.pairedWith = pairedWith
            self.pairAmount = pairAmount
        }

        enum CodingKeys: String, CodingKey {
            case modelID = "model_id", tokenType = "token_type", accountID = "account_id", quantity, amount, metered, vendor
            case gapClass = "class", rule, classifier, reason, blockedBy = "blocked_by", gapSince = "gap_since", gapDays = "gap_days"
            case pairedWith = "paired_with", pairAmount = "pair_amount"
        }
    }

    /// A day on which the vendor's implied price moved for several models while the meter did not.
    public struct PriceStep: Codable, Equatable, Sendable {
        public var date: String
        /// `several_models`: the vendor's price moved for two models or more that day (a pricing
        /// gap); `one_model`: one model's token types all moved by one ratio, which a steady loss
        /// of that model's requests from that day also shows (its gaps are held, not priced);
        /// `one_token_type`: the same of one model × token type.
        public var kind: Kind
        public var rates: [Rate]

        public enum Kind: String, Codable, Sendable {
            case severalModels = "several_models", oneModel = "one_model"
            /// One model × token type off the meter by one share from that day to the period's end
            /// (rule `one-cell-factor`): a price the card lacks, or a steady loss (held).
            case oneTokenType = "one_token_type"
        }

        /// A step a steady loss from that day would look the same as: its gaps are held, and its
        /// card is for a person who has the vendor's price list.
        public var mayBeALoss: Bool { kind != .severalModels }

        /// What moved, in words: "one model (claude-sonnet-4-5)", "one token type (claude-sonnet-4-5 input)".
        public var movedAlone: String? {
            switch kind {
            case .severalModels: return nil
            case .oneModel: return "one model (\(rates.first?.modelID ?? ""))"
            case .oneTokenType: return "one token type (\(rates.first.map { "\($0.modelID) \($0.tokenType?.rawValue ?? "")" } ?? ""))"
            }
        }

        public init(date: String, kind: Kind = .severalModels, rates: [Rate]) {
            self.date = date
            self.kind = kind
            self.rates = rates
        }

        // Reports recorded before `kind` existed listed only steps of several models.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            date = try c.decode(String.self, forKey: .date)
            kind = try c.decodeIfPresent(Kind.self, forKey: .kind) ?? .severalModels
            rates = try c.decode([Rate].self, forKey: .rates)
        }

        public struct Rate: Codable, Equatable, Sendable {
            public var modelID: String
            public var tokenType: TokenType?
            /// Implied price per million tokens before and from the date (6 decimals).
            public var beforePerMillion: String
            public var afterPerMillion: String
            enum CodingKeys: String, CodingKey {
                case modelID = "model_id", tokenType = "token_type", beforePerMillion = "before_per_million", afterPerMillion = "after_per_million"
            }
        }
    }

    /// One day of one model × token type.
    public struct DayRow: Codable, Equatable, Sendable {
        public var day: String
        public var modelID: String
        public var tokenType: TokenType?
        public var metered: Int64
        /// Nil when the vendor bills this model × token type in lines longer than a day.
        public var vendor: Int64?
        public var gap: Int64?
        public var vendorAmount: ExactAmount?
        /// Vendor money ÷ metered tokens (÷ stated tokens where the export states them), per million.
        public var impliedPerMillion: String?
        enum CodingKeys: String, CodingKey {
            case day, modelID = "model_id", tokenType = "token_type", metered, vendor, gap, vendorAmount = "vendor_amount"
            case impliedPerMillion = "implied_per_million"
        }
    }

    public struct UnattributedVolume: Codable, Equatable, Sendable {
        public var modelID: String
        public var tokenType: TokenType?
        public var vendor: Int64
        public var vendorAmount: ExactAmount

        enum CodingKeys: String, CodingKey {
            case modelID = "model_id", tokenType = "token_type", vendor, vendorAmount = "vendor_amount"
        }
    }

    public struct Unmapped: Codable, Equatable, Sendable {
        public var location: String
        public var description: String?
        public var vendorModel: String?
        public var vendorTokenType: String?
        public var amount: ExactAmount?
        public var currency: String
        public var reason: String

        enum CodingKeys: String, CodingKey {
            case location, description, vendorModel = "vendor_model", vendorTokenType = "vendor_token_type", amount, currency, reason
        }
    }

    public struct MeteredOutOfScope: Codable, Equatable, Sendable {
        public var modelID: String?
        public var meterID: String?
        public var tokens: Int64
        public var reason: String

        enum CodingKeys: String, CodingKey { case modelID = "model_id", meterID = "meter_id", tokens, reason }
    }

    public struct MeterBasis: Codable, Equatable, Sendable {
        public var accountID: String
        public var modelID: String
        /// Nil when the model is compared per model (every token type counts).
        public var tokenType: TokenType?
        /// The model ids the meter wrote for it.
        public var rawModelIDs: [String]
        /// The meter read (nil: every meter in tokens).
        public var meterID: String?
        /// Values of the `vendor` dimension that count as this vendor (events without it count too).
        public var vendors: [String]
        public var metered: Int64
        /// How many correction events the cell held in the period; nil in reports written before
        /// it was kept. A correction posted and reverted since leaves the tokens as they were but
        /// is another run's (or a person's) decision on the cell: apply compares it too.
        public var corrections: Int64? = nil
        /// How many correction events the account had ever held — any model, period, token type
        /// or vendor (`CorrectionSlots`): the first slot this run's corrections on it claim. Nil
        /// in reports written before it was kept.
        public var slot: Int64? = nil
        /// What the account metered in the period that could be this run's vendors' usage, when
        /// the run read it (`accountTokens(_:basis:…)`); nil in reports written before it was kept.
        public var accountTokens: Int64? = nil
        /// The same, of usage (not corrections) in the hours just outside the period that a gap
        /// can be matched against (`edgeWindows`): a late event there turns a gap into a boundary
        /// finding, so apply must see it. Nil in reports written before it was kept.
        public var edgeTokens: Int64? = nil
        enum CodingKeys: String, CodingKey {
            case accountID = "account_id", modelID = "model_id", tokenType = "token_type", rawModelIDs = "raw_model_ids", meterID = "meter_id"
            case vendors, metered, corrections, slot, accountTokens = "account_tokens", edgeTokens = "edge_tokens"
        }

        /// Every token an account metered in a range that could be this run's vendors' usage: on
        /// meters in tokens (or with no unit, or tokens at another scale), under any model id or token type (a late event's id
        /// may be one the run never read), leaving out what a `vendor` dimension `counts` refuses
        /// claims and corrections of models other than `corrected` (written as corrections are:
        /// canonical ids; none corrected: usage alone) — what `accountTokens` and `edgeTokens` hold.
        static func tokens(
            _ account: String, corrected: Set<String>, counts: (String) -> Bool, range: TimeRange, store: any MeterStore,
            units: [String: String]
        ) async throws -> Int64 {
            var byVendor = true
            while true {
                do {
                    let r = try await store.usage(
                        UsageQuery(
                            scope: .accounts([account]), range: range,
                            groupBy: [.meterID, .kind, .modelID] + (byVendor ? [UsageField.dimension("vendor")] : [])))
                    return r.groups.reduce(Int64(0)) { total, g in
                        // Tokens at another scale (`tokens_k`) count too, in their own unit: a late
                        // event there makes a fresh run hold the model (`metered_in_other_units`).
                        guard MeterLedger.holdsTokens(g.keys[0], units)
                        else { return total }
                        if byVendor, let v = g.keys[3], !counts(v) { return total }
                        if g.keys[1] == EventKind.correction.rawValue, !corrected.contains(g.keys[2] ?? "") { return total }
                        return total &+ g.aggregate.sum
                    }
                } catch let e as UsageBoxError where byVendor && e.field == "vendor" {
                    byVendor = false  // a store that never saw the dimension refuses to group by it
                }
            }
        }

        /// `accountTokens` as a report's basis reads it for an account: the models it corrects
        /// there, the vendors it counts.
        static func accountTokens(
            _ account: String, basis: [MeterBasis], range: TimeRange, store: any MeterStore, units: [String: String]
        ) async throws -> Int64 {
            let mine = basis.filter { $0.accountID == account }
            let vendors = Set(mine.flatMap(\.vendors))
            return try await tokens(account, corrected: Set(mine.map(\.modelID)), counts: vendors.contains, range: range, store: store, units: units)
        }

        /// The hours just outside `range` whose usage a boundary finding matches a gap against:
        /// `MeterLedger.edgeHours` before its start and after its end.
        static func edgeWindows(_ range: TimeRange) throws -> [TimeRange] {
            let h = Timestamp.microsPerHour * Int64(MeterLedger.edgeHours)
            return [
                try TimeRange(from: Timestamp(microseconds: range.from.microseconds - h), to: range.from),
                try TimeRange(from: range.to, to: Timestamp(microseconds: range.to.microseconds + h)),
            ]
        }

        /// `edgeTokens` as a report's basis reads it for an account: usage under this run's vendor
        /// names, and under labels that may be one of them mistyped (`vendor=Anthropic`), which a
        /// fresh run's boundary check counts as well.
        static func edgeTokens(
            _ account: String, basis: [MeterBasis], range: TimeRange, store: any MeterStore, units: [String: String],
            mayBeMisspelt: (String) -> Bool
        ) async throws -> Int64 {
            let vendors = Set(basis.filter { $0.accountID == account }.flatMap(\.vendors))
            var total: Int64 = 0
            for window in try edgeWindows(range) {
                total &+= try await tokens(
                    account, corrected: [], counts: { vendors.contains($0) || mayBeMisspelt($0) }, range: window, store: store, units: units)
            }
            return total
        }
    }

    public struct HeldCorrection: Codable, Equatable, Sendable {
        public var reason: String
        public var detail: String
        public var correction: ProposedCorrection
    }

    /// `gap / metered × 100` with two decimals; nil when nothing was metered.
    public static func gapPercent(gap: Int64, metered: Int64) -> String? {
        guard metered != 0 else { return nil }
        return ExactDecimal.format(Decimal(exactly: gap) * 100 / Decimal(exactly: metered), scale: 2)
    }

    public var isConclusive: Bool { verdict == .conclusive }

    /// What a run proposes, holds, and what the evidence kept back: findings a limit blocked and
    /// those the engine's own checks made `unexplained` (a factor, a card step, a swap, a given
    /// rate). Such a cell is in neither list: a verdict of "0 held" beside one read as if nothing
    /// had been kept back (tester N).
    public var proposalSummary: String {
        let kept = findings.filter { !$0.blockedBy.isEmpty || ($0.classifier == "engine" && $0.gapClass == .unexplained) }.count
        return "\(corrections.count) correction(s) proposed, \(held.count) held for review"
            + (kept > 0 ? ", \(kept) finding(s) kept back by the evidence" : "")
    }
}

/// Whether `--account` claims the whole invoice (`account`) or leaves it to be checked (`as_given`).
public enum InvoiceScope: String, Codable, Sendable, CaseIterable { case asGiven = "as_given", account }

/// One limit on the evidence: what it is, what it blocks, and what would lift it.
public struct EvidenceReason: Codable, Equatable, Sendable {
    public enum Effect: String, Codable, Sendable {
        /// The run proposes no corrections at all.
        case inconclusive
        /// Negative (over-metering) corrections in its scope are blocked; positive residuals stand.
        case blocksNegative = "blocks_negative"
        /// Every correction on its model is blocked.
        case blocksModel = "blocks_model"
        /// Every correction of its model × token type (on its account, when it names one) is blocked.
        case blocksCell = "blocks_cell"
        /// Positive (under-metering) corrections in its scope are blocked.
        case blocksPositive = "blocks_positive"
        /// Every correction on its account is blocked.
        case blocksAccount = "blocks_account"
        /// Recorded for the reviewer; blocks nothing.
        case note
    }

    public var code: String
    public var effect: Effect
    public var modelID: String?
    public var tokenType: TokenType?
    public var accountID: String?
    public var detail: String
    /// What would lift the limit.
    public var remedy: String?
    /// The days concerned (`YYYY-MM-DD`), for coverage gaps.
    public var days: [String]?
    /// Accounts concerned, with what they metered.
    public var accounts: [AccountTotal]?
    public var amount: ExactAmount?

    public init(
        code: String, effect: Effect, modelID: String? = nil, tokenType: TokenType? = nil, accountID: String? = nil,
        detail: String, remedy: String? = nil, days: [String]? = nil, accounts: [AccountTotal]? = nil, amount: Decimal? = nil
    ) {
        self.code = code
        self.effect = effect
        self.modelID = modelID
        self.tokenType = tokenType
        self.accountID = accountID
        self.detail = detail
        self.remedy = remedy
        self.days = days
        self.accounts = accounts
        self.amount = amount.map(ExactAmount.init)
    }

    public struct AccountTotal: Codable, Equatable, Sendable {
        public var accountID: String
        public var metered: Int64
        public init(accountID: String, metered: Int64) {
            self.accountID = accountID
            self.metered = metered
        }
        enum CodingKeys: String, CodingKey { case accountID = "account_id", metered }
    }

    enum CodingKeys: String, CodingKey {
        case code, effect, modelID = "model_id", tokenType = "token_type", accountID = "account_id", detail, remedy, days, accounts, amount
    }

    /// The effect as a reader takes it, with the scope it applies to: `blocks_cell` naming no
    /// model or token type blocks every correction, and "[blocks cell]" read as one cell (tester N).
    public var effectLabel: String? {
        switch effect {
        case .note, .inconclusive: return nil
        case .blocksCell where modelID == nil:
            return "blocks every \(tokenType.map { $0.rawValue + " " } ?? "")correction\(accountID.map { " of \($0)" } ?? "")"
        default: return effect.rawValue.replacingOccurrences(of: "_", with: " ")
        }
    }
}

/// A proposed correction: a `Correction` event in the shape of an ingested event (docs/events.md).
public struct ProposedCorrection: Codable, Equatable, Sendable {
    public var eventID: String
    public var accountID: String
    public var meterID: String
    public var modelID: String?
    public var kind: String
    public var correctionRef: String
    public var quantity: Int64
    /// The meter's own spelling of tokens ("Tokens", "token"), which the correction posts in;
    /// "tokens" where the meter has no unit (then it posts with none, claiming no unit for it).
    public var unit: String
    public var timestamp: Timestamp
    public var dimensions: [String: String]

    public init(
        eventID: String, accountID: String, meterID: String, modelID: String?, correctionRef: String, quantity: Int64,
        unit: String? = nil, timestamp: Timestamp, dimensions: [String: String]
    ) {
        self.eventID = eventID
        self.accountID = accountID
        self.meterID = meterID
        self.modelID = modelID
        self.kind = EventKind.correction.rawValue
        self.correctionRef = correctionRef
        self.quantity = quantity
        self.unit = unit ?? "tokens"
        self.timestamp = timestamp
        self.dimensions = dimensions
    }

    public var tokenType: String? { dimensions["token_type"] }
    public func dimension(_ key: String) -> String? { dimensions[key] }

    /// The event ingest stores.
    public var event: UsageEvent {
        UsageEvent(
            eventID: eventID, accountID: accountID, meterID: meterID, modelID: modelID, kind: .correction,
            correctionRef: correctionRef, quantity: quantity, unit: unit, timestamp: timestamp, dimensions: dimensions)
    }

    enum CodingKeys: String, CodingKey {
        case eventID = "event_id", accountID = "account_id", meterID = "meter_id", modelID = "model_id", kind
        case correctionRef = "correction_ref", quantity, unit, timestamp, dimensions
    }
}

/// The one JSON form of reports and requests: members in declaration order, absent values as
/// `null`, integers and decimal strings exact.
public enum ReconciliationJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> String {
        JSONWriter.write(try JSONValueEncoder.encode(value))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}

extension ReconciliationReport {
    /// The report as the API answers it.
    public var jsonValue: JSONValue {
        // Every member is a plain value with a total encoding; failing here would be a programming error.
        try! JSONValueEncoder.encode(self)
    }

    /// The report's JSON text (the API's answer and what the log keeps).
    public var jsonText: String {
        // Every member is a plain value with a total encoding; failing here would be a programming error.
        try! ReconciliationJSON.encode(self)
    }
}
