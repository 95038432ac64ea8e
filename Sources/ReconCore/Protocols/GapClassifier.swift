public import Foundation

/// What kind of gap a finding is (CONTRACT §5 step 7).
public struct GapClass: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
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

    public static let known: [GapClass] = [.meteringGap, .passThrough, .pricingGap, .unexplained, .withinTolerance]
}

/// The shape of a reconciliation's gaps (CONTRACT §5 step 6).
public enum GapShape: String, Sendable, Hashable { case none, uniform, localized }

/// A gap beyond tolerance, as classifiers see it.
public struct GapFinding: Sendable, Hashable {
    public var modelID: String
    public var tokenType: TokenType?
    public var accountID: String?
    /// Vendor minus metered, tokens.
    public var quantity: Int64
    /// `quantity` priced at the card rate.
    public var amount: Decimal
    public var metered: Int64
    public var vendor: Int64
    public var shape: GapShape
    /// The token type is billed but was never recorded by the meter for this model.
    public var unmetered: Bool

    public init(modelID: String, tokenType: TokenType?, accountID: String?, quantity: Int64, amount: Decimal, metered: Int64,
                vendor: Int64, shape: GapShape, unmetered: Bool) {
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
    public init(gapClass: GapClass, rule: String, reason: String) {
        self.gapClass = gapClass
        self.rule = rule
        self.reason = reason
    }
}

/// Decides what kind of gap a finding is; nil passes to the next classifier.
///
/// Use the default, `ClassificationRules` (a YAML file, first match wins). Implement a custom
/// classifier for rules that need code, and put it before the rules:
///
/// ```swift
/// struct InternalEvalsClassifier: GapClassifier {
///     func classify(_ f: GapFinding) -> GapClassification? {
///         f.accountID == "acct_internal" ? .init(gapClass: .passThrough, rule: "internal-evals", reason: "internal_evals") : nil
///     }
/// }
/// ```
public protocol GapClassifier: Sendable {
    func classify(_ finding: GapFinding) -> GapClassification?
}
