public import Foundation

/// What kind of gap a finding is.
public struct GapClass: RawRepresentable, Hashable, Sendable, CustomStringConvertible, Codable {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// Served, not recorded: correct it.
    public static let meteringGap = GapClass(rawValue: "metering_gap")
    /// Vendor overhead you absorb.
    public static let passThrough = GapClass(rawValue: "pass_through")
    /// Rate card, discount or FX: fix the card, not the meter.
    public static let pricingGap = GapClass(rawValue: "pricing_gap")
    public static let unexplained = GapClass(rawValue: "unexplained")
    public static let withinTolerance = GapClass(rawValue: "within_tolerance")
    /// The gap is exactly the usage of the first or last hours of the period: a bucketing
    /// difference at a period bound, not a metering gap (decided by the engine, not by rules).
    public static let boundary = GapClass(rawValue: "boundary")

    public static let known: [GapClass] = [.meteringGap, .passThrough, .pricingGap, .unexplained, .withinTolerance]
}

/// The shape of a reconciliation's gaps: `none` when no model × token type is beyond tolerance,
/// `uniform` when every model is off by the same factor, else `localized`.
public enum GapShape: String, Sendable, Hashable, Codable { case none, uniform, localized }

/// A gap beyond tolerance, as classifiers see it.
public struct GapFinding: Sendable, Hashable {
    public var modelID: String
    public var tokenType: TokenType?
    public var accountID: String?
    /// Vendor minus metered, tokens.
    public var quantity: Int64
    /// `quantity` priced at the vendor's realized rate.
    public var amount: Decimal
    public var metered: Int64
    public var vendor: Int64
    public var shape: GapShape
    /// The token type is billed but was never recorded by the meter for this model.
    public var unmetered: Bool

    public init(
        modelID: String, tokenType: TokenType?, accountID: String?, quantity: Int64, amount: Decimal, metered: Int64,
        vendor: Int64, shape: GapShape, unmetered: Bool
    ) {
        self.modelID = modelID
        self.tokenType = tokenType
        self.accountID = accountID
        self.quantity = quantity
        self.amount = amount
        self.metered = metered
        self.vendor = vendor
        self.shape = shape
        self.unmetered = unmetered
    }
}

/// The verdict on a finding.
public struct GapClassification: Sendable, Hashable {
    public var gapClass: GapClass
    /// The rule (or classifier) that decided.
    public var rule: String
    public var reason: String
    /// Where the deciding rule came from (`plugin:openai`, `rules:team.yaml`, `defaults`); the
    /// chain fills it in.
    public var classifier: String
    public init(gapClass: GapClass, rule: String, reason: String, classifier: String = "") {
        self.gapClass = gapClass
        self.rule = rule
        self.reason = reason
        self.classifier = classifier
    }
}

/// Decides what kind of gap a finding is; nil passes to the next classifier.
///
/// Classifiers are consulted as a chain: the vendor plugin's own (`VendorPlugin.classifiers`),
/// then a team's rules file (`--rules`), then the shipped default rules; the first answer wins and
/// the report names it. Most teams only write rules (YAML, see `ClassificationRules`); implement a
/// classifier for a decision that needs code:
///
/// ```swift
/// struct InternalEvalsClassifier: GapClassifier {
///     let name = "internal-evals"
///     func classify(_ f: GapFinding) -> GapClassification? {
///         f.accountID == "acct_internal" ? .init(gapClass: .passThrough, rule: "internal-evals", reason: "internal_evals") : nil
///     }
/// }
/// ```
public protocol GapClassifier: Sendable {
    /// Names the classifier in reports.
    var name: String { get }
    func classify(_ finding: GapFinding) -> GapClassification?
}

/// The classifiers of one run, in the order they are asked.
public struct ClassifierChain: Sendable {
    public var links: [any GapClassifier]

    public init(plugin: [any GapClassifier] = [], team: ClassificationRules? = nil, defaults: ClassificationRules = .defaults()) {
        links = plugin + (team.map { [$0] } ?? []) + [defaults]
    }

    /// The first classifier's answer, with its name; `unexplained` when none answers.
    public func classify(_ finding: GapFinding) -> GapClassification {
        for link in links {
            if var answer = link.classify(finding) {
                answer.classifier = link.name
                return answer
            }
        }
        return GapClassification(gapClass: .unexplained, rule: "none", reason: "no_rule_matched", classifier: "none")
    }

    public var names: [String] { links.map(\.name) }
}
