public import Foundation
import Metering

/// Gap classification rules from YAML: the first rule whose conditions all hold decides.
///
/// ```yaml
/// version: 1
/// rules:
///   - id: cached-system-prompt            # names the rule in findings
///     when:                               # every condition must hold (all optional)
///       model: "claude-*"                 # glob, or a list of globs
///       token_type: [cache_read]          # one or a list
///       account: "acct_*"                 # glob on the attributed account
///       attributed: true                  # whether the gap is on one account
///       sign: positive                    # positive (vendor > meter) or negative
///       min_tokens: 1000                  # |gap| in tokens, inclusive bounds
///       max_tokens: 1000000
///       min_amount: "0.50"                # |gap| in money, exact decimal strings
///       max_amount: "100"
///       max_share: "0.005"                # |gap| ÷ metered tokens (nothing metered: above any max)
///       shape: uniform                    # none | uniform | localized
///       unmetered: true                   # the token type was never metered for the model
///     class: pass_through                 # metering_gap | pass_through | pricing_gap | unexplained
///     reason: shared_system_prompt_caching
///     examples:                           # findings and the class they must get (usagebox rules test)
///       - {model: claude-sonnet-4-5, token_type: cache_read, quantity: 6000000, unmetered: true, expect: pass_through}
/// ```
///
/// A team's file is consulted before the shipped defaults, so it only needs the rules that differ.
public struct ClassificationRules: GapClassifier, Sendable {
    public struct Rule: Sendable {
        public var id: String
        public var models: [String]?
        public var tokenTypes: [String]?
        public var accounts: [String]?
        public var attributed: Bool?
        public var sign: Int?
        public var minTokens: Int64?
        public var maxTokens: Int64?
        public var minAmount: Decimal?
        public var maxAmount: Decimal?
        /// Bounds on the gap's size as a share of what was metered (`0.005` is half a percent).
        public var minShare: Decimal?
        public var maxShare: Decimal?
        public var shape: GapShape?
        public var unmetered: Bool?
        public var gapClass: GapClass
        public var reason: String
        public var examples: [RuleExample] = []
        /// Where the rule starts in its file.
        public var line = 0
    }

    public var rules: [Rule]
    /// The YAML the rules came from, recorded with every reconciliation.
    public var source: String
    public var file: String
    public var isDefault = false

    public var name: String { isDefault ? "defaults" : "rules:\(file)" }

    public func classify(_ f: GapFinding) -> GapClassification? {
        for r in rules where r.matches(f) {
            return GapClassification(gapClass: r.gapClass, rule: r.id, reason: r.reason, classifier: name)
        }
        return nil
    }

    /// Every rule's examples, in file order.
    public var examples: [RuleExample] { rules.flatMap(\.examples) }

    /// The rules shipped with UsageBox and used by the demo.
    public static let defaultYAML = """
        # UsageBox default gap classification rules. First match wins. A team's --rules file is
        # consulted before these, so it only needs the rules that differ.
        version: 1
        rules:
          # The same percentage on every model: a rate card, discount or currency off by a factor.
          - id: uniform-shape
            when: {shape: uniform}
            class: pricing_gap
            reason: rate_card_or_currency_mismatch
            examples:
              - {model: claude-haiku-4-5, token_type: input, account: acct_42, quantity: 50000, metered: 1000000, shape: uniform, expect: pricing_gap}
          # Cache reads and writes of a shared system prompt: vendor overhead we absorb.
          - id: cached-system-prompt
            when: {token_type: [cache_read, cache_write_5m, cache_write_1h, cache_write]}
            class: pass_through
            reason: shared_system_prompt_caching
            examples:
              - {model: claude-sonnet-4-5, token_type: cache_read, account: acct_42, quantity: 6000000, unmetered: true, expect: pass_through}
              - {model: gpt-4o, token_type: cache_write, quantity: -1000, metered: 5000, expect: pass_through}
          # Token types we meter, on one account: served but not recorded. Correct it.
          - id: metered-residual
            when: {token_type: [input, output, reasoning], attributed: true, sign: positive}
            class: metering_gap
            reason: untracked_usage
            examples:
              - {model: claude-sonnet-4-5, token_type: input, account: acct_42, quantity: 520000, metered: 122900000, expect: metering_gap}
              - {model: claude-sonnet-4-5, token_type: input, quantity: 520000, metered: 122900000, expect: unexplained}
          # The same token types metered beyond what the vendor billed (a retried event counted
          # twice, a test key's traffic): recorded but not served. Correct it down.
          - id: metered-excess
            when: {token_type: [input, output, reasoning], attributed: true, sign: negative}
            class: metering_gap
            reason: metered_beyond_billed
            examples:
              - {model: claude-sonnet-4-5, token_type: output, account: acct_42, quantity: -200000, metered: 1000000, expect: metering_gap}
          # Anything else stays unexplained until a person (or a rule) says otherwise.
          - id: unexplained
            when: {}
            class: unexplained
            reason: needs_review
            examples:
              - {model: claude-haiku-4-5, token_type: output, quantity: -10, metered: 5000, expect: unexplained}

        """

