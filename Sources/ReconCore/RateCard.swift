public import Foundation
public import Metering

/// A vendor's prices: versioned, effective-dated, exact (`RateCards/<vendor>.yaml`, format
/// `ratecard/v1`, documented in `RateCards/README.md`).
public struct RateCard: RateCardConverter, Sendable {
    public var vendor: String
    public var version: String
    public var currency: String
    public var tokenTypes: [TokenType]
    public var file: String
    var prices: [String: [PriceRow]]
    var aliases: [Alias] { didSet { aliasMemo = AliasMemo() } }
    var modifiers: [Modifier]
    /// Which alias (if any) each vendor string matched, kept across the card's copies.
    private var aliasMemo = AliasMemo()
    /// Label values that mean the base price (`service_tier: [standard]`), card-wide and per model
    /// (a model whose long context is priced flat).
    var baseLabels: [String: Set<String>] = [:]
    var modelBaseLabels: [String: [String: Set<String>]] = [:]
    /// The text of the card, for hashing into the reconciliation record.
    public var source: String

    struct PriceRow: Sendable {
        var from: Timestamp
        var to: Timestamp?
        var rates: [TokenType: Decimal]
        var tiers: [Tier]
        var line: Int
    }

    struct Tier: Sendable {
        var id: String
        var when: [String: [String]]
        var rates: [TokenType: Decimal]
    }

    struct Modifier: Sendable {
        var id: String
        var factor: Decimal
        var when: [String: [String]]
        var models: Set<String>?
    }

    struct Alias: Sendable {
        var pattern: NSRegularExpression
        var model: String
        var tokenType: TokenType?
    }

    public var models: [String] { prices.keys.sorted() }
    public var fingerprint: String { sha256Hex(Array(source.utf8)) }

    public func canonicalModel(_ vendorModel: String) -> String? {
        if prices[vendorModel] != nil { return vendorModel }
        if let a = alias(vendorModel) { return a.model }
        // The same model as a Bedrock or Vertex id writes it (profile prefix, ARN, version suffix).
        let normalized = ModelID.normalize(vendorModel)
        guard normalized != vendorModel, !normalized.isEmpty else { return nil }
        return prices[normalized] != nil ? normalized : alias(normalized)?.model
    }

    public func aliasTokenType(_ vendorString: String) -> TokenType? { alias(vendorString)?.tokenType }

    /// The longest vendor string matched against the aliases: a model id is tens of characters,
    /// and a pattern's cost grows as a power of the string's length (a 200-character name under
    /// `.*.*.*.*b` took 83 s).
    public static let longestAliasInput = 256
    /// How long one pattern may try one string: past it, the string is no match (an unknown
    /// model, which holds corrections), whatever the pattern's reading let through.
    public static let aliasMatchSeconds: TimeInterval = 0.05

    private func alias(_ text: String) -> Alias? {
        let range = NSRange(text.startIndex..., in: text)
        guard range.length <= Self.longestAliasInput else { return nil }
        let index = aliasMemo.answer(text) {
            // A try the clock stopped is no match this time, and not remembered as none: the next
            // line (or run) of the same string tries again.
            var decided = true
            let found = aliases.firstIndex { a in
                guard let whole = Self.match(a.pattern, text, range) else {
                    decided = false
                    return false
                }
                return whole
            }
            return (found, decided)
        }
        return index.map { aliases[$0] }
    }

    /// An export names a few models on every line: each line's tries of every alias (with their
    /// clock) were a quarter of reconciling a 100 MB Console CSV. Answers are kept per string, up
    /// to `capacity` strings (a file of distinct names is read, not remembered), and only those
    /// every pattern decided within its time.
    final class AliasMemo: @unchecked Sendable {
        static let capacity = 10_000
        private let lock = NSLock()
        private var answers: [String: Int?] = [:]

        func answer(_ text: String, _ compute: () -> (found: Int?, decided: Bool)) -> Int? {
            if let known = lock.withLock({ answers[text] }) { return known }
            let (found, decided) = compute()
            if decided { lock.withLock { if answers.count < Self.capacity { answers[text] = .some(found) } } }
            return found
        }
    }

    public static func matchesWhole(_ pattern: NSRegularExpression, _ text: String, _ range: NSRange) -> Bool {
        match(pattern, text, range) ?? false
    }

