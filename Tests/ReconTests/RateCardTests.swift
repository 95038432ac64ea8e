import Foundation
import Metering
import RateCardData
import ReconPlugins
import Testing

@testable import ReconCore

@Suite struct RateCardTests {
    let card = try! RateCard.load(text: RateCardData.cards["anthropic"]!, file: "anthropic.yaml")

    /// Registration is one place: a plugin names its card, the build embeds every card in
    /// RateCards/, and neither may be without the other.
    @Test func everyCardIsClaimedByAPluginAndEveryPluginsCardExists() {
        let cards = Set(RateCardData.cards.keys)
        let named = Set(builtInPlugins.map { $0.rateCardName })
        #expect(named.subtracting(cards).isEmpty, "plugins naming a card RateCards/ lacks: \(named.subtracting(cards).sorted())")
        #expect(cards.subtracting(named).isEmpty, "cards in RateCards/ no plugin names: \(cards.subtracting(named).sorted())")
        #expect(cards.count >= 7)
    }

    @Test(arguments: [
        ("claude-opus-4-8", ["5", "25", "0.5", "6.25", "10"]),
        ("claude-sonnet-4-5", ["3", "15", "0.3", "3.75", "6"]),
        ("claude-haiku-4-5", ["1", "5", "0.1", "1.25", "2"]),
    ])
    func anthropicPricesAllOf2026(_ model: String, _ rates: [String]) throws {
        let types: [TokenType] = [.input, .output, .cacheRead, .cacheWrite5m, .cacheWrite1h]
        for date in ["2026-01-01T00:00:00Z", "2026-05-15T00:00:00Z", "2026-12-31T23:59:59Z"] {
            for (t, rate) in zip(types, rates) {
                let p = try card.price(
                    model: model, tokenType: t, date: Timestamp(rfc3339: date)!, labels: ["context_window": "0-200k", "service_tier": "standard"])
                #expect(p.perMillion == ExactDecimal.parse(rate), "\(model) \(t) on \(date)")
            }
        }
    }

