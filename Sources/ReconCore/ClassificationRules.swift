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
///       shape: uniform                    # none | uniform | localized
///       unmetered: true                   # the token type was never metered for the model
///     class: pass_through                 # metering_gap | pass_through | pricing_gap | unexplained
///     reason: shared_system_prompt_caching
/// ```
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
        public var shape: GapShape?
        public var unmetered: Bool?
        public var gapClass: GapClass
        public var reason: String
    }

    public var rules: [Rule]
    /// The YAML the rules came from, recorded with every reconciliation.
    public var source: String
    public var file: String

    public func classify(_ f: GapFinding) -> GapClassification? {
        for r in rules where r.matches(f) {
            return GapClassification(gapClass: r.gapClass, rule: r.id, reason: r.reason)
        }
        return nil
    }

    /// The rules shipped with UsageBox and used by the demo.
    public static let defaultYAML = """
        # UsageBox default gap classification rules. First match wins; replace with --rules FILE.
        version: 1
        rules:
          # The same percentage on every model: a rate card, discount or currency off by a factor.
          - id: uniform-shape
            when: {shape: uniform}
            class: pricing_gap
            reason: rate_card_or_currency_mismatch
          # Cache reads and writes of a shared system prompt: vendor overhead we absorb.
          - id: cached-system-prompt
            when: {token_type: [cache_read, cache_write_5m, cache_write_1h, cache_write]}
            class: pass_through
            reason: shared_system_prompt_caching
          # Token types we meter, on one account: served but not recorded. Correct it.
          - id: metered-residual
            when: {token_type: [input, output, reasoning], attributed: true}
            class: metering_gap
            reason: untracked_usage
          # Anything else stays unexplained until a person (or a rule) says otherwise.
          - id: unexplained
            when: {}
            class: unexplained
            reason: needs_review

        """

    public static func defaults() -> ClassificationRules {
        // The shipped YAML is tested; failing here would be a build defect.
        try! load(text: defaultYAML, file: "default-rules.yaml")
    }

    /// Loads rules, refusing bad syntax, unknown fields and unknown classes with the file and line.
    public static func load(text: String, file: String) throws -> ClassificationRules {
        let root = try YAMLNode.parse(text, file: file)
        var rules: [Rule] = []
        var sawRules = false
        for (key, value) in try root.mapping("the rules file") {
            switch key {
            case "version":
                guard try value.string("version") == "1" else { throw value.error("version must be 1") }
            case "rules":
                sawRules = true
                for node in try value.sequence("rules") { rules.append(try rule(node, index: rules.count)) }
            default:
                throw value.error("unknown field '\(key)' (expected version, rules)")
            }
        }
        guard sawRules else { throw root.error("the rules file needs a 'rules' list") }
        var ids = Set<String>()
        for r in rules where !ids.insert(r.id).inserted { throw root.error("two rules share the id '\(r.id)'") }
        return ClassificationRules(rules: rules, source: text, file: file)
    }

    private static func rule(_ node: YAMLNode, index: Int) throws -> Rule {
        var id: String?, gapClass: GapClass?, reason: String?
        var r = Rule(id: "", gapClass: .unexplained, reason: "")
        for (key, value) in try node.mapping("a rule") {
            switch key {
            case "id": id = try value.string("id")
            case "class":
                let c = GapClass(rawValue: try value.string("class"))
                guard GapClass.known.contains(c), c != .withinTolerance else {
                    throw value.error("class must be metering_gap, pass_through, pricing_gap or unexplained, got '\(c.rawValue)'")
                }
                gapClass = c
            case "reason": reason = try value.string("reason")
            case "when":
                for (k, v) in try value.mapping("when") {
                    switch k {
                    case "model": r.models = try v.strings("model")
                    case "token_type": r.tokenTypes = try v.strings("token_type")
                    case "account": r.accounts = try v.strings("account")
                    case "attributed": r.attributed = try v.bool("attributed")
                    case "unmetered": r.unmetered = try v.bool("unmetered")
                    case "sign":
                        switch try v.string("sign") {
                        case "positive": r.sign = 1
                        case "negative": r.sign = -1
                        default: throw v.error("sign must be positive or negative")
                        }
                    case "min_tokens", "max_tokens":
                        guard let n = Int64(try v.string(k)), n >= 0 else { throw v.error("\(k) must be a whole number of tokens") }
                        if k == "min_tokens" { r.minTokens = n } else { r.maxTokens = n }
                    case "min_amount", "max_amount":
                        let d = ExactDecimal.parse(try v.decimalString(k))
                        if k == "min_amount" { r.minAmount = d } else { r.maxAmount = d }
                    case "shape":
                        guard let s = GapShape(rawValue: try v.string("shape")) else { throw v.error("shape must be none, uniform or localized") }
                        r.shape = s
                    default:
                        throw v.error("unknown condition '\(k)' (model, token_type, account, attributed, sign, min_tokens, max_tokens, min_amount, max_amount, shape, unmetered)")
                    }
                }
            default:
                throw value.error("unknown rule field '\(key)' (id, when, class, reason)")
            }
        }
        guard let gapClass else { throw node.error("rule \(id ?? "#\(index + 1)") needs a class") }
        r.id = id ?? "rule-\(index + 1)"
        r.gapClass = gapClass
        r.reason = reason ?? gapClass.rawValue
        return r
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
        if let shape, shape != f.shape { return false }
        if let unmetered, unmetered != f.unmetered { return false }
        return true
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
            let account = try v.string("account of \(k)")
            guard EventDecoder.isValidIdentifier(account) else { throw v.error("'\(account)' is not a valid account id") }
            out[k] = account
        }
        return out
    }
}