    /// Whether `pattern` matches the whole of `text`; nil when its time ran out first.
    static func match(_ pattern: NSRegularExpression, _ text: String, _ range: NSRange) -> Bool? {
        let deadline = Date().addingTimeInterval(aliasMatchSeconds)
        var whole = false, stopped = false
        pattern.enumerateMatches(in: text, options: [.reportProgress], range: range) { match, _, stop in
            if let match {
                whole = match.range == range
                stop.pointee = true
            } else if Date() >= deadline {
                stopped = true
                stop.pointee = true
            }
        }
        return stopped ? nil : whole
    }

    /// Label keys the card prices by: a line's value for one of them must be a base value or be
    /// priced by a tier or modifier. Other labels (regions, accounts) do not change the price.
    /// Worked out once by `load` (it was ≈ 14 % of reconciling a 100 MB invoice, asked per line).
    private(set) var pricedLabelKeys: Set<String> = []

    static func pricedLabelKeys(of card: RateCard) -> Set<String> {
        Set(card.baseLabels.keys).union(card.modelBaseLabels.values.flatMap(\.keys)).union(card.modifiers.flatMap(\.when.keys))
            .union(card.prices.values.flatMap { $0.flatMap { $0.tiers.flatMap(\.when.keys) } })
    }

    /// Whether `value` of label `key` means the base price on `model` (or the card does not price by `key`).
    public func isBaseLabel(_ key: String, _ value: String, model: String) -> Bool {
        guard pricedLabelKeys.contains(key) else { return true }
        return baseLabels[key]?.contains(value) == true || modelBaseLabels[model]?[key]?.contains(value) == true
    }

    public func priceChanges(model: String) -> [Timestamp] {
        Set((prices[model] ?? []).flatMap { [$0.from] + ($0.to.map { [$0] } ?? []) }).sorted { $0.microseconds < $1.microseconds }
    }