    @Test func aliasesTiersAndModifiers() throws {
        #expect(card.canonicalModel("claude-sonnet-4-5-20250929") == "claude-sonnet-4-5")
        #expect(card.canonicalModel("Claude Sonnet 4.5") == "claude-sonnet-4-5")
        #expect(card.canonicalModel("claude-haiku-4-5-20251001") == "claude-haiku-4-5")
        #expect(card.canonicalModel("claude-sonnet-4-5-extra") == nil, "aliases match the whole string")
        #expect(card.canonicalModel("gpt-4o") == nil)
        // Bedrock's dated SDK ids were never placed: the meter read 0 and a real loss was blocked.
        let bedrock = try RateCard.load(text: RateCardData.cards["aws-bedrock"]!, file: "aws-bedrock.yaml")
        for (id, model) in [
            ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"), ("anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
            ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
            ("global.anthropic.claude-sonnet-4-6", "claude-sonnet-4-6"),
        ] {
            #expect(bedrock.canonicalModel(id) == model, "\(id)")
        }
        let date = Timestamp(rfc3339: "2026-05-01T00:00:00Z")!
        #expect(try card.price(model: "claude-sonnet-4-5", tokenType: .input, date: date, labels: ["context_window": "200k-1M"]).perMillion == 6)
        #expect(
            try card.price(model: "claude-haiku-4-5", tokenType: .output, date: date, labels: ["service_tier": "batch"]).perMillion == Decimal(string: "2.5"))
        #expect(try card.price(model: "claude-opus-4-8", tokenType: .input, date: date, labels: ["inference_geo": "us"]).perMillion == Decimal(string: "5.5"))
        #expect(throws: PriceFailure.self) {
            try card.price(model: "claude-opus-4-8", tokenType: .input, date: Timestamp(rfc3339: "2025-06-01T00:00:00Z")!, labels: [:])
        }
    }

    @Test func conversionIsExactWithRoundingTolerance() throws {
        let p = try card.price(model: "claude-sonnet-4-5", tokenType: .output, date: Timestamp(rfc3339: "2026-05-01T00:00:00Z")!, labels: [:])
        #expect(card.tokens(for: Decimal(string: "1.50")!, at: p) == 100_000)
        // Half a cent at $15 per million is 333.33… tokens; rounded up once per group.
        let tolerance = card.tolerance(scale: 2, at: p)
        #expect(ExactDecimal.ceilInt64(tolerance) == 334)
        #expect(
            card.amount(
                for: 520_000, at: try card.price(model: "claude-sonnet-4-5", tokenType: .input, date: Timestamp(rfc3339: "2026-05-01T00:00:00Z")!, labels: [:]))
                == Decimal(string: "1.56"))
        #expect(ExactDecimal.roundedInt64(Decimal(string: "2.5")!) == 2 && ExactDecimal.roundedInt64(Decimal(string: "3.5")!) == 4, "half-even")
        #expect(
            ExactDecimal.format(Decimal(string: "1399.555")!) == "1399.56" && ExactDecimal.format(Decimal(string: "0.1")! + Decimal(string: "0.2")!) == "0.30")
    }

    static let minimal = """
        schema: ratecard/v1
        vendor: acme
        currency: USD
        unit: per_million_tokens
        card_version: "1"
        sources: {docs: {url: "https://example.com"}}
        token_types: [input, output]
        models:
          acme-1:
            prices:
              - {from: "2026-01-01", to: "2026-06-01", rates: {input: "1", output: "2"}, src: docs}
              - {from: "2026-06-01", rates: {input: "0.5", output: "1"}, src: docs}
        """

    /// Alias patterns match with no time limit: `(a+)+b` from a per-request card took 23 s per
    /// model name and two requests stopped `/healthz`. Patterns that can backtrack like that are
    /// refused; the shipped cards' patterns (which every plugin example loads) pass.
    @Test func aliasPatternsThatCanBacktrackForMinutesAreRefused() {
        for risky in [
            "(a+)+b", "(a*)*", "(a|aa)+c", "(?:x+y?)*z", "(a{1,})+", "([a-z]+)*$", ".*.*.*.*.*x", "(\\d+)+", "(?<x>a+)+b", "(?<n>(a+)+)b",
            "(?>(a+)+b)", "(.*a){11}x", "(a?){28}a{28}", "(a{1,30}){1,30}b", "(?P<n>a*)*", "(a+", "a+)",
            "((a|aa))+$", "(?:(a|a))*b", "(?x)(a+) +$",
            // Four of varying length took 83 s on a 200-character name, five ranges 133 s.
            ".*.*.*.*b", ".*.*.*b", "a{0,30}a{0,30}a{0,30}a{0,30}a{0,30}b", String(repeating: "a?", count: 9) + "b",
        ] {
            #expect(RateCard.backtrackingRisk(risky) != nil, "\(risky)")
        }
        for safe in [
            "claude-opus-4-8(-[0-9]{8})?", "gpt-4o(-2024-(08-06|11-20))?", "Claude4\\.5Haiku|Claude Haiku 4\\.5.*", "Gemini 2\\.5 Flash[- ]Lite",
            "(gpt-)?4o(-[0-9]{4})?", "[(+*]+x", "a\\(+b", "(ab){2,5}", "(?i)claude.*", "(?<date>-[0-9]{8})?", "(?i:claude)-(?:sonnet|opus)",
            "Claude.*Sonnet.*4\\.5",
        ] {
            #expect(RateCard.backtrackingRisk(safe) == nil, "\(safe)")
        }
    }

    /// What the reading lets through is bounded when matched: a string past 256 characters is
    /// no alias's, and one try stops after its time (a name of 5,000 characters under two `.*`).
    @Test func aliasMatchingIsBoundedWhateverThePattern() throws {
        let card = try RateCard.load(
            text: Self.minimal + "\naliases:\n  - {match: \"a.*a.*b\", model: acme-1}\n", file: "acme.yaml")
        #expect(card.canonicalModel("aab") == "acme-1")
        #expect(card.canonicalModel(String(repeating: "a", count: 5_000) + "b") == nil, "past 256 characters")
        #expect(card.canonicalModel(String(repeating: "a", count: 250) + "b") == "acme-1")
        // Exponential, and let through only to show the clock stops it (it would not end).
        let slow = try NSRegularExpression(pattern: "(a|aa)*(a|aa)*(a|aa)*c")
        let text = String(repeating: "a", count: 200)
        #expect(!RateCard.matchesWhole(slow, text, NSRange(text.startIndex..., in: text)))
        #expect(RateCard.match(slow, text, NSRange(text.startIndex..., in: text)) == nil, "stopped by the clock, not decided")
    }

    /// Alias answers are remembered per string, only when every pattern decided in its time (a
    /// try the clock stopped under load must not make a model unknown for the server's lifetime),
    /// and a card whose aliases change starts afresh.
    @Test func aliasAnswersAreRememberedOnlyWhenDecided() throws {
        let memo = RateCard.AliasMemo()
        var computed = 0
        for _ in 0..<3 {
            #expect(
                memo.answer("gpt-x") {
                    computed += 1; return (2, true)
                } == 2)
        }
        #expect(computed == 1, "a decided answer is computed once")
        for _ in 0..<3 {
            #expect(
                memo.answer("slow") {
                    computed += 1; return (found: nil, decided: false)
                } == nil)
        }
        #expect(computed == 4, "an answer the clock stopped is tried again each time")
        var card = try RateCard.load(text: Self.minimal + "\naliases:\n  - {match: \"acme-one\", model: acme-1}\n", file: "acme.yaml")
        #expect(card.canonicalModel("acme-one") == "acme-1")
        let other = try RateCard.load(text: Self.minimal + "\naliases:\n  - {match: \"acme-uno\", model: acme-1}\n", file: "acme.yaml")
        card.aliases = other.aliases
        #expect(card.canonicalModel("acme-one") == nil && card.canonicalModel("acme-uno") == "acme-1", "new aliases, new answers")
    }

    @Test func aMinimalCardLoadsAndSwitchesPricesOnTheirDates() throws {
        let c = try RateCard.load(text: Self.minimal, file: "acme.yaml")
        #expect(try c.price(model: "acme-1", tokenType: .input, date: Timestamp(rfc3339: "2026-05-31T23:59:59Z")!, labels: [:]).perMillion == 1)
        #expect(
            try c.price(model: "acme-1", tokenType: .input, date: Timestamp(rfc3339: "2026-06-01T00:00:00Z")!, labels: [:]).perMillion == Decimal(string: "0.5")
        )
    }

    @Test(arguments: [
        ("rates: {input: \"1\", output: \"2\"}", "rates: {input: 1.25, output: \"2\"}", 11, "written as a number"),
        ("to: \"2026-06-01\", ", "to: \"2026-07-01\", ", 12, "overlap"),
        ("rates: {input: \"0.5\", output: \"1\"}", "rates: {input: \"0.5\"}", 12, "no price for output"),
        ("currency: USD", "currency: USD\ncolour: blue", 4, "unknown rate card field"),
        // `null` (unknown) is a tier's word alone: a base price must be stated.
        ("rates: {input: \"0.5\", output: \"1\"}", "rates: {input: null, output: \"1\"}", 12, "rates of acme-1 input"),
        (", src: docs}\n      - {from", "}\n      - {from", 11, "needs 'src'"),
        ("card_version: \"1\"", "card_version: \"1\"\n  bad: [", 7, "YAML syntax"),
        // A negative rate crashed the run (and a server with it); a zero one made dollars unbounded tokens.
        ("rates: {input: \"1\", output: \"2\"}", "rates: {input: \"-3\", output: \"2\"}", 11, "input must be more than 0, got \"-3\""),
        ("rates: {input: \"0.5\", output: \"1\"}", "rates: {input: \"0.5\", output: \"0.00\"}", 12, "output must be more than 0"),
        (
            "token_types: [input, output]", "token_types: [input, output]\nmodifiers:\n  m: {factor: \"-1\", when: {tier: [batch]}}", 9,
            "factor must be more than 0"
        ),
    ])
    func theLoaderRefusesBadCardsNamingTheLine(_ find: String, _ replace: String, _ line: Int, _ message: String) {
        let text = Self.minimal.replacingOccurrences(of: find, with: replace)
        #expect(text != Self.minimal, "the mutation applies")
        do {
            _ = try RateCard.load(text: text, file: "acme.yaml")
            Issue.record("accepted a bad card: \(message)")
        } catch let e as ConfigError {
            #expect(e.file == "acme.yaml")
            #expect(e.description.contains(message), "\(e.description)")
            #expect(abs(e.line - line) <= 1, "line \(e.line) for \(message)")
        } catch {
            Issue.record("\(error)")
        }
    }
}

