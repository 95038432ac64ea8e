import Crypto
public import Foundation
public import Metering

/// Everything a reconciliation run is told (the CLI's flags, the API's JSON body).
public struct ReconciliationOptions: Sendable {
    public var vendor: String
    public var invoices: [InvoiceFile]
    public var range: TimeRange
    /// The one account the invoice belongs to (without an account map).
    public var account: String?
    /// The accounts the caller may see.
    public var scope: AccountScope
    /// Overrides the vendor's card in `RateCards/`.
    public var rateCard: (any RateCardConverter)?
    public var rules: ClassificationRules
    /// Code classifiers consulted before the rules.
    public var classifiers: [any GapClassifier]
    /// Vendor attribution value (workspace, project, API key) → account.
    public var accountMap: [String: String]
    /// Units of the card currency per unit of another currency (`EUR: 1.0842`).
    public var fx: [String: Decimal]
    public var meterID: String?
    public var deepVerify: Bool
    public var allowDrift: Bool
    public var allowOverlap: Bool
    /// Who ran it: a key id, or `cli`.
    public var runBy: String

    public init(vendor: String, invoices: [InvoiceFile], range: TimeRange, account: String? = nil, scope: AccountScope = .all,
                rateCard: (any RateCardConverter)? = nil, rules: ClassificationRules = .defaults(), classifiers: [any GapClassifier] = [],
                accountMap: [String: String] = [:], fx: [String: Decimal] = [:], meterID: String? = nil, deepVerify: Bool = false,
                allowDrift: Bool = false, allowOverlap: Bool = false, runBy: String = "cli") {
        self.vendor = vendor
        self.invoices = invoices
        self.range = range
        self.account = account
        self.scope = scope
        self.rateCard = rateCard
        self.rules = rules
        self.classifiers = classifiers
        self.accountMap = accountMap
        self.fx = fx
        self.meterID = meterID
        self.deepVerify = deepVerify
        self.allowDrift = allowDrift
        self.allowOverlap = allowOverlap
        self.runBy = runBy
    }
}

/// The run stopped because the meter does not agree with itself (exit 3, HTTP 409).
public struct VerifyDrift: Error, Sendable, CustomStringConvertible {
    public var reports: [(account: String, report: VerifyReport)]
    public var description: String {
        let drift = reports.reduce(Int64(0)) { $0 + $1.report.drift }
        let corrupt = reports.reduce(0) { $0 + $1.report.segmentsCorrupt }
        return "verify found drift \(drift) and \(corrupt) corrupt segment(s) in \(reports.map(\.account).joined(separator: ", ")): "
            + "the problem is on our side; fix it (or pass --allow-drift) before comparing with the vendor"
    }
}

