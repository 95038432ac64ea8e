public import Metering

/// `GET /v1/vendors` and `usagebox vendors --json`: the registered plugins.
public struct VendorList: WireShape {
    public var vendors: [Vendor]

    public struct Vendor: Codable, Sendable {
        public var id: String
        public var name: String
        public var formats: [String]
        public var parsers: [String]
        public var rateCardVersion: String?
        enum CodingKeys: String, CodingKey { case id, name, formats, parsers, rateCardVersion = "rate_card_version" }
    }

    public init(registry: PluginRegistry, cards: [String: RateCard]) {
        vendors = registry.plugins.map { p in
            Vendor(
                id: p.id, name: p.name, formats: Array(Set(p.parsers.map(\.format.rawValue))).sorted(), parsers: p.parsers.map(\.id),
                rateCardVersion: cards[p.rateCardName]?.version)
        }
    }
}

/// `usagebox ratecards --json`: the compiled-in cards and their versions.
public struct RateCardList: WireShape {
    public var cards: [Card]

    public struct Card: Codable, Sendable {
        public var vendor: String
        public var version: String
        public var currency: String
        public var models: [String]
    }

    public init(cards: [RateCard]) {
        self.cards = cards.sorted { $0.vendor < $1.vendor }.map { Card(vendor: $0.vendor, version: $0.version, currency: $0.currency, models: $0.models) }
    }
}