@Suite struct RulesTests {
    @Test func defaultsParseAndClassifyInOrder() throws {
        let rules = ClassificationRules.defaults()
        func f(_ tt: TokenType?, account: String? = "a", shape: GapShape = .localized, q: Int64 = 100) -> GapFinding {
            GapFinding(modelID: "m", tokenType: tt, accountID: account, quantity: q, amount: 1, metered: 0, vendor: q, shape: shape, unmetered: false)
        }
        #expect(rules.classify(f(.input, shape: .uniform))?.gapClass == .pricingGap)
        #expect(rules.classify(f(.cacheRead))?.gapClass == .passThrough)
        #expect(rules.classify(f(.input))?.gapClass == .meteringGap)
        #expect(rules.classify(f(.output, q: -5))?.gapClass == .meteringGap, "over-metering is a metering gap too")
        #expect(rules.classify(f(.input, account: nil))?.gapClass == .unexplained, "no single account: no correction")
    }

    @Test func conditionsCombine() throws {
        let rules = try ClassificationRules.load(
            text: """
                version: 1
                rules:
                  - id: big-internal
                    when: {model: "claude-*", account: "acct_int*", sign: positive, min_tokens: 1000, max_amount: "10"}
                    class: pass_through
                    reason: internal_evals
                  - id: rest
                    when: {}
                    class: unexplained
                """, file: "r.yaml")
        let hit = GapFinding(
            modelID: "claude-x", tokenType: .input, accountID: "acct_internal", quantity: 5000, amount: Decimal(string: "9.99")!,
            metered: 0, vendor: 5000, shape: .localized, unmetered: true)
        #expect(rules.classify(hit)?.rule == "big-internal")
        var miss = hit
        miss.amount = 11
        #expect(rules.classify(miss)?.rule == "rest")
        miss = hit
        miss.quantity = -5000
        #expect(rules.classify(miss)?.rule == "rest")
    }

    /// A tolerance as a share of what was metered scales with each cell: a bound in tokens sized
    /// for the largest model swallowed a smaller model's whole outage (tester N).
    @Test func aShareOfTheMeteredTokensBoundsAGap() throws {
        let rules = try ClassificationRules.load(
            text: """
                version: 1
                rules:
                  - id: small
                    when: {max_share: "0.005"}
                    class: pass_through
                  - id: large
                    when: {min_share: "0.3"}
                    class: pricing_gap
                  - id: rest
                    when: {}
                    class: unexplained
                """, file: "r.yaml")
        func f(_ q: Int64, metered: Int64) -> GapFinding {
            GapFinding(
                modelID: "m", tokenType: .input, accountID: "a", quantity: q, amount: 1, metered: metered, vendor: metered + q, shape: .localized,
                unmetered: false)
        }
        #expect(rules.classify(f(5_000, metered: 1_000_000))?.rule == "small", "exactly half a percent is within")
        #expect(rules.classify(f(-5_000, metered: 1_000_000))?.rule == "small", "by its size")
        #expect(rules.classify(f(5_001, metered: 1_000_000))?.rule == "rest")
        #expect(rules.classify(f(300_000, metered: 1_000_000))?.rule == "large")
        #expect(rules.classify(f(299_999, metered: 1_000_000))?.rule == "rest")
        #expect(rules.classify(f(5, metered: 0))?.rule == "large", "nothing metered: above any maximum, beyond any minimum")
    }