    public static func defaults() -> ClassificationRules {
        // The shipped YAML is tested; failing here would be a build defect.
        var rules = try! load(text: defaultYAML, file: "default-rules.yaml", isDefault: true)
        rules.isDefault = true
        return rules
    }

    /// The defaults' rule ids, read once (a team file is loaded on every run that names it).
    static let defaultRuleIDs = Set(defaults().rules.map(\.id))

    /// The largest rules file read: tens of rules are usual; 17 MB took 25 s and 380 MB to refuse.
    public static let maxBytes = 1 << 20
    /// The most pattern × example checks a file may ask of each run.
    static let maxChecks = 100_000

    /// Loads rules, refusing bad syntax, unknown fields and unknown classes with the file and line.
    public static func load(text: String, file: String) throws -> ClassificationRules {
        try load(text: text, file: file, isDefault: false)
    }

    static func load(text: String, file: String, isDefault: Bool) throws -> ClassificationRules {
        guard text.utf8.count <= maxBytes else {
            throw ConfigError(file: file, line: 1, "a rules file is at most \(maxBytes >> 20) MiB, this one is \(text.utf8.count) bytes")
        }
        let root = try YAMLNode.parse(text, file: file)
        var rules: [Rule] = []
        var ids = Set<String>()
        var sawRules = false
        for (key, value) in try root.mapping("the rules file") {
            switch key {
            case "version":
                guard try value.string("version") == "1" else { throw value.error("version must be 1") }
            case "rules":
                sawRules = true
                for node in try value.sequence("rules") {
                    let r = try rule(node, index: rules.count)
                    guard ids.insert(r.id).inserted else { throw node.error("two rules share the id '\(r.id)'") }
                    rules.append(r)
                }
            default:
                throw value.keyError("unknown field '\(key)' (expected version, rules)")
            }
        }
        guard sawRules else { throw root.error("the rules file needs a 'rules' list") }
        // Every run checks every example against the rules before it: bounded, so a file cannot
        // make each reconcile spend minutes in globs.
        let patterns = rules.reduce(0) { $0 + ($1.models?.count ?? 0) + ($1.accounts?.count ?? 0) }, examples = rules.reduce(0) { $0 + $1.examples.count }
        guard patterns * max(examples, 1) <= maxChecks else {
            throw root.error(
                "\(examples) examples against \(patterns) model and account patterns is more than \(maxChecks) checks per run: split the file or trim it")
        }
        // An example with no amount read $0 against a rule's amount bounds: it passed under `rules
        // test`, while reconcile, which prices every gap, decided otherwise (tester Z2).
        if let bounding = rules.first(where: { $0.minAmount != nil || $0.maxAmount != nil }),
            let silent = rules.lazy.flatMap(\.examples).first(where: { !$0.statesAmount })
        {
            throw ConfigError(
                file: file, line: silent.line,
                "an example of rule \(silent.rule) gives no amount while rule \(bounding.id) bounds amounts (min_amount, max_amount): "
                    + "give amount, the gap in money as the run prices it (an example without one reads 0)")
        }
        // An `expect_rule` naming no rule of this file nor of the defaults was read as a failing
        // example ("expected metering_gap by nonexistent"), which reads as if the class matched.
        if !isDefault {
            // `none`: what the chain answers when no rule matches.
            let known = ids.union(defaultRuleIDs).union(["none"])
            if let stray = rules.lazy.flatMap(\.examples).first(where: { $0.expectRule.map { !known.contains($0) } ?? false }) {
                throw ConfigError(
                    file: file, line: stray.line,
                    "expect_rule \(stray.expectRule!) names no rule of this file or of the defaults (`usagebox rules show` lists theirs)")
            }
        }
        // `expect_rule` naming a rule of this file means this file's: a team's copy of a default
        // (`usagebox rules show` is a starting point) passed when the default of that id decided.
        let name = isDefault ? "defaults" : "rules:\(file)"
        for i in rules.indices {
            for j in rules[i].examples.indices where rules[i].examples[j].expectRule.map(ids.contains) == true {
                rules[i].examples[j].expectClassifier = name
            }
        }
        return ClassificationRules(rules: rules, source: text, file: file)
    }