    public func price(model: String, tokenType: TokenType, date: Timestamp, labels: [String: String]) throws -> ResolvedPrice {
        guard let rows = prices[model] else { throw PriceFailure.unknownModel(model) }
        guard let row = rows.first(where: { $0.from <= date && ($0.to.map { date < $0 } ?? true) }) else {
            throw PriceFailure.noRate(model: model, tokenType: tokenType, date: date)
        }
        func matches(_ when: [String: [String]]) -> Bool {
            when.allSatisfy { key, values in labels[key].map(values.contains) ?? false }
        }
        var rates = row.rates
        let tier = row.tiers.first(where: { matches($0.when) })
        if let tier { rates = tier.rates }
        guard var perMillion = rates[tokenType] else {
            // A tier that leaves the token type unknown (`null`) names its label, as a tier the
            // card lacks does: the line is unpriced for its tier, not for its date.
            if let tier, let key = tier.when.keys.sorted().first, let value = labels[key] {
                throw PriceFailure.noRateForTier(model: model, tokenType: tokenType, label: "\(key)=\(value)")
            }
            throw PriceFailure.noRate(model: model, tokenType: tokenType, date: date)
        }
        let applied = modifiers.filter { matches($0.when) && ($0.models?.contains(model) ?? true) }
        // A tier or modifier the card does not price is never priced at the base rate.
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) where !isBaseLabel(key, value, model: model) {
            guard tier?.when[key]?.contains(value) == true || applied.contains(where: { $0.when[key]?.contains(value) == true }) else {
                throw PriceFailure.noRateForTier(model: model, tokenType: tokenType, label: "\(key)=\(value)")
            }
        }
        for m in applied { perMillion *= m.factor }
        return ResolvedPrice(perToken: perMillion / 1_000_000, perMillion: perMillion, currency: currency, cardVersion: version)
    }

    /// Loads and checks a card: overlapping dates, missing prices and numbers written as floats are
    /// refused, naming the file and line.
    public static func load(text: String, file: String) throws -> RateCard {
        let root = try YAMLNode.parse(text, file: file)
        var vendor: String?, version: String?, currency: String?, schema: String?
        var tokenTypes: [TokenType] = []
        var prices: [String: [PriceRow]] = [:]
        var aliases: [Alias] = []
        var modifiers: [Modifier] = []
        var sources = Set<String>()
        var baseLabels: [String: Set<String>] = [:], modelBaseLabels: [String: [String: Set<String>]] = [:]
        for (key, value) in try root.mapping("the rate card") {
            switch key {
            case "schema": schema = try value.string("schema")
            case "vendor": vendor = try value.string("vendor")
            case "card_version": version = try value.string("card_version")
            case "currency": currency = try value.string("currency")
            case "unit":
                guard try value.string("unit") == "per_million_tokens" else { throw value.error("unit must be per_million_tokens") }
            case "recorded_at", "changelog", "description": continue
            case "base_labels": baseLabels = try conditions(value, "base_labels").mapValues(Set.init)
            case "sources": sources = Set(try value.mapping("sources").map(\.0))
            case "token_types": tokenTypes = try value.sequence("token_types").map { TokenType(try $0.string("token type")) }
            case "modifiers":
                for (id, m) in try value.mapping("modifiers") {
                    var factor: Decimal?, when: [String: [String]] = [:], models: Set<String>?
                    for (k, v) in try m.mapping("modifier \(id)") {
                        switch k {
                        case "factor": factor = try v.positiveDecimal("modifier \(id) factor")
                        case "when": when = try conditions(v, "modifier \(id)")
                        case "models": models = Set(try v.strings("modifier \(id) models"))
                        case "src", "note", "applies_to": continue
                        default: throw v.keyError("unknown modifier field '\(k)'")
                        }
                    }
                    guard let factor else { throw m.error("modifier \(id) needs a factor") }
                    guard !when.isEmpty else { throw m.error("modifier \(id) needs a 'when' condition") }
                    modifiers.append(Modifier(id: id, factor: factor, when: when, models: models))
                }
            case "models":
                for (model, m) in try value.mapping("models") {
                    var rows: [PriceRow] = []
                    for (k, v) in try m.mapping("model \(model)") {
                        if k == "base_labels" {
                            modelBaseLabels[model] = try conditions(v, "base_labels of \(model)").mapValues(Set.init)
                            continue
                        }
                        guard k == "prices" else {
                            if k == "note" { continue }
                            throw v.keyError("unknown field '\(k)' of model \(model)")
                        }
                        for rowNode in try v.sequence("prices of \(model)") {
                            rows.append(try priceRow(rowNode, model: model, tokenTypes: tokenTypes, sources: sources))
                        }
                    }
                    guard !rows.isEmpty else { throw m.error("model \(model) has no prices") }
                    rows.sort { $0.from < $1.from }
                    for (a, b) in zip(rows, rows.dropFirst()) {
                        guard let end = a.to, end <= b.from else {
                            throw ConfigError(
                                file: file, line: b.line,
                                "prices of \(model) overlap: the row from \(b.from.dayString) starts before the row from \(a.from.dayString) ends")
                        }
                    }
                    prices[model] = rows
                }
            case "aliases":
                for a in try value.sequence("aliases") {
                    var match: String?, model: String?, tokenType: TokenType?
                    for (k, v) in try a.mapping("alias") {
                        switch k {
                        case "match": match = try v.string("alias match")
                        case "model": model = try v.string("alias model")
                        case "token_type": tokenType = TokenType(try v.string("alias token_type"))
                        case "field", "note": continue
                        default: throw v.keyError("unknown alias field '\(k)'")
                        }
                    }
                    guard let match, let model else { throw a.error("an alias needs 'match' and 'model'") }
                    if let why = Self.backtrackingRisk(match) {
                        throw a.error("alias pattern '\(match.prefix(80))' \(why): matching could take minutes; write it without")
                    }
                    guard let re = try? NSRegularExpression(pattern: match, options: [.caseInsensitive]) else {
                        throw a.error("alias pattern '\(match)' is not a valid regular expression")
                    }
                    aliases.append(Alias(pattern: re, model: model, tokenType: tokenType))
                }
            default:
                throw value.keyError("unknown rate card field '\(key)'")
            }
        }
        guard schema == "ratecard/v1" else { throw root.error("schema must be ratecard/v1") }
        guard let vendor else { throw root.error("the card needs a vendor") }
        guard let version else { throw root.error("the card needs a card_version") }
        guard let currency, currency.count == 3 else { throw root.error("the card needs a three-letter currency") }
        for a in aliases where prices[a.model] == nil {
            throw root.error("an alias points to \(a.model), which the card does not price")
        }
        var card = RateCard(
            vendor: vendor, version: version, currency: currency.uppercased(), tokenTypes: tokenTypes, file: file, prices: prices,
            aliases: aliases, modifiers: modifiers, source: text)
        card.baseLabels = baseLabels
        card.modelBaseLabels = modelBaseLabels
        card.pricedLabelKeys = Self.pricedLabelKeys(of: card)
        return card
    }

    /// Why an alias pattern could backtrack for minutes on one model string, or nil. Matching
    /// has no time limit: `(a+)+b` took 23 s of CPU per 60-character name from a per-request card,
    /// and two such requests stopped `/healthz`; `(a?){28}a{28}` took 8–14 s with bounds alone.
    /// Refused: a group repeated by anything but `?` (`*`, `+`, `{n}`, `{n,m}`) that holds a
    /// repetition or an alternation, more than two repetitions of varying length in all
    /// (`.*.*.*x`; a range `{0,30}` varies like `*`: `.*.*.*.*b` and `a{0,30}` five times took
    /// 83 s and 133 s on a 200-character name), more than eight optional atoms (`a?` eight
    /// times doubles the tries eight times), and parentheses that do not pair. The shipped cards'
    /// patterns repeat groups with `?` only, and hold one `.*` at most. Named, atomic and
    /// look-around groups are groups like any other. Matching is bounded besides: strings past
    /// `longestAliasInput` characters are matched by no alias, and one try stops after
    /// `aliasMatchSeconds`.
    public static func backtrackingRisk(_ pattern: String) -> String? {
        let p = Array(pattern.unicodeScalars)
        struct Group { var repeats = false, alternation = false }
        var stack = [Group()]
        var unboundedCount = 0
        var i = 0
        /// The quantifier at `j`: whether it is `?` alone, unbounded, and its length; nil for none.
        var optionalCount = 0
        func quantifier(at j: Int) -> (optional: Bool, unbounded: Bool, length: Int)? {
            guard j < p.count else { return nil }
            switch p[j] {
            case "*", "+": return (false, true, 1)
            case "?": return (true, false, 1)
            case "{":
                var k = j + 1
                var text = ""
                while k < p.count, p[k] != "}" {
                    text.unicodeScalars.append(p[k])
                    k += 1
                }
                guard k < p.count, text.first?.isNumber == true else { return nil }
                // `{n}` is fixed; `{n,}` and `{n,m}` (m above n) vary in length like `*`.
                let bounds = text.split(separator: ",", omittingEmptySubsequences: false)
                let varies = bounds.count == 2 && (bounds[1].isEmpty || bounds[1] != bounds[0])
                return (false, varies, k - j + 1)
            default: return nil
            }
        }
        /// Past the quantifier of the atom ending before `j`, if any; noted in the open group.
        func afterAtom(_ j: Int) -> Int {
            guard let q = quantifier(at: j) else { return j }
            stack[stack.count - 1].repeats = true
            if q.unbounded { unboundedCount += 1 }
            if q.optional { optionalCount += 1 }
            var next = j + q.length
            if next < p.count, p[next] == "?" || p[next] == "+" { next += 1 }  // lazy or possessive
            return next
        }
        func skip(to end: Unicode.Scalar, from j: Int) -> Int {
            var k = j
            while k < p.count, p[k] != end { k += 1 }
            return k + 1
        }
        while i < p.count {
            switch p[i] {
            case "\\":
                i = afterAtom(i + 2)
            case "[":
                var k = i + 1
                if k < p.count, p[k] == "^" { k += 1 }
                if k < p.count, p[k] == "]" { k += 1 }
                while k < p.count, p[k] != "]" { k += p[k] == "\\" ? 2 : 1 }
                i = afterAtom(k + 1)
            case "(":
                i += 1
                guard i < p.count, p[i] == "?" else {
                    stack.append(Group())
                    continue
                }
                i += 1  // the group's kind, not a quantifier: (?: (?= (?! (?> (?<= (?<! (?<name> (?P<name> (?'name' (?i) (?i:
                guard i < p.count else { return "ends inside a group" }
                switch p[i] {
                case ":", "=", "!", ">": i += 1
                case "<": i = i + 1 < p.count && (p[i + 1] == "=" || p[i + 1] == "!") ? i + 2 : skip(to: ">", from: i + 1)
                case "P": i = skip(to: ">", from: i + 1)
                case "'": i = skip(to: "'", from: i + 1)
                default:
                    var flags = ""
                    while i < p.count, p[i].properties.isAlphabetic || p[i] == "-" {
                        flags.unicodeScalars.append(p[i])
                        i += 1
                    }
                    // Free spacing hides a quantifier behind a blank from this reading.
                    if flags.split(separator: "-").first?.contains("x") == true { return "uses free-spacing mode (?x)" }
                    if i < p.count, p[i] == ")" {  // flags for what follows: no group
                        i += 1
                        continue
                    }
                    i += 1  // the ':' of (?i:…)
                }
                stack.append(Group())
            case ")":
                guard stack.count > 1 else { return "has a ')' that closes no group" }
                let inner = stack.removeLast()
                if let q = quantifier(at: i + 1), !q.optional, inner.repeats || inner.alternation {
                    return "repeats a group that itself repeats or alternates"
                }
                stack[stack.count - 1].repeats = stack[stack.count - 1].repeats || inner.repeats
                stack[stack.count - 1].alternation = stack[stack.count - 1].alternation || inner.alternation  // ((a|aa))+
                i = afterAtom(i + 1)
            case "|":
                stack[stack.count - 1].alternation = true
                i += 1
            default:
                i = afterAtom(i + 1)
            }
        }
        guard stack.count == 1 else { return "has a '(' that is never closed" }
        if unboundedCount > 2 { return "repeats \(unboundedCount) times with a varying length (`*`, `+`, `{n,}`, `{n,m}`; at most 2)" }
        return optionalCount > 8 ? "makes \(optionalCount) atoms optional (at most 8)" : nil
    }

    static func conditions(_ node: YAMLNode, _ what: String) throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for (k, v) in try node.mapping("\(what) when") { out[k] = try v.strings("\(what) when.\(k)") }
        return out
    }

    /// A tier may state a token type's price as `null`: unknown at that tier, so its lines stay
    /// unpriced (held) rather than priced at a guess; a token type left out is still a mistake.
    private static func rates(_ node: YAMLNode, _ what: String, tokenTypes: [TokenType], unknownAllowed: Bool = false) throws -> [TokenType: Decimal] {
        var out: [TokenType: Decimal] = [:], unknown = Set<TokenType>()
        for (k, v) in try node.mapping(what) {
            if unknownAllowed, v.isNull {
                unknown.insert(TokenType(k))
                continue
            }
            out[TokenType(k)] = try v.positiveDecimal("\(what) \(k)")
        }
        for t in tokenTypes where out[t] == nil && !unknown.contains(t) {
            throw node.error("\(what) has no price for \(t.rawValue)")
        }
        return out
    }

    private static func priceRow(_ node: YAMLNode, model: String, tokenTypes: [TokenType], sources: Set<String>) throws -> PriceRow {
        var from: Timestamp?, to: Timestamp?, rateMap: [TokenType: Decimal]?, tiers: [Tier] = []
        var hasSource = false
        func date(_ v: YAMLNode, _ what: String) throws -> Timestamp {
            let s = try v.string(what)
            guard let t = Timestamp(rfc3339: s.count == 10 ? s + "T00:00:00Z" : s) else {
                throw v.error("\(what) must be a date (YYYY-MM-DD) or an RFC 3339 timestamp, got '\(s)'")
            }
            return t
        }
        for (k, v) in try node.mapping("price of \(model)") {
            switch k {
            case "from": from = try date(v, "from")
            case "to": to = v.isNull ? nil : try date(v, "to")
            case "rates": rateMap = try rates(v, "rates of \(model)", tokenTypes: tokenTypes)
            case "tiers":
                for t in try v.sequence("tiers") {
                    var id = "tier", when: [String: [String]] = [:], tierRates: [TokenType: Decimal]?
                    for (tk, tv) in try t.mapping("tier") {
                        switch tk {
                        case "id": id = try tv.string("tier id")
                        case "when": when = try conditions(tv, "tier")
                        case "rates": tierRates = try rates(tv, "tier rates of \(model)", tokenTypes: tokenTypes, unknownAllowed: true)
                        case "note", "scope", "invoice": continue
                        default: throw tv.keyError("unknown tier field '\(tk)'")
                        }
                    }
                    guard let tierRates, !when.isEmpty else { throw t.error("a tier needs 'when' and 'rates'") }
                    tiers.append(Tier(id: id, when: when, rates: tierRates))
                }
            case "src":
                hasSource = true
                for s in try v.strings("src") where !sources.contains(s) { throw v.error("src '\(s)' is not one of the card's sources") }
            case "note", "confidence": continue
            default: throw v.keyError("unknown price field '\(k)'")
            }
        }
        guard let from else { throw node.error("a price of \(model) needs 'from'") }
        guard let rateMap else { throw node.error("a price of \(model) needs 'rates'") }
        guard hasSource else { throw node.error("a price of \(model) needs 'src': where the price comes from") }
        if let to, to <= from { throw node.error("'to' must be after 'from'") }
        return PriceRow(from: from, to: to, rates: rateMap, tiers: tiers, line: node.line)
    }
}
