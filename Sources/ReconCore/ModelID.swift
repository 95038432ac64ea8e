import Foundation

/// Model ids as vendors and collectors write them, reduced to the id a card's aliases match:
/// Bedrock ARNs (`arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-…`), inference
/// profile prefixes (`us.`, `eu.`, `apac.`, `global.`), provider prefixes (`anthropic.`) and
/// version suffixes (`-v1:0`); Vertex resource names (`publishers/anthropic/models/claude-…@20250929`)
/// and AI Studio's `models/gemini-…`. Dated snapshots are left to the card's aliases.
///
/// Bedrock model ids: https://docs.aws.amazon.com/bedrock/latest/userguide/models-supported.html ;
/// inference profiles: https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html ;
/// Vertex publisher models: https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/use-claude
public enum ModelID {
    static let geoPrefixes = ["us-gov.", "global.", "apac.", "us.", "eu.", "jp.", "au.", "ca."]
    static let providers = ["anthropic.", "amazon.", "meta.", "mistral.", "cohere.", "ai21.", "deepseek.", "openai.", "google.", "qwen.", "writer."]

    public static func normalize(_ raw: String) -> String {
        var id = raw.trimmingCharacters(in: .whitespaces)
        if id.hasPrefix("arn:"), let slash = id.lastIndex(of: "/") { id = String(id[id.index(after: slash)...]) }
        if let r = id.range(of: "/models/") { id = String(id[r.upperBound...]) }
        if id.hasPrefix("models/") { id = String(id.dropFirst(7)) }
        if let at = id.firstIndex(of: "@") { id = String(id[..<at]) }
        for p in geoPrefixes where id.hasPrefix(p) { id = String(id.dropFirst(p.count)); break }
        for p in providers where id.hasPrefix(p) { id = String(id.dropFirst(p.count)); break }
        if let r = id.range(of: #"-v[0-9]+(:[0-9]+)?$"#, options: .regularExpression) { id.removeSubrange(r) }
        return id
    }

    /// The one of `models` a raw id may well be, loosely: case, `.`, `_`, `/` and spaces as `-`, a
    /// provider prefix (`openai/`), a `-latest` or dated suffix on either side (`gpt_4o_mini` is
    /// `gpt-4o-mini-2024-07-18`), a missing prefix (`sonnet-4-5`). Only for checks that hold
    /// when unsure (who else meters an invoice's models), never to place usage: another account's
    /// `claude-sonnet-4.5` or `gpt_4o_mini` billed on the invoice passed the scope check as an
    /// unknown model.
    public static func mayBe(_ raw: String, oneOf models: [String]) -> String? { LooseModels(models).match(raw) }

    /// `mayBe` against one list many times: each model's loose form (a regex per model) is
    /// worked out once, not once per metered id.
    public struct LooseModels: Sendable {
        /// Each model, its loose form, and that without a date.
        let forms: [(model: String, loose: String, undated: String)]
        public init(_ models: [String]) {
            forms = models.map { m in
                let l = ModelID.loose(m)
                return (m, l, ModelID.undated(l))
            }
        }

        public func match(_ raw: String) -> String? {
            let id = ModelID.loose(raw)
            if let exact = forms.first(where: { $0.loose == id || $0.model.lowercased() == raw.lowercased() }) { return exact.model }
            let base = ModelID.undated(id)
            guard base.split(separator: "-").count >= 2, base.contains(where: \.isLetter) else { return nil }
            // The same model but for a date (`claude-sonnet-4-5` is no `claude-sonnet-4` snapshot:
            // a date is digits only), else a missing prefix; the longest name wins.
            let candidates = forms.filter { $0.undated == base || $0.undated.hasSuffix("-" + base) }
            return candidates.max { $0.loose.count < $1.loose.count }?.model
        }
    }

    /// Lower case, separators as `-`, without a provider prefix or a `-latest` suffix.
    static func loose(_ s: String) -> String {
        var id = String(normalize(s).lowercased().map { ".,_ /:".contains($0) ? "-" : $0 })
        for p in providers.map({ $0.dropLast() + "-" }) where id.hasPrefix(p) {
            id = String(id.dropFirst(p.count))
            break
        }
        if id.hasSuffix("-latest") { id = String(id.dropLast(7)) }
        return id
    }

    /// Without a trailing date: `-2024-07-18`, `-20240718`, `-0806`.
    static func undated(_ id: String) -> String {
        guard let r = id.range(of: #"-([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8}|[0-9]{4})$"#, options: .regularExpression) else { return id }
        return String(id[..<r.lowerBound])
    }
}
