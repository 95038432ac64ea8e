/// The rate cards in this folder, compiled into the binary.
public enum RateCardData {
    /// Card text by vendor id.
    public static let cards: [String: String] = [
        "anthropic": String(decoding: PackageResources.anthropic_yaml, as: UTF8.self),
        "focus": String(decoding: PackageResources.focus_yaml, as: UTF8.self),
        "ubl": String(decoding: PackageResources.ubl_yaml, as: UTF8.self),
        "openai": String(decoding: PackageResources.openai_yaml, as: UTF8.self),
        "aws-bedrock": String(decoding: PackageResources.aws_bedrock_yaml, as: UTF8.self),
        "azure-openai": String(decoding: PackageResources.azure_openai_yaml, as: UTF8.self),
        "google-vertex": String(decoding: PackageResources.google_vertex_yaml, as: UTF8.self),
    ]
}