    private static func rule(_ node: YAMLNode, index: Int) throws -> Rule {
        var id: String?, gapClass: GapClass?, reason: String?
        var r = Rule(id: "", gapClass: .unexplained, reason: "")
        r.line = node.line
        var exampleNodes: [YAMLNode] = []
        for (key, value) in try node.mapping("a rule") {
            switch key {
            case "id":
                // It is printed in reports and matched by expect_rule: a newline in it wrote a
                // line of its own into the text report.
                id = try Self.nonNull(value, "id").string("id")
                guard EventDecoder.isValidIdentifier(id!) else {
                    throw value.error("id must be \(EventDecoder.identifierRule), like cached-system-prompt")
                }
            case "class": gapClass = try Self.gapClass(value, "class")
            case "reason":
                // It becomes the `reason` dimension of the corrections the rule makes: an event the
                // ingest would refuse (300 characters, a NUL) was stored by apply.
                // A reason is a code, like the defaults' (`untracked_usage`): blank or invisible
                // ones passed too.
                reason = try value.string("reason")
                guard EventDecoder.isValidIdentifier(reason!) else {
                    throw value.error("reason must be \(EventDecoder.identifierRule), like untracked_usage (it is a dimension of the corrections)")
                }
            case "examples": exampleNodes = try value.sequence("examples")
            case "when":
                for (k, v) in try value.mapping("when") {
                    switch k {
                    case "model": r.models = try Self.patterns(v, "model")
                    case "token_type": r.tokenTypes = try Self.patterns(v, "token_type").map { try Self.tokenType($0, v) }
                    case "account": r.accounts = try Self.patterns(v, "account").map { try Self.accountPattern($0, v) }
                    case "attributed": r.attributed = try v.bool("attributed")
                    case "unmetered": r.unmetered = try v.bool("unmetered")
                    case "sign":
                        switch try v.string("sign") {
                        case "positive": r.sign = 1
                        case "negative": r.sign = -1
                        default: throw v.error("sign must be positive or negative")
                        }
                    case "min_tokens", "max_tokens":
                        guard case .scalar = v.node, let n = Int64(try v.string(k)), n >= 0 else {
                            throw v.error("\(k) must be a whole number of tokens, 0 or more")
                        }
                        if k == "min_tokens" { r.minTokens = n } else { r.maxTokens = n }
                    case "min_amount", "max_amount":
                        // The gap's money is compared by its size: a negative bound matched nothing.
                        guard let d = ExactDecimal.parse(try v.decimalString(k)), d >= 0 else {
                            throw v.error("\(k) must be 0 or more (the gap's money is compared by its size)")
                        }
                        if k == "min_amount" { r.minAmount = d } else { r.maxAmount = d }
                    case "min_share", "max_share":
                        // A tolerance sized in tokens for the largest model swallowed a smaller
                        // model's whole outage (tester N): a share scales with each cell.
                        // At most 18 digits, so a share times a 64-bit count stays within Decimal's
                        // 38 exact digits (review 9).
                        let text = try v.decimalString(k)
                        guard let d = ExactDecimal.parse(text), d >= 0, text.filter(\.isNumber).count <= 18 else {
                            throw v.error("\(k) must be a share of the metered tokens, 0 or more, at most 18 digits, quoted: \"0.005\" is half a percent")
                        }
                        if k == "min_share" { r.minShare = d } else { r.maxShare = d }
                    case "shape": r.shape = try Self.shape(v)
                    default:
                        throw v.keyError(
                            "unknown condition '\(k)' (model, token_type, account, attributed, sign, min_tokens, max_tokens, min_amount, max_amount, min_share, max_share, shape, unmetered)"
                        )
                    }
                }
            default:
                throw value.keyError("unknown rule field '\(key)' (id, when, class, reason, examples)")
            }
        }
        guard let gapClass else { throw node.error("rule \(id ?? "#\(index + 1)") needs a class") }
        // A rule that can match nothing was accepted, and its examples passed.
        if let lo = r.minTokens, let hi = r.maxTokens, lo > hi { throw node.error("min_tokens \(lo) is above max_tokens \(hi): the rule matches nothing") }
        if r.maxShare != nil, r.unmetered == true {
            throw node.error("max_share with unmetered: true matches nothing: a gap with nothing metered is above any share")
        }
        if let lo = r.minShare, let hi = r.maxShare, lo > hi {
            throw node.error("min_share \(ExactDecimal.text(lo)) is above max_share \(ExactDecimal.text(hi)): the rule matches nothing")
        }
        if let lo = r.minAmount, let hi = r.maxAmount, lo > hi {
            throw node.error("min_amount \(ExactDecimal.text(lo)) is above max_amount \(ExactDecimal.text(hi)): the rule matches nothing")
        }
        r.id = id ?? "rule-\(index + 1)"
        r.gapClass = gapClass
        r.reason = reason ?? gapClass.rawValue
        r.examples = try exampleNodes.map { try example($0, rule: r.id) }
        return r
    }

    /// A condition's name or names (globs of `*` and `?`), each a name as events carry them:
    /// YAML's null read as the text "null" matched a model so named; a 10 MB name took a second
    /// per alias of every card to read (and held the server); `[` was taken for a glob it is not.
    private static func patterns(_ v: YAMLNode, _ what: String) throws -> [String] {
        var list = [v]
        if case .sequence = v.node { list = try v.sequence(what) }
        guard !list.isEmpty else { throw v.error("\(what) is an empty list: the rule would match nothing") }
        return try list.map { node in
            let p = try name(node, what)
            guard !p.contains("[") else { throw node.error("\(what) '\(p)': '[' is not read in a pattern (only * and ? are)") }
            return p
        }
    }

    /// One name (a model, an account): not null, 1–200 characters, no control characters, and
    /// no invisible ones: `gpt-4o` with a zero-width space warned as matching nothing in one
    /// command, not at all in another, and matched gpt-4o in a run (tester T).
    private static func name(_ v: YAMLNode, _ what: String) throws -> String {
        let p = try nonNull(v, what).string(what)
        guard !p.isEmpty, p.utf8.count <= EventDecoder.maxIDLength, !p.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw v.error(
                "\(what) '\(p.prefix(40))\(p.count > 40 ? "…" : "")' must be 1–\(EventDecoder.maxIDLength) characters, none of them control characters")
        }
        if let hidden = p.unicodeScalars.first(where: { $0.properties.generalCategory == .format }) {
            throw v.error(
                "\(what) '\(p.prefix(40))\(p.count > 40 ? "…" : "")' holds an invisible character (U+\(String(hidden.value, radix: 16, uppercase: true).leftPadded(to: 4))): "
                    + "names are matched as written, so write it without")
        }
        return p
    }

    private static func nonNull(_ v: YAMLNode, _ what: String) throws -> YAMLNode {
        guard !v.isNull else { throw v.error("\(what) is empty (null): name it, or leave the condition out") }
        return v
    }

    /// An account condition that an account id can match: `acct 42` matched nothing, silently.
    private static func accountPattern(_ p: String, _ v: YAMLNode) throws -> String {
        // The characters an id may hold (a pattern of dots and globs, `*.*`, can still match `a.b`).
        let fixed = p.filter { $0 != "*" && $0 != "?" }
        guard fixed.isEmpty || EventDecoder.isValidIdentifier(fixed) || fixed.allSatisfy({ $0 == "." }) else {
            throw v.error("account '\(p)' can match no account: account ids are \(EventDecoder.identifierRule)")
        }
        return p
    }

    /// Token types as findings carry them (`cache_read`): `Output` matched nothing, silently.
    private static func tokenType(_ t: String, _ v: YAMLNode) throws -> String {
        guard !t.isEmpty, t.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }) else {
            throw v.error("token_type '\(t)' is not a token type as findings name it: lowercase, like input, output, cache_read")
        }
        return t
    }

    /// The rules with each plain model name (no `*` or `?`), and each example's model, read
    /// through a card, as findings name models: `claude-sonnet-4-5-20250929` in a rule matched no finding of
    /// `claude-sonnet-4-5`, while its example (written the same way) passed.
    public func resolvingModels(_ canonical: (String) -> String?) -> ClassificationRules {
        var out = self
        for i in out.rules.indices {
            out.rules[i].models = out.rules[i].models?.map { m in m.contains(where: { "*?".contains($0) }) ? m : canonical(m) ?? m }
            // An example is a finding, named as findings are: `rules test` agrees with `reconcile`.
            for j in out.rules[i].examples.indices {
                let m = out.rules[i].examples[j].finding.modelID
                out.rules[i].examples[j].finding.modelID = canonical(m) ?? m
            }
        }
        return out
    }

    /// Names in the rules' conditions that no finding can carry as written: a token type that is
    /// neither canonical nor named by a card or the run, a model no card knows (a glob that
    /// matches none of their models). Such a condition matches nothing: a rule billing
    /// `cache_write_5min` left lost 5-minute cache writes passed through without a word (tester N).
    /// Said, not refused: a team's own card or meter may name what the shipped cards do not.
    /// Read before `resolvingModels` (a name a card knows is rewritten to its own).
    public func unmatchableNames(
        card: (any RateCardConverter)?, cards: [RateCard], runTokenTypes: Set<TokenType> = [], runModels: Set<String> = []
    ) -> [String] {
        var known = Set((TokenType.canonical + runTokenTypes + cards.flatMap(\.tokenTypes)).map(\.rawValue))
        if let own = card as? RateCard { known.formUnion(own.tokenTypes.map(\.rawValue)) }
        // A model only the run knows (a fine-tune the meter records) is one findings carry.
        let cardModels = Set(cards.flatMap(\.models) + (card?.models ?? [])).union(runModels)
        let reader = Self.modelReader(card: card, cards: cards)
        // Said by `respelledModels`.
        func readByTwo(_ m: String) -> Bool { card == nil && Self.readings(of: m, cards: cards).count > 1 }
        var warnings: [String] = []
        for r in rules {
            let at = "\(file):\(r.line) rule \(r.id)"
            for t in r.tokenTypes ?? [] where !known.contains(t) {
                warnings.append(
                    "\(at): token_type '\(t)' is no token type of any card (\(TokenType.canonical.map(\.rawValue).joined(separator: ", ")), …): it matches no finding"
                )
            }
            for m in r.models ?? [] {
                let isGlob = m.contains(where: { "*?".contains($0) })
                if isGlob ? !cardModels.contains(where: { glob(m, $0) }) : reader(m) == nil && !cardModels.contains(m) && !readByTwo(m) {
                    warnings.append(
                        "\(at): model '\(m)' is \(isGlob ? "a pattern matching no model" : "no model or alias") of any card (findings name models as the cards do)"
                    )
                }
            }
            // An example naming what no finding carries passes while testing a case no run has
            // (its rule then matched nothing in any real run; tester N2).
            for e in r.examples {
                let m = e.finding.modelID
                if reader(m) == nil && !cardModels.contains(m) && !readByTwo(m) {
                    warnings.append("\(file):\(e.line) example of rule \(r.id): model '\(m)' is no model or alias of any card (no finding carries it)")
                }
                if let t = e.finding.tokenType?.rawValue, !known.contains(t) {
                    warnings.append("\(file):\(e.line) example of rule \(r.id): token_type '\(t)' is no token type of any card (no finding carries it)")
                }
            }
        }
        return warnings
    }

    /// How each card reads a model name (`gpt-4o on openai`), for cards that read it at all.
    static func readings(of m: String, cards: [RateCard]) -> [String] { cards.compactMap { c in c.canonicalModel(m).map { "\($0) on \(c.vendor)" } } }

    /// Plain model names the cards read as another spelling that differs from it in case or
    /// spaces alone (`GPT-4o`, `gpt-4o ` with a trailing space or no-break space), and names two
    /// cards read as two models: a run applies the first through its card's aliases, silently,
    /// while a test without that card called it no model at all (tester T2 L1). Said alike by
    /// `rules test` and the run, so the name is fixed before it misleads.
    public func respelledModels(card: (any RateCardConverter)?, cards: [RateCard]) -> [String] {
        let reader = Self.modelReader(card: card, cards: cards)
        let cardModels = Set(cards.flatMap(\.models) + (card?.models ?? []))
        // Another spelling of a model id: spaces around it, or another case of an id a card
        // prices (`GPT-4o`). A vendor's own name that an alias reads (`Claude Sonnet 4.5`) is no
        // misspelling (tester U).
        func respelt(_ m: String) -> Bool {
            let trimmed = m.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed != m || (trimmed.lowercased() != trimmed && cardModels.contains(trimmed.lowercased()))
        }
        var warnings: [String] = []
        func check(_ m: String, _ at: String) {
            guard !m.contains(where: { "*?".contains($0) }), !cardModels.contains(m) else { return }
            if let read = reader(m) {
                guard read != m, respelt(m) else { return }
                warnings.append("\(at): model '\(m)' is read as '\(read)' (the cards' aliases ignore case, and spaces around a name): write it so")
            } else if card == nil {
                let named = Self.readings(of: m, cards: cards)
                guard named.count > 1 else { return }
                warnings.append(
                    "\(at): model '\(m)' is read as \(named.sorted().joined(separator: ", ")): "
                        + "a run reads it through its vendor's card (test with --rate-card FILE), so name the model as that card does")
            }
        }
        for r in rules {
            for m in r.models ?? [] { check(m, "\(file):\(r.line) rule \(r.id)") }
            // An example is a finding, named as findings are: said as its rule's model is.
            for e in r.examples { check(e.finding.modelID, "\(file):\(e.line) example of rule \(r.id)") }
        }
        return warnings
    }

    /// Rules an earlier rule in the file decides every finding of: each of the earlier rule's
    /// conditions is absent or at least as wide, so the later one never decides anything (a
    /// broad rule placed above a narrow exception; tester N2). Said, not refused, as a rule
    /// with no examples gave no other sign. Read on resolved rules, so two spellings of one
    /// model compare equal.
    public func shadowedRules() -> [String] {
        var warnings: [String] = []
        // Bounded like the examples' checks: a file of tens of thousands of names must not make
        // each run spend minutes here (review 10). A warning missed is only a warning.
        var budget = Self.maxChecks * 10
        for (i, later) in rules.enumerated() {
            guard budget > 0 else { break }
            guard let earlier = rules[..<i].first(where: { $0.covers(later, budget: &budget) }) else { continue }
            warnings.append(
                "\(file):\(later.line) rule \(later.id): every finding it matches is decided first by rule \(earlier.id)"
                    + " (line \(earlier.line)), whose conditions are all as wide or wider: it never decides (move it above)")
        }
        return warnings
    }

    /// How a run reads a rule's plain model names, and `rules test` too (`card` nil): through the
    /// run's card, else through every shipped card that knows the name when they agree. A FOCUS
    /// card knows no aliases, so `claude-sonnet-4-5-20250929` matched nothing there; `4o` is
    /// gpt-4o to Azure's card and no name to OpenAI's, so it is left as written.
    public static func modelReader(card: (any RateCardConverter)?, cards: [RateCard]) -> (String) -> String? {
        { raw in
            if let m = card?.canonicalModel(raw) { return m }
            let named = Set(cards.compactMap { $0.canonicalModel(raw) })
            return named.count == 1 ? named.first : nil
        }
    }

    private static func gapClass(_ v: YAMLNode, _ what: String) throws -> GapClass {
        let c = GapClass(rawValue: try v.string(what))
        guard GapClass.known.contains(c), c != .withinTolerance else {
            throw v.error("\(what) must be metering_gap, pass_through, pricing_gap or unexplained, got '\(c.rawValue)'")
        }
        return c
    }

    private static func shape(_ v: YAMLNode) throws -> GapShape {
        guard let s = GapShape(rawValue: try v.string("shape")) else { throw v.error("shape must be none, uniform or localized") }
        return s
    }

    private static func example(_ node: YAMLNode, rule: String) throws -> RuleExample {
        var model: String?, quantity: Int64?, expect: GapClass?
        var e = RuleExample(
            rule: rule, line: node.line,
            finding: GapFinding(
                modelID: "", tokenType: nil, accountID: nil, quantity: 0,
                amount: 0, metered: 0, vendor: 0, shape: .localized,
                unmetered: false), expect: .unexplained)
        var vendor: Int64?
        func int(_ v: YAMLNode, _ k: String) throws -> Int64 {
            guard let n = Int64(try v.string(k)) else { throw v.error("example \(k) must be a whole number") }
            return n
        }
        for (k, v) in try node.mapping("an example") {
            switch k {
            case "model": model = try Self.name(v, k)
            case "token_type": e.finding.tokenType = TokenType(try Self.tokenType(try v.string(k), v))
            case "account": e.finding.accountID = try Self.name(v, k)
            case "quantity": quantity = try int(v, k)
            case "metered": e.finding.metered = try int(v, k)
            case "vendor": vendor = try int(v, k)
            case "amount":
                e.finding.amount = ExactDecimal.parse(try v.decimalString(k)) ?? 0
                e.statesAmount = true
            case "shape": e.finding.shape = try Self.shape(v)
            case "unmetered": e.finding.unmetered = try v.bool(k)
            case "expect": expect = try Self.gapClass(v, "expect")
            case "expect_rule": e.expectRule = try Self.nonNull(v, k).string(k)
            default:
                throw v.keyError(
                    "unknown example field '\(k)' (model, token_type, account, quantity, metered, vendor, amount, shape, unmetered, expect, expect_rule)")
            }
        }
        guard let model else { throw node.error("an example of rule \(rule) needs a model") }
        guard let quantity else { throw node.error("an example of rule \(rule) needs a quantity (vendor minus metered, tokens)") }
        guard let expect else { throw node.error("an example of rule \(rule) needs expect: the class it must get") }
        e.finding.modelID = model
        e.finding.quantity = quantity
        if let vendor {
            e.finding.vendor = vendor
        } else {
            let (sum, overflow) = e.finding.metered.addingReportingOverflow(quantity)
            guard !overflow else { throw node.error("an example's metered plus quantity is beyond 64 bits; give vendor") }
            e.finding.vendor = sum
        }
        e.expect = expect
        return e
    }
}