    /// A token type or model no finding can carry makes a condition that matches nothing: a rule
    /// billing `cache_write_5min` left lost 5-minute cache writes passed through (tester N). Said,
    /// with the file, line and rule; names the cards or the run know are not.
    @Test func namesNoFindingCanCarryAreSaid() throws {
        let rules = try ClassificationRules.load(
            text: """
                version: 1
                rules:
                  - id: bill-cache
                    when: {token_type: [cache_read, cache_write_5min], model: [claude-sonnet-4-5-20250929, claude-sonet-4-5, "claude-*", "gpt-9*"]}
                    class: metering_gap
                  - id: audio
                    when: {token_type: input_audio}
                    class: pass_through
                    examples:
                      - {model: claude-sonet-4-5, token_type: cache_write_5min, quantity: 5, expect: pass_through}
                      - {model: claude-sonnet-4-5, token_type: input, quantity: 5, expect: metering_gap}
                """, file: "team.yaml")
        let cards = try RateCardData.cards.map { try RateCard.load(text: $0.value, file: $0.key + ".yaml") }
        let said = rules.unmatchableNames(card: nil, cards: cards)
        #expect(said.count == 6, "\(said)")
        // An example naming what no finding carries tests a case no run has (tester N2).
        #expect(said.contains { $0.hasPrefix("team.yaml:10 example of rule audio: model 'claude-sonet-4-5'") })
        #expect(said.contains { $0.hasPrefix("team.yaml:10 example of rule audio: token_type 'cache_write_5min'") })
        #expect(said.contains { $0.hasPrefix("team.yaml:3 rule bill-cache: token_type 'cache_write_5min'") })
        #expect(said.contains { $0.contains("model 'claude-sonet-4-5' is no model or alias") })
        #expect(said.contains { $0.contains("model 'gpt-9*' is a pattern matching no model") })
        #expect(said.contains { $0.contains("team.yaml:6 rule audio: token_type 'input_audio'") })
        #expect(!said.contains { $0.contains("20250929") || $0.contains("'claude-*'") || $0.contains("'cache_read'") })
        // A token type or model the run meters or bills is one findings carry.
        #expect(rules.unmatchableNames(card: nil, cards: cards, runTokenTypes: [TokenType("input_audio")]).count == 5)
        #expect(rules.unmatchableNames(card: nil, cards: cards, runModels: ["claude-sonet-4-5"]).count == 4)
        // A pattern of dots and globs can match an id like `a.b`.
        #expect(
            (try? ClassificationRules.load(text: "version: 1\nrules:\n  - id: x\n    when: {account: \"*.*\"}\n    class: pass_through\n", file: "r.yaml"))
                != nil)
    }

    /// `GPT-4o`, `gpt-4o ` and `gpt-4o` with a no-break space: a run applied the rule to gpt-4o
    /// through the card's aliases, silently; `rules test` with the card said nothing and without
    /// one called it no model at all (tester T2 L1). Each now says how it is read, the same way.
    @Test func aModelInAnotherCaseOrWithSpacesIsSaidAsItIsRead() throws {
        let cards = try RateCardData.cards.map { try RateCard.load(text: $0.value, file: $0.key + ".yaml") }
        let azure = try #require(cards.first { $0.vendor == "azure-openai" })
        for written in ["GPT-4o", "gpt-4o ", "gpt-4o\u{00A0}"] {
            let rules = try ClassificationRules.load(
                text: "version: 1\nrules:\n  - id: zz\n    when: {model: \"\(written)\", token_type: output}\n    class: pass_through\n", file: "r.yaml")
            #expect(
                rules.respelledModels(card: azure, cards: cards)
                    == ["r.yaml:3 rule zz: model '\(written)' is read as 'gpt-4o' (the cards' aliases ignore case, and spaces around a name): write it so"])
            let bare = rules.respelledModels(card: nil, cards: cards)
            #expect(bare.count == 1 && bare[0].contains("gpt-4o on azure-openai, gpt-4o-2024-08-06 on openai"), "\(bare)")
            #expect(rules.unmatchableNames(card: nil, cards: cards).isEmpty, "said once, by how it is read")
            // An example so written is said as its rule's model is (it was called no model).
            let example = try ClassificationRules.load(
                text: "version: 1\nrules:\n  - id: zz\n    when: {model: gpt-4o, token_type: output}\n    class: pass_through\n    examples:\n"
                    + "      - {model: \"\(written)\", token_type: output, quantity: -5, expect: pass_through}\n", file: "r.yaml")
            #expect(example.unmatchableNames(card: nil, cards: cards).isEmpty)
            #expect(example.respelledModels(card: azure, cards: cards).map { $0.hasPrefix("r.yaml:7 example of rule zz: model") } == [true])
            let report = ReconciliationEngine.respelledRuleModels(rules, card: azure, cards: cards)
            #expect(report.map(\.code) == ["rules_name_models_as_cards_do_not"])
        }
        // A vendor's own name that an alias reads is no misspelling (tester U).
        let exact = try ClassificationRules.load(
            text: "version: 1\nrules:\n  - id: zz\n    when: {model: [gpt-4o, claude-sonnet-4-5-20250929, Claude Sonnet 4.5]}\n    class: pass_through\n",
            file: "r.yaml")
        #expect(exact.respelledModels(card: azure, cards: cards).isEmpty && exact.respelledModels(card: nil, cards: cards).isEmpty)
    }

    /// A narrow exception below a broad rule never decides: every finding it matches is decided
    /// first (tester N2). Said with both lines; a rule that is narrower in any way, or wider, is not.
    @Test func aRuleAnEarlierOneDecidesEveryFindingOfIsSaid() throws {
        let rules = try ClassificationRules.load(
            text: """
                version: 1
                rules:
                  - id: small-gaps
                    when: {max_tokens: 1000, model: ["claude-*"]}
                    class: pass_through
                  - id: small-sonnet-input
                    when: {max_tokens: 500, model: claude-sonnet-4-5, token_type: input, account: "acct_*"}
                    class: metering_gap
                  - id: small-or-not
                    when: {model: claude-sonnet-4-5}
                    class: metering_gap
                  - id: gpt-small
                    when: {max_tokens: 10, model: "gpt-*", min_share: "0.1"}
                    class: metering_gap
                  - id: gpt-smaller
                    when: {max_tokens: 5, model: "gpt-4o", min_share: "0.2", attributed: true}
                    class: metering_gap
                  - id: gpt-any-share
                    when: {max_tokens: 5, model: "gpt-4o"}
                    class: metering_gap
                """, file: "team.yaml")
        let said = rules.shadowedRules()
        #expect(said.count == 2, "\(said)")
        #expect(said.first?.hasPrefix("team.yaml:6 rule small-sonnet-input: every finding it matches is decided first by rule small-gaps (line 3)") == true)
        #expect(said.contains { $0.hasPrefix("team.yaml:15 rule gpt-smaller:") && $0.contains("rule gpt-small (line 12)") })
    }

    /// An example with no amount read $0 against a rule's amount bound: `rules test` passed it
    /// while reconcile, which prices every gap, decided otherwise (tester Z2). In a file with an
    /// amount bound, every example gives its amount; elsewhere it may still leave it out.
    @Test func anExampleGivesItsAmountWhereARuleBoundsAmounts() throws {
        let bounded = """
            version: 1
            rules:
              - id: small-input
                when: {token_type: input, max_amount: "0.50"}
                class: pass_through
                reason: rounding
                examples:
                  - {model: claude-sonnet-4-5, token_type: input, quantity: 520000, metered: 122900000, expect: pass_through}
            """
        let e = #expect(throws: ConfigError.self) { try ClassificationRules.load(text: bounded, file: "r.yaml") }
        #expect(e?.line == 8 && e?.message.contains("gives no amount while rule small-input bounds amounts") == true, "\(String(describing: e))")
        let given = bounded.replacingOccurrences(of: "metered: 122900000,", with: "metered: 122900000, amount: \"1.56\",")
            .replacingOccurrences(of: "expect: pass_through}", with: "expect: metering_gap}")
        let rules = try ClassificationRules.load(text: given, file: "r.yaml")
        #expect(rules.examples.first?.finding.amount == Decimal(string: "1.56"))
        #expect(try ClassificationRules.load(text: bounded.replacingOccurrences(of: ", max_amount: \"0.50\"", with: ""), file: "r.yaml").examples.count == 1)
        // An expect_rule naming no rule anywhere is refused at load (it read as a failing example).
        let stray = given.replacingOccurrences(of: "expect: metering_gap}", with: "expect: metering_gap, expect_rule: nonexistent}")
        let unknown = #expect(throws: ConfigError.self) { try ClassificationRules.load(text: stray, file: "r.yaml") }
        #expect(unknown?.line == 8 && unknown?.message.contains("expect_rule nonexistent names no rule") == true, "\(String(describing: unknown))")
        let defaultID = given.replacingOccurrences(of: "expect: metering_gap}", with: "expect: metering_gap, expect_rule: metered-residual}")
        #expect(try ClassificationRules.load(text: defaultID, file: "r.yaml").examples.first?.expectRule == "metered-residual")
        // `none` is what the chain answers when no rule matches.
        let none = given.replacingOccurrences(of: "expect: metering_gap}", with: "expect: unexplained, expect_rule: none}")
        #expect(try ClassificationRules.load(text: none, file: "r.yaml").examples.first?.expectRule == "none")
    }

    /// Each condition of an earlier rule, wider or not than the later one's: only when every one
    /// is as wide is the later rule said never to decide (review 10).
    @Test(arguments: [
        ("{max_share: \"0.1\"}", "{max_share: \"0.05\"}", true), ("{max_share: \"0.1\"}", "{}", false),
        ("{max_share: \"0.05\"}", "{max_share: \"0.1\"}", false), ("{min_amount: \"5\"}", "{min_amount: \"10\"}", true),
        ("{max_amount: \"5\"}", "{max_amount: \"10\"}", false), ("{sign: positive}", "{sign: positive, min_tokens: 5}", true),
        ("{sign: positive}", "{sign: negative}", false), ("{shape: uniform}", "{}", false), ("{unmetered: true}", "{unmetered: true, model: gpt-4o}", true),
        ("{attributed: true}", "{account: \"acct_*\"}", true), ("{attributed: false}", "{account: \"acct_*\"}", false),
        ("{account: \"acct_*\"}", "{attributed: true}", false), ("{model: \"gpt-4?\"}", "{model: [gpt-4o, gpt-5o]}", false),
        ("{model: \"gpt-4?\"}", "{model: [gpt-4o, gpt-4x]}", true), ("{model: \"gpt-*\"}", "{model: \"gpt-4*\"}", false),
        ("{token_type: [input, output]}", "{token_type: output}", true), ("{token_type: input}", "{token_type: [input, output]}", false),
    ])
    func anEarlierRuleCoversALaterOneOnlyWhenEveryConditionIsAsWide(earlier: String, later: String, covered: Bool) throws {
        let rules = try ClassificationRules.load(
            text: "version: 1\nrules:\n  - id: a\n    when: \(earlier)\n    class: pass_through\n  - id: b\n    when: \(later)\n    class: metering_gap\n",
            file: "r.yaml")
        #expect(rules.shadowedRules().isEmpty != covered, "\(earlier) above \(later): \(rules.shadowedRules())")
    }

    /// The shipped defaults, copied as a team's starting point (`usagebox rules show`), warn of
    /// nothing: an example of `input_audio`, which no card names, made every run of a copy note it.
    @Test func theDefaultsWarnOfNothing() throws {
        let cards = try RateCardData.cards.map { try RateCard.load(text: $0.value, file: $0.key + ".yaml") }
        let defaults = ClassificationRules.defaults()
        #expect(defaults.unmatchableNames(card: nil, cards: cards).isEmpty && defaults.shadowedRules().isEmpty)
    }

    /// Names are compared as a run reads them: a dated alias above the plain name is the same model.
    @Test func shadowingIsReadThroughTheCardsAliases() throws {
        let rules = try ClassificationRules.load(
            text: """
                version: 1
                rules:
                  - id: dated
                    when: {model: claude-sonnet-4-5-20250929}
                    class: pass_through
                  - id: plain
                    when: {model: claude-sonnet-4-5, token_type: input}
                    class: metering_gap
                """, file: "r.yaml")
        let cards = try RateCardData.cards.map { try RateCard.load(text: $0.value, file: $0.key + ".yaml") }
        #expect(rules.shadowedRules().isEmpty, "as written, two names")
        #expect(rules.resolvingModels(ClassificationRules.modelReader(card: nil, cards: cards)).shadowedRules().count == 1)
    }

    /// Tens of thousands of names in two rules are compared within a budget, not pair by pair.
    @Test func comparingRulesOfManyNamesIsBounded() throws {
        let names = (0..<40_000).map { "m\($0)" }
        let text =
            "version: 1\nrules:\n  - id: a\n    when: {model: [\(names.joined(separator: ", "))]}\n    class: pass_through\n"
            + "  - id: b\n    when: {model: [\(names.reversed().joined(separator: ", "))]}\n    class: metering_gap\n"
        let rules = try ClassificationRules.load(text: text, file: "r.yaml")
        #expect(rules.shadowedRules().count == 1)
    }

    /// 48 KB of YAML aliases of aliases made millions of rule examples (a server past a gigabyte),
    /// and an alias of nested aliases used as a key spun a CPU for minutes while Yams composed the
    /// file, before any count could run. Telling such a key from a value before libyaml reads the
    /// text failed twice (an apostrophe in plain text, or a comment ended by a bare CR, hid it:
    /// tester S; `{*a}`, a flow key with no colon: tester S2). A file with an anchor is refused
    /// unread, wherever the anchor stands; a file of more than `YAMLNode.maxNodes` nodes too.
    @Test func anchorsAndFilesPastTheNodeBoundAreRefused() {
        var keyBomb = "version: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...8 { keyBomb += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        var texts = ["k:\n  ? *a8\n  : 1\n", "k: [*a8 : 1]\n", "k: {*a8:1}\n", "k: {[*a8]: 1}\n", "k:\n  &z [*a8]: 1\n", "k: {*a8}\n", "k: [?*a8]\n"].map {
            keyBomb + $0
        }
        texts += [
            "version: 1\nnote1: it's\n" + keyBomb.dropFirst(11) + "? *a8\n: 1\nnote2: isn't\n",
            "version: 1\n# a comment\r" + keyBomb.dropFirst(11) + "k:\n  ? *a8\n  : 1\n",
            "version: 1\nnote1: \"it\n" + keyBomb.dropFirst(11) + "k: {*a8 : 1}\nnote2: is\"\n",
            "version: 1\nk: {\u{85}&a0 x: 1}\n", "version: 1\nrules:\n  - id: x\n    class: pass_through\n    reason: \"see &notes\"\n",
        ]
        for text in texts {
            for load in [{ _ = try ClassificationRules.load(text: text, file: "r.yaml") }, { _ = try RateCard.load(text: text, file: "c.yaml") }] {
                do {
                    try load()
                    Issue.record("a file with anchors was read: \(text.prefix(40))")
                } catch let e as ConfigError {
                    #expect(e.description.contains("anchors (&name)"), "\(e.description)")
                } catch {
                    Issue.record("\(error)")
                }
            }
        }
        let wide = "version: 1\nrules: []\nk: [" + Array(repeating: "x", count: 100_001).joined(separator: ",") + "]\n"
        do {
            _ = try ClassificationRules.load(text: wide, file: "r.yaml")
            Issue.record("a file past the node bound was read")
        } catch let e as ConfigError {
            #expect(e.description.contains("more than 100000 YAML nodes"), "\(e.description)")
        } catch {
            Issue.record("\(error)")
        }
        // Ampersands in text that is no anchor stay: "R&D", "Q & A".
        #expect(throws: Never.self) {
            _ = try ClassificationRules.load(text: "version: 1\n# R&D's rules, Q & A\nrules:\n  - id: x\n    class: pass_through\n", file: "r.yaml")
        }
    }

    @Test(arguments: [
        ("version: 1\nrules:\n  - id: x\n    when: {tokn_type: input}\n    class: pass_through\n", 4, "unknown condition"),
        ("version: 1\nrules:\n  - id: x\n    class: cheap\n", 4, "class must be"),
        ("version: 1\nrules:\n  - id: x\n    when: {token_type: [input\n    class: pass_through\n", 5, "YAML syntax"),
        ("version: 1\nrules:\n  - id: x\n    when: {min_amount: 5}\n    class: unexplained\n", 4, "quoted decimal"),
        ("version: 2\nrules: []\n", 1, "version must be 1"),
        ("version: 1\nrules:\n  - id: a\n    class: pass_through\n    class: unexplained\n", 4, "a key given twice in one mapping (class)"),
        // Named at the second rule's line, not the file's first.
        (
            "version: 1\nrules:\n  - id: x\n    class: pass_through\n  - id: y\n    class: pass_through\n  - id: x\n    class: unexplained\n", 7,
            "two rules share the id 'x'"
        ),
        // A reason becomes a dimension of the corrections: an event ingest refuses was stored by apply.
        ("version: 1\nrules:\n  - id: x\n    class: metering_gap\n    reason: \(String(repeating: "r", count: 300))\n", 5, "reason must be 1–200 characters"),
        ("version: 1\nrules:\n  - id: x\n    class: metering_gap\n    reason: \"a\\0b\"\n", 5, "reason must be 1–200 characters"),
        // Accepted, and matched nothing: findings name token types in lowercase, and no gap is
        // both at least 1,000 and at most 10 tokens.
        ("version: 1\nrules:\n  - id: x\n    when: {token_type: Output}\n    class: pass_through\n", 4, "token_type 'Output' is not a token type"),
        (
            "version: 1\nrules:\n  - id: x\n    class: pass_through\n    examples:\n      - {model: m, token_type: Cache_Read, quantity: 1, expect: pass_through}\n",
            6, "token_type 'Cache_Read'"
        ),
        ("version: 1\nrules:\n  - id: x\n    when: {min_tokens: 1000, max_tokens: 10}\n    class: pass_through\n", 3, "matches nothing"),
        ("version: 1\nrules:\n  - id: x\n    when: {min_amount: \"5\", max_amount: \"1.5\"}\n    class: pass_through\n", 3, "matches nothing"),
        ("version: 1\nrules:\n  - id: x\n    when: {min_share: \"0.5\", max_share: \"0.01\"}\n    class: pass_through\n", 3, "matches nothing"),
        ("version: 1\nrules:\n  - id: x\n    when: {max_share: 0.005}\n    class: pass_through\n", 4, "quoted decimal"),
        ("version: 1\nrules:\n  - id: x\n    when: {max_share: \"-0.1\"}\n    class: pass_through\n", 4, "max_share must be a share"),
        // Tester N: an account no id can be matched nothing, silently.
        ("version: 1\nrules:\n  - id: x\n    when: {account: \"acct 42\"}\n    class: pass_through\n", 4, "account 'acct 42' can match no account"),
        ("version: 1\nrules:\n  - id: x\n    when: {max_share: \"0.0000000000000000001\"}\n    class: pass_through\n", 4, "at most 18 digits"),
        ("version: 1\nrules:\n  - id: x\n    when: {max_share: \"0.01\", unmetered: true}\n    class: pass_through\n", 3, "matches nothing"),
        ("version: 1\nrules:\n  - id: x\n    when: {max_amount: \"\(String(repeating: "9", count: 40))\"}\n    class: pass_through\n", 4, "40 digits"),
        // Its description quoted the whole file: a binary file printed kilobytes of raw bytes.
        ("version: 1\n\u{01}\u{02}" + String(repeating: "\u{07}x", count: 2000), 1, "control characters are not allowed"),
        // From an outside tester: null read as the text "null" (a model so named matched); a
        // 10 MB name held the server a second per card alias; `[` was no glob; conditions and
        // ids that match nothing or print lines of their own were accepted.
        ("version: 1\nrules:\n  - id: x\n    when: {model: null}\n    class: pass_through\n", 4, "model is empty (null)"),
        ("version: 1\nrules:\n  - id: x\n    when: {account: [acct_1, ~]}\n    class: pass_through\n", 4, "account is empty (null)"),
        ("version: 1\nrules:\n  - id: x\n    when: {model: \(String(repeating: "a", count: 201))}\n    class: pass_through\n", 4, "must be 1–200 characters"),
        ("version: 1\nrules:\n  - id: x\n    when: {model: \"claude-[s]onnet-4-5\"}\n    class: pass_through\n", 4, "'[' is not read"),
        ("version: 1\nrules:\n  - id: x\n    when: {model: []}\n    class: pass_through\n", 4, "empty list"),
        ("version: 1\nrules:\n  - id: x\n    when: {min_amount: \"-5\"}\n    class: pass_through\n", 4, "min_amount must be 0 or more"),
        ("version: 1\nrules:\n  - id: x\n    when: {min_tokens: -5}\n    class: pass_through\n", 4, "whole number of tokens, 0 or more"),
        ("version: 1\nrules:\n  - id: x\n    when: {min_tokens: [1, 2]}\n    class: pass_through\n", 4, "whole number of tokens"),
        ("version: 1\nrules:\n  - id: \"a\\nVERDICT: conclusive\"\n    class: pass_through\n", 3, "id must be 1–200 characters"),
        ("version: 1\nrules:\n  - id: x\n    class: pass_through\n#\(String(repeating: "x", count: 1 << 20))\n", 1, "at most 1 MiB"),
        // Every run checks the examples: an example's names are bounded as the rules' are, and
        // so is the number of pattern × example checks a file asks of each run.
        (
            "version: 1\nrules:\n  - id: x\n    class: pass_through\n    examples:\n      - {model: \(String(repeating: "a", count: 201)), quantity: 1, expect: pass_through}\n",
            6, "must be 1–200 characters"
        ),
        (
            "version: 1\nrules:\n  - id: x\n    when: {model: [\((0..<400).map { "m\($0)*" }.joined(separator: ", "))]}\n    class: pass_through\n    examples:\n"
                + String(repeating: "      - {model: m, quantity: 1, expect: pass_through}\n", count: 300), 1, "checks per run"
        ),
        // An invisible character in a name: warned as matching nothing by one command, silent in
        // another, and matched gpt-4o in a run (tester T).
        ("version: 1\nrules:\n  - id: x\n    when: {model: \"gpt-4o\u{200B}\"}\n    class: pass_through\n", 4, "invisible character (U+200B)"),
        ("version: 1\nrules:\n  - id: x\n    when: {account: \"acct\u{202E}_1\"}\n    class: pass_through\n", 4, "invisible character (U+202E)"),
        // metered + quantity overflowed: `rules test` trapped, and a server reading rules_yaml died.
        (
            "version: 1\nrules:\n  - id: x\n    class: pass_through\n    examples:\n      - {model: m, quantity: 1, metered: 9223372036854775807, expect: pass_through}\n",
            6, "beyond 64 bits"
        ),
    ])
    func badRulesAreRefusedWithTheirLine(_ text: String, _ line: Int, _ message: String) {
        do {
            _ = try ClassificationRules.load(text: text, file: "rules.yaml")
            Issue.record("accepted: \(message)")
        } catch let e as ConfigError {
            #expect(e.description.contains(message), "\(e.description)")
            #expect(e.description.utf8.count < 500, "an error names the problem, not the file's text: \(e.description.utf8.count) bytes")
            #expect(abs(e.line - line) <= 1, "line \(e.line), expected about \(line): \(e.description)")
        } catch {
            Issue.record("\(error)")
        }
    }

    /// A misspelt key is named on its own line, not its value's first (`rule:` on line 2 was
    /// reported on line 3: tester T); in rules and rate cards alike.
    @Test func aMisspeltKeyIsNamedOnItsOwnLine() throws {
        for (text, line) in [
            ("version: 1\nrule:\n  - when: {token_type: input}\n    class: pass_through\n", 2),
            ("version: 1\nrules:\n  - id: x\n    clas:\n      pass_through\n", 4),
        ] {
            #expect(throws: ConfigError.self) { _ = try ClassificationRules.load(text: text, file: "r.yaml") }
            do { _ = try ClassificationRules.load(text: text, file: "r.yaml") } catch let e as ConfigError { #expect(e.line == line, "\(e.description)") }
        }
        let card = "schema: ratecard/v1\nvendor: v\ncurrency: USD\nunit: per_million_tokens\ncard_version: \"1\"\nsourcez:\n  a: {url: x}\n"
        do {
            _ = try RateCard.load(text: card, file: "c.yaml")
            Issue.record("a misspelt card field was accepted")
        } catch let e as ConfigError {
            #expect(e.line == 6 && e.description.contains("sourcez"), "\(e.description)")
        }
    }

    /// A byte-order mark, as Windows editors save a file, is read past (it failed as "did not
    /// find expected <document start>").
    @Test func aRulesFileWithAByteOrderMarkIsRead() throws {
        let rules = try ClassificationRules.load(text: "\u{FEFF}version: 1\nrules:\n  - id: x\n    class: pass_through\n", file: "bom.yaml")
        #expect(rules.rules.map(\.id) == ["x"])
    }

    /// A configuration over 4 MiB is refused before it is parsed (a 17 MB one took 25 s and 380 MB).
    @Test func aConfigurationPastFourMebibytesIsRefusedUnread() {
        let text = "schema: ratecard/v1\n#" + String(repeating: "x", count: 4 << 20) + "\n"
        #expect(throws: ConfigError.self) { _ = try RateCard.load(text: text, file: "big.yaml") }
        do { _ = try RateCard.load(text: text, file: "big.yaml") } catch { #expect("\(error)".contains("at most 4 MiB"), "\(error)") }
    }

    /// A team's copy of a default rule (the defaults are the documented starting point) keeps its
    /// id; an example's `expect_rule` naming it means the team's, not the default's of that id.
    @Test func expectRuleNamingARuleOfItsOwnFileMeansThatFilesRule() throws {
        let rules = try ClassificationRules.load(
            text:
                "version: 1\nrules:\n  - id: metered-residual\n    when: {model: gpt-*}\n    class: metering_gap\n    reason: untracked_usage\n    examples:\n"
                + "      - {model: claude-sonnet-4-5, token_type: input, account: acct_42, quantity: 5000, expect: metering_gap, expect_rule: metered-residual}\n",
            file: "team.yaml")
        let example = try #require(rules.examples.first)
        let (passed, got) = example.check(ClassifierChain(team: rules))
        #expect(!passed && got.classifier == "defaults" && got.rule == "metered-residual", "the default of that id decided: \(got)")
    }
}
