import Foundation

/// The rate cards in this folder, compiled into the binary by the `EmbedRateCards` build plugin:
/// every `*.yaml` here is a card, named by its file name.
public enum RateCardData {
    /// Card text by name (`anthropic` for `anthropic.yaml`).
    public static let cards: [String: String] = GeneratedRateCards.base64.mapValues {
        String(decoding: Data(base64Encoded: $0) ?? Data(), as: UTF8.self)
    }
}