/// A finding a rule is documented with, and the class the whole chain must give it.
public struct RuleExample: Sendable {
    /// The rule it belongs to.
    public var rule: String
    public var line: Int
    public var finding: GapFinding
    public var expect: GapClass
    /// The rule that must decide, when the example says.
    public var expectRule: String?
    /// The classifier that rule must be of, when its file defines a rule of that id.
    public var expectClassifier: String?
    /// Whether it gives `amount` (else 0).
    var statesAmount = false

    /// What the chain gives, and whether that is what the example expects.
    public func check(_ chain: ClassifierChain) -> (passed: Bool, got: GapClassification) {
        let got = chain.classify(finding)
        return (
            got.gapClass == expect && (expectRule.map { $0 == got.rule } ?? true) && (expectClassifier.map { $0 == got.classifier } ?? true), got
        )
    }

    public var summary: String {
        let f = finding
        return "\(f.modelID) \(f.tokenType?.rawValue ?? "(any)") \(f.accountID ?? "(unattributed)") gap \(f.quantity)"
            + " (metered \(f.metered))\(f.shape == .localized ? "" : " shape \(f.shape.rawValue)")\(f.unmetered ? " unmetered" : "")"
    }
}

extension ClassificationRules.Rule {
    func matches(_ f: GapFinding) -> Bool {
        if let models, !models.contains(where: { glob($0, f.modelID) }) { return false }
        if let tokenTypes, !tokenTypes.contains(f.tokenType?.rawValue ?? "") { return false }
        if let accounts { guard let a = f.accountID, accounts.contains(where: { glob($0, a) }) else { return false } }
        if let attributed, attributed != (f.accountID != nil) { return false }
        if let sign, sign != (f.quantity >= 0 ? 1 : -1) { return false }
        let size = f.quantity.magnitude
        if let minTokens, size < UInt64(minTokens) { return false }
        if let maxTokens, size > UInt64(maxTokens) { return false }
        let money = abs(f.amount)
        if let minAmount, money < minAmount { return false }
        if let maxAmount, money > maxAmount { return false }
        // Exact: size ≤ share × metered. Nothing metered is no share at all: above any maximum.
        if let maxShare, f.metered <= 0 || Decimal(size) > maxShare * Decimal(f.metered) { return false }
        if let minShare, f.metered > 0, Decimal(size) < minShare * Decimal(f.metered) { return false }
        if let shape, shape != f.shape { return false }
        if let unmetered, unmetered != f.unmetered { return false }
        return true
    }
}

