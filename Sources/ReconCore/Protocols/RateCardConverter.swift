public import Foundation
public import Metering

/// A price in force for one line: per token, with the card version and row that set it.
public struct ResolvedPrice: Sendable, Hashable {
    /// Currency units per single token (the card's per-million rate / 1,000,000, times modifiers).
    public var perToken: Decimal
    public var perMillion: Decimal
    public var currency: String
    public var cardVersion: String
    public init(perToken: Decimal, perMillion: Decimal, currency: String, cardVersion: String) {
        self.perToken = perToken
        self.perMillion = perMillion
        self.currency = currency
        self.cardVersion = cardVersion
    }
}

/// Why a line has no price.
public enum PriceFailure: Error, Sendable, Hashable {
    case unknownModel(String)
    case noRate(model: String, tokenType: TokenType, date: Timestamp)
    /// A label value (`service_tier=priority`) that is neither the base price nor a tier or modifier the card prices.
    case noRateForTier(model: String, tokenType: TokenType, label: String)
}

/// Turns amounts into tokens and back.
///
/// Use the default, `RateCard` (a versioned, effective-dated file in `RateCards/`). Implement a
/// custom converter for contract pricing that a card cannot express.
///
/// ```swift
/// let card = try RateCard.load(text: RateCardData.cards["anthropic"]!, file: "anthropic.yaml")
/// let price = try card.price(model: "claude-sonnet-4-5", tokenType: .input, date: day, labels: [:])
/// card.tokens(for: Decimal(string: "1.56")!, at: price)          // 520000 at $3 per million
/// ```
public protocol RateCardConverter: Sendable {
    var vendor: String { get }
    var version: String { get }
    var currency: String { get }
    /// The canonical model id for a vendor model string (dated snapshots, display names), if known.
    func canonicalModel(_ vendorModel: String) -> String?
    /// Every canonical model the card prices.
    var models: [String] { get }
    /// The token type an alias names, for invoices whose line items say model and token type in
    /// one string (UBL item names).
    func aliasTokenType(_ vendorString: String) -> TokenType?
    /// The price of one token of `tokenType` on `model` at `date`, given the line's tier and
    /// modifier labels (`context_window`, `service_tier`, `inference_geo`).
    func price(model: String, tokenType: TokenType, date: Timestamp, labels: [String: String]) throws -> ResolvedPrice
    /// What identifies this card's content in a reconciliation record (the card file's SHA-256).
    var fingerprint: String { get }
    /// Whether a label value means the base price on a model (or the card does not price by it).
    func isBaseLabel(_ key: String, _ value: String, model: String) -> Bool
    /// The instants at which a model's prices may change (its dated rows' bounds), in order; a
    /// converter without dated prices has none.
    func priceChanges(model: String) -> [Timestamp]
}

extension RateCardConverter {
    public func aliasTokenType(_ vendorString: String) -> TokenType? { nil }
    public var fingerprint: String { "" }
    public func isBaseLabel(_ key: String, _ value: String, model: String) -> Bool { true }
    public func priceChanges(model: String) -> [Timestamp] { [] }

    /// Whether the card prices `tokenType` on `model` at `date` at its base rate.
    public func prices(model: String, tokenType: TokenType, date: Timestamp) -> Bool {
        (try? price(model: model, tokenType: tokenType, date: date, labels: [:])) != nil
    }

    /// Exact tokens for an amount: `amount / price per token`.
    public func tokens(for amount: Decimal, at price: ResolvedPrice) -> Decimal { amount / price.perToken }

    /// The rounding tolerance of an amount written with `scale` decimals, in tokens.
    public func tolerance(scale: Int, at price: ResolvedPrice) -> Decimal {
        ExactDecimal.halfUnit(ofScale: scale) / price.perToken
    }

    /// The money for a token count.
    public func amount(for tokens: Int64, at price: ResolvedPrice) -> Decimal { Decimal(exactly: tokens) * price.perToken }
}