/// Runs CONTRACT §5's nine steps over a meter store.
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

    struct GroupKey: Hashable {
        var model: String
        var tokenType: TokenType?
        var account: String?
    }

    struct VendorGroup {
        var exactTokens = Decimal(0)
        var stated: Int64 = 0
        var hasStated = false
        var statedImpliedAmount = Decimal(0)
        var amount = Decimal(0)
        var hasAmount = false
        var tolerance = Decimal(0)
        var amountHalfUnits = Decimal(0)

        var tokens: Int64 { hasStated ? stated : (ExactDecimal.roundedInt64(exactTokens) ?? 0) }
        var toleranceTokens: Int64 { hasStated ? 0 : (ExactDecimal.ceilInt64(tolerance) ?? 0) }
        var vendorAmount: Decimal { hasAmount ? amount : statedImpliedAmount }
    }

    public func run(_ o: ReconciliationOptions, store: any MeterStore) async throws -> ReconciliationReport {
        guard let plugin = registry.plugin(o.vendor) else {
            throw UsageBoxError.invalidArgument("unknown vendor '\(o.vendor)'; known: \(registry.plugins.map { $0.id }.joined(separator: ", "))", field: "vendor")
        }
        guard !o.invoices.isEmpty else { throw UsageBoxError.invalidArgument("no invoice file given", field: "invoice") }
        if let account = o.account, !o.scope.allows(account) {
            throw UsageBoxError(.permissionDenied, "this key may not see account \(account)", field: "account_id")
        }
        let attributed = o.account != nil || !o.accountMap.isEmpty

        // 1. Verify first.
        let accounts: [String]
        if let account = o.account {
            accounts = [account]
        } else {
            let byAccount = try await store.usage(UsageQuery(scope: o.scope, range: o.range, groupBy: [.accountID]))
            accounts = byAccount.groups.compactMap { $0.keys.first ?? nil }
        }
        var drift: Int64 = 0
        var verifyOK = true
        var drifted: [(String, VerifyReport)] = []
        let mode: VerifyMode = o.deepVerify ? .deep : .incremental
        for account in accounts {
            let v = try await store.verify(VerifyRequest(account: account, range: o.range, mode: mode))
            drift += v.drift
            if !v.ok { verifyOK = false; drifted.append((account, v)) }
        }
        if !verifyOK, !o.allowDrift { throw VerifyDrift(reports: drifted) }

        // 2. Parse.
        var lines: [(InvoiceLine, file: Int)] = []
        var files: [(name: String, sha256: String, parser: String)] = []
        var formats = Set<String>()
        for (index, file) in o.invoices.enumerated() {
            guard let parser = plugin.parsers.first(where: { $0.sniff(file) }) else {
                throw UsageBoxError.invalidArgument(
                    "\(file.name): none of the \(plugin.id) parsers (\(plugin.parsers.map(\.id).joined(separator: ", "))) recognizes this file",
                    field: "invoice")
            }
            do {
                for line in try parser.parse(file) { lines.append((line, index)) }
            } catch let e as InvoiceError {
                throw e.usageBoxError
            }
            files.append((file.name, Self.sha256(file.bytes), parser.id))
            formats.insert(parser.format.rawValue)
        }
        // The card: the one named, else one the invoice itself points to (a UBL supplier), else the vendor's.
        let card: any RateCardConverter
        let hints = plugin.cardHints(for: lines.map(\.0)).map { $0.lowercased() }
        if let override = o.rateCard {
            card = override
        } else if let hinted = cards.values.sorted(by: { $0.vendor < $1.vendor }).first(where: { c in
            c.vendor != plugin.rateCardName && !c.models.isEmpty && hints.contains { $0.contains(c.vendor) }
        }) {
            card = hinted
        } else if let c = cards[plugin.rateCardName] {
            card = c
        } else {
            throw UsageBoxError.invalidArgument("no rate card for \(plugin.id); pass --rate-card", field: "rate_card")
        }
        let invoiceSHA = files.count == 1 ? files[0].sha256 : Self.sha256(Array(files.map(\.sha256).joined(separator: "\n").utf8))
        if !o.allowOverlap { try Self.checkOverlap(lines, names: o.invoices.map(\.name)) }

        // 3. Convert.
        var groups: [GroupKey: VendorGroup] = [:]
        var unmapped: [ReconciliationReport.Unmapped] = []
        var invoiceAmount = Decimal(0), unmappedAmount = Decimal(0)
        let currency = lines.first?.0.currency ?? card.currency
        for (line, _) in lines {
            if let a = line.amount { invoiceAmount += a }
            func skip(_ reason: String) {
                if let a = line.amount { unmappedAmount += a }
                unmapped.append(.init(location: line.location, description: line.description, vendorModel: line.vendorModel,
                                      vendorTokenType: line.vendorTokenType, amount: line.amount, currency: line.currency, reason: reason))
            }
            if let reason = line.nonUsageReason { skip(reason); continue }
            if let a = line.amount, a < 0 { skip("credit"); continue }
            guard o.range.contains(line.date) else { skip("out_of_period"); continue }
            // A stated quantity needs no price: FOCUS and usage reports count tokens themselves.
            guard let vendorModel = line.vendorModel,
                  let model = card.canonicalModel(vendorModel) ?? (line.modelIsCanonical && line.quantity != nil ? vendorModel : nil) else {
                skip("unknown_model"); continue
            }
            guard let tokenType = line.tokenType ?? card.aliasTokenType(vendorModel) else { skip("unknown_token_type"); continue }
            var fxRate = Decimal(1)
            if line.currency != card.currency, line.amount != nil {
                guard let rate = o.fx[line.currency] else { skip("no_fx_rate"); continue }
                fxRate = rate
            }
            var price: ResolvedPrice?
            do {
                price = try card.price(model: model, tokenType: tokenType, date: line.date, labels: line.labels)
            } catch {
                guard line.quantity != nil else { skip("no_rate"); continue }
            }
            var account: String?
            if let a = o.account, o.accountMap.isEmpty {
                account = a
            } else if !o.accountMap.isEmpty {
                account = line.attribution.values.sorted().compactMap { o.accountMap[$0] }.first
            }
            if let a = account, !o.scope.allows(a) { account = nil }
            let key = GroupKey(model: model, tokenType: tokenType, account: account)
            var g = groups[key] ?? VendorGroup()
            if let q = line.quantity {
                g.hasStated = true
                g.stated += q
                // Without a card price the vendor's own amount stands (no pricing check possible).
                g.statedImpliedAmount += price.map { Decimal(exactly: q) * $0.perToken } ?? (line.amount.map { $0 * fxRate } ?? 0)
            }
            if let a = line.amount {
                let converted = a * fxRate
                g.hasAmount = true
                g.amount += converted
                let half = ExactDecimal.halfUnit(ofScale: line.amountScale) * fxRate
                g.amountHalfUnits += half
                if line.quantity == nil, let price {
                    g.exactTokens += converted / price.perToken
                    g.tolerance += half / price.perToken
                }
            }
            groups[key] = g
        }

        // 4. Read the meter (net: corrections included), only for models in scope.
        let scopeModels = Set(groups.keys.map(\.model)).union(card.models)
        let meterScope: AccountScope = o.account.map { .accounts([$0]) } ?? o.scope
        var filters: [UsageFilter] = []
        if let m = o.meterID { filters.append(UsageFilter(field: .meterID, op: .eq, values: [m])) }
        var metered: [GroupKey: Int64] = [:]
        var meteredRawModels: [String: Set<String>] = [:]
        var hasTokenType = true
        let reading: UsageResult
        do {
            reading = try await store.usage(UsageQuery(scope: meterScope, range: o.range,
                                                       groupBy: [.modelID, .dimension("token_type"), .accountID], filters: filters))
        } catch let e as UsageBoxError where e.field == "token_type" {
            hasTokenType = false
            reading = try await store.usage(UsageQuery(scope: meterScope, range: o.range, groupBy: [.modelID, .accountID], filters: filters))
        }
        for g in reading.groups {
            guard let raw = g.keys[0], let model = card.canonicalModel(raw) ?? (scopeModels.contains(raw) ? raw : nil),
                  scopeModels.contains(model) else { continue }
            let tokenType: TokenType? = hasTokenType ? g.keys[1].map { TokenType($0) } : nil
            let account = attributed ? g.keys[hasTokenType ? 2 : 1] : nil
            metered[GroupKey(model: model, tokenType: tokenType, account: account), default: 0] += g.aggregate.sum
            meteredRawModels[model, default: []].insert(raw)
        }
        if !hasTokenType {
            // A meter without token types is compared per model only.
            var merged: [GroupKey: VendorGroup] = [:]
            for (k, v) in groups {
                var m = merged[GroupKey(model: k.model, tokenType: nil, account: k.account)] ?? VendorGroup()
                m.exactTokens += v.hasStated ? Decimal(exactly: v.stated) : v.exactTokens
                m.amount += v.vendorAmount
                m.hasAmount = true
                m.tolerance += v.hasStated ? 0 : v.tolerance
                merged[GroupKey(model: k.model, tokenType: nil, account: k.account)] = m
            }
            groups = merged
        }

        // 5. Diff per model × token type (and account), with money beside every figure.
        let allKeys = Set(groups.keys).union(metered.keys)
        func unitPrice(_ model: String, _ tokenType: TokenType?) -> Decimal {
            let vs = groups.filter { $0.key.model == model && $0.key.tokenType == tokenType }.map(\.value)
            let amount = vs.reduce(Decimal(0)) { $0 + $1.vendorAmount }
            let tokens = vs.reduce(Int64(0)) { $0 + $1.tokens }
            if tokens > 0 { return amount / Decimal(exactly: tokens) }
            let tt = tokenType ?? .input
            return (try? card.price(model: model, tokenType: tt, date: o.range.from, labels: [:]).perToken) ?? 0
        }
        var rows: [String: [TokenType?: ReconciliationReport.TokenTypeRow]] = [:]
        for key in allKeys {
            let v = groups[key]
            let m = metered[key] ?? 0
            var row = rows[key.model, default: [:]][key.tokenType]
                ?? .init(tokenType: key.tokenType, metered: 0, vendor: 0, tolerance: 0, vendorAmount: 0, gapAmount: 0)
            row.metered += m
            row.vendor += v?.tokens ?? 0
            row.vendorAmount += v?.vendorAmount ?? 0
            rows[key.model, default: [:]][key.tokenType] = row
        }
        // Tolerance is summed per model × token type from the exact line tolerances, rounded up once.
        var tolerances: [String: [TokenType?: Decimal]] = [:]
        for (k, v) in groups where !v.hasStated { tolerances[k.model, default: [:]][k.tokenType, default: 0] += v.tolerance }
        var models: [ReconciliationReport.ModelRow] = []
        for (model, types) in rows {
            var list: [ReconciliationReport.TokenTypeRow] = []
            for (tt, var row) in types {
                row.tolerance = ExactDecimal.ceilInt64(tolerances[model]?[tt] ?? 0) ?? 0
                row.gapAmount = Decimal(exactly: row.gap) * unitPrice(model, tt)
                list.append(row)
            }
            list.sort { ($0.tokenType?.rawValue ?? "") < ($1.tokenType?.rawValue ?? "") }
            models.append(.init(modelID: model, tokenTypes: list))
        }
        models.sort { $0.modelID < $1.modelID }
        let totalMetered = models.reduce(Int64(0)) { $0 + $1.metered }
        let totalVendor = models.reduce(Int64(0)) { $0 + $1.vendor }

        // 6. Shape.
        let gapped = models.filter(\.beyondTolerance)
        var shape = GapShape.none
        var impliedFactor: Decimal?
        if !gapped.isEmpty {
            shape = .localized
            let totalPct = totalMetered == 0 ? nil : Decimal(exactly: totalVendor - totalMetered) * 100 / Decimal(exactly: totalMetered)
            let metredModels = models.filter { $0.metered != 0 }
            let oneSign = Set(gapped.map { $0.gap > 0 }).count == 1
            let everyMetered = metredModels.allSatisfy(\.beyondTolerance)
            if gapped.count >= 2, oneSign, everyMetered, let totalPct,
               gapped.allSatisfy({ m in m.metered != 0 && abs(Decimal(exactly: m.gap) * 100 / Decimal(exactly: m.metered) - totalPct) <= Decimal(string: "0.5")! }) {
                shape = .uniform
                impliedFactor = Decimal(exactly: totalVendor) / Decimal(exactly: totalMetered)
            }
        }
        var vendorByType: [TokenType: Int64] = [:], meteredByType: [TokenType: Int64] = [:]
        for m in models {
            for t in m.tokenTypes {
                guard let tt = t.tokenType else { continue }
                vendorByType[tt, default: 0] += t.vendor
                meteredByType[tt, default: 0] += t.metered
            }
        }
        let unmeteredTypes = vendorByType.filter { $0.value > 0 && (meteredByType[$0.key] ?? 0) == 0 }.map(\.key).sorted()

        // 7. Classify every gap (per account where attribution exists).
        var findings: [ReconciliationReport.Finding] = []
        for key in allKeys.sorted(by: { ($0.model, $0.tokenType?.rawValue ?? "", $0.account ?? "") < ($1.model, $1.tokenType?.rawValue ?? "", $1.account ?? "") }) {
            let v = groups[key]
            let gap = (v?.tokens ?? 0) - (metered[key] ?? 0)
            guard gap != 0 else { continue }
            let tolerance = v.map { $0.hasStated ? 0 : (ExactDecimal.ceilInt64($0.tolerance) ?? 0) } ?? 0
            let amount = Decimal(exactly: gap) * unitPrice(key.model, key.tokenType)
            let modelMetered = rows[key.model]?[key.tokenType]?.metered ?? 0
            let finding = GapFinding(modelID: key.model, tokenType: key.tokenType, accountID: key.account, quantity: gap, amount: amount,
                                     metered: metered[key] ?? 0, vendor: v?.tokens ?? 0, shape: shape,
                                     unmetered: modelMetered == 0 && (v?.tokens ?? 0) > 0)
            let verdict: GapClassification
            if gap.magnitude <= UInt64(tolerance) {
                verdict = GapClassification(gapClass: .withinTolerance, rule: "tolerance", reason: "within invoice rounding")
            } else {
                verdict = o.classifiers.lazy.compactMap { $0.classify(finding) }.first
                    ?? o.rules.classify(finding)
                    ?? GapClassification(gapClass: .unexplained, rule: "default", reason: "no rule matched")
            }
            findings.append(.init(modelID: key.model, tokenType: key.tokenType, accountID: key.account, quantity: gap, amount: amount,
                                  gapClass: verdict.gapClass, rule: verdict.rule, reason: verdict.reason))
        }
        // Stated quantities priced differently from the card: a pricing gap (wrong card, discount, FX).
        for (key, g) in groups.sorted(by: { ($0.key.model, $0.key.tokenType?.rawValue ?? "") < ($1.key.model, $1.key.tokenType?.rawValue ?? "") })
        where g.hasStated && g.hasAmount {
            let diff = g.amount - g.statedImpliedAmount
            guard abs(diff) > g.amountHalfUnits else { continue }
            let perToken = g.stated > 0 ? g.statedImpliedAmount / Decimal(exactly: g.stated) : 1
            findings.append(.init(modelID: key.model, tokenType: key.tokenType, accountID: key.account,
                                  quantity: ExactDecimal.roundedInt64(diff / perToken) ?? 0, amount: diff, gapClass: .pricingGap,
                                  rule: "stated-quantity", reason: "amount_differs_from_quantity_at_card_price"))
        }

        // 8. Propose corrections for attributable metering gaps.
        let reportID = Self.reportID(now())
        let ref = Self.correctionRef(range: o.range, vendor: plugin.id)
        var corrections: [UsageEvent] = []
        for f in findings where f.gapClass == .meteringGap {
            guard let account = f.accountID else { continue }
            let meter = try await meterFor(account: account, rawModels: meteredRawModels[f.modelID] ?? [f.modelID], options: o, store: store)
            let id = "recon_" + String(Self.sha256(Array("\(ref)|\(account)|\(f.modelID)|\(f.tokenType?.rawValue ?? "")|\(invoiceSHA)".utf8)).prefix(40))
            var dims = ["reason": f.reason, "source": "vendor_reconciliation", "reconciliation_id": reportID]
            if let tt = f.tokenType { dims["token_type"] = tt.rawValue }
            corrections.append(UsageEvent(
                eventID: id, accountID: account, meterID: meter, modelID: f.modelID, kind: .correction, correctionRef: ref,
                quantity: f.quantity, unit: "tokens", timestamp: Timestamp(microseconds: o.range.to.microseconds - 1_000_000), dimensions: dims))
        }

        let cardSHA: String
        if let rc = card as? RateCard { cardSHA = Self.sha256(Array(rc.source.utf8)) } else { cardSHA = "" }
        return ReconciliationReport(
            id: reportID, vendor: plugin.id, accountID: o.account, range: o.range,
            invoice: .init(sha256: invoiceSHA, files: files, format: formats.sorted().joined(separator: "+"), currency: currency,
                           lines: lines.count, amount: invoiceAmount, unmappedAmount: unmappedAmount),
            rateCard: (card.vendor, card.version, cardSHA), rules: (o.rules.file, Self.sha256(Array(o.rules.source.utf8))),
            verify: (verifyOK, mode, drift), models: models, total: (totalMetered, totalVendor, totalVendor - totalMetered), shape: shape,
            impliedFactor: impliedFactor, unmeteredTokenTypes: unmeteredTypes, findings: findings, unmapped: unmapped,
            corrections: corrections, applied: false, runBy: o.runBy, createdAt: now())
    }

    /// The meter a correction goes to: the one the account's events for that model use.
    func meterFor(account: String, rawModels: Set<String>, options o: ReconciliationOptions, store: any MeterStore) async throws -> String {
        if let m = o.meterID { return m }
        let r = try await store.usage(UsageQuery(scope: .accounts([account]), range: o.range, groupBy: [.meterID],
                                                 filters: [UsageFilter(field: .modelID, op: .in, values: Array(rawModels))]))
        var meters = r.groups.compactMap { $0.keys[0] }
        if meters.isEmpty {
            let any = try await store.usage(UsageQuery(scope: .accounts([account]), range: o.range, groupBy: [.meterID]))
            meters = any.groups.compactMap { $0.keys[0] }
        }
        guard meters.count == 1 else {
            throw UsageBoxError.invalidArgument(
                meters.isEmpty ? "account \(account) has no events to tell which meter a correction belongs to; pass --meter-id"
                               : "account \(account) meters \(rawModels.sorted().joined(separator: ", ")) on several meters (\(meters.joined(separator: ", "))); pass --meter-id",
                field: "meter_id")
        }
        return meters[0]
    }

    /// Two files billing the same bucket (day, model, token type, tier, attribution) twice.
    static func checkOverlap(_ lines: [(InvoiceLine, file: Int)], names: [String]) throws {
        guard Set(lines.map(\.file)).count > 1 else { return }
        var seen: [String: Int] = [:]
        for (line, file) in lines where line.nonUsageReason == nil {
            let labels = line.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            let attribution = line.attribution.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            let kind = line.amount != nil ? "amount" : "quantity"
            let key = "\(line.date.microseconds)|\(line.vendorModel ?? "")|\(line.vendorTokenType ?? "")|\(labels)|\(attribution)|\(kind)"
            if let other = seen[key], other != file {
                throw UsageBoxError.invalidArgument(
                    "\(names[other]) and \(names[file]) both bill \(line.vendorModel ?? "?") \(line.vendorTokenType ?? "?") on \(line.date.dayString) "
                    + "(\(line.location)); pass --allow-overlap if that is intended", field: "invoice")
            }
            seen[key] = file
        }
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

    public static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