extension ClassificationRules.Rule {
    /// Whether every finding `other` matches is matched by this rule too: a condition absent
    /// here, or one at least as wide as `other`'s. Conservative: a pattern covers another only
    /// when it is `*`, the same text, or matches it as a plain name.
    func covers(_ other: Self, budget: inout Int) -> Bool {
        func patterns(_ mine: [String]?, _ theirs: [String]?, budget: inout Int) -> Bool {
            guard let mine else { return true }
            guard let theirs else { return false }
            if mine.contains("*") { return true }
            budget -= mine.count
            guard budget > 0 else { return false }
            let plain = Set(mine), wild = mine.filter { $0.contains(where: { "*?".contains($0) }) }
            for p in theirs where !plain.contains(p) {
                budget -= wild.count + 1
                guard budget > 0, !p.contains(where: { "*?".contains($0) }), wild.contains(where: { glob($0, p) }) else { return false }
            }
            return true
        }
        func equal<T: Equatable>(_ mine: T?, _ theirs: T?) -> Bool { mine == nil || mine == theirs }
        func atLeast<T: Comparable>(_ mine: T?, _ theirs: T?) -> Bool { mine.map { m in theirs.map { $0 >= m } ?? false } ?? true }
        func atMost<T: Comparable>(_ mine: T?, _ theirs: T?) -> Bool { mine.map { m in theirs.map { $0 <= m } ?? false } ?? true }
        // An account condition matches attributed findings only.
        let theirAttributed = other.attributed ?? (other.accounts != nil ? true : nil)
        budget -= 1
        guard equal(attributed, theirAttributed), equal(sign, other.sign), equal(shape, other.shape), equal(unmetered, other.unmetered),
            atLeast(minTokens, other.minTokens), atMost(maxTokens, other.maxTokens),
            atLeast(minAmount, other.minAmount), atMost(maxAmount, other.maxAmount),
            atLeast(minShare, other.minShare), atMost(maxShare, other.maxShare)
        else { return false }
        return patterns(models, other.models, budget: &budget) && patterns(tokenTypes, other.tokenTypes, budget: &budget)
            && patterns(accounts, other.accounts, budget: &budget)
    }
}

/// `*` and `?` globbing over whole strings.
func glob(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern), t = Array(text)
    var pi = 0, ti = 0, star = -1, mark = 0
    while ti < t.count {
        if pi < p.count, p[pi] == "?" || p[pi] == t[ti] {
            pi += 1; ti += 1
        } else if pi < p.count, p[pi] == "*" {
            star = pi; mark = ti; pi += 1
        } else if star >= 0 {
            pi = star + 1; mark += 1; ti = mark
        } else {
            return false
        }
    }
    while pi < p.count, p[pi] == "*" { pi += 1 }
    return pi == p.count
}

/// Vendor attribution values (workspace, project, API key) → accounts, from YAML or JSON:
/// `{"wrkspc_01…": "acct_42"}`.
public enum AccountMap {
    public static func load(text: String, file: String) throws -> [String: String] {
        let root = try YAMLNode.parse(text, file: file)
        var out: [String: String] = [:]
        for (k, v) in try root.mapping("the account map") {
            // JSON's null read as the text "null" made an account of that name.
            guard !v.isNull else { throw v.error("the account of '\(k)' is empty (null); name an account or leave the entry out") }
            let account = try v.string("account of \(k)")
            guard EventDecoder.isValidIdentifier(account) else { throw v.error("'\(account)' is not a valid account id") }
            out[k] = account
        }
        return out
    }
}

/// Model names a vendor or a collector uses that no card can know (an Azure deployment name, an
/// internal alias) → the model they serve, from YAML or JSON: `{"prod-gpt4o-eastus": "gpt-4o"}`.
/// Applied on both sides of a reconciliation before the card's own aliases.
public enum ModelMap {
    public static func load(text: String, file: String) throws -> [String: String] {
        let root = try YAMLNode.parse(text, file: file)
        var out: [String: String] = [:]
        for (k, v) in try root.mapping("the model map") {
            guard !v.isNull else { throw v.error("the model of '\(k)' is empty (null); name a model or leave the entry out") }
            out[k] = try v.string("model of \(k)")
        }
        return out
    }
}

/// A card seen through a model map: names the map knows are resolved to the model they serve first.
struct ModelMappedCard: RateCardConverter {
    let card: any RateCardConverter
    let map: [String: String]

    var vendor: String { card.vendor }
    var version: String { card.version }
    var currency: String { card.currency }
    var models: [String] { card.models }
    var fingerprint: String { card.fingerprint }
    func canonicalModel(_ vendorModel: String) -> String? {
        if let mapped = map[vendorModel] { return card.canonicalModel(mapped) ?? mapped }
        return card.canonicalModel(vendorModel)
    }
    func aliasTokenType(_ vendorString: String) -> TokenType? { card.aliasTokenType(map[vendorString] ?? vendorString) }
    func price(model: String, tokenType: TokenType, date: Timestamp, labels: [String: String]) throws -> ResolvedPrice {
        try card.price(model: model, tokenType: tokenType, date: date, labels: labels)
    }
    func isBaseLabel(_ key: String, _ value: String, model: String) -> Bool { card.isBaseLabel(key, value, model: model) }
    func priceChanges(model: String) -> [Timestamp] { card.priceChanges(model: model) }
}

extension String {
    /// Padded with zeros on the left to `width` characters (a code point as U+200B writes it).
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
