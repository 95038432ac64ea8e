public import ReconCore
import VendorAWSBedrock
import VendorAnthropic
import VendorAzureOpenAI
import VendorFOCUS
import VendorGoogleVertex
import VendorOpenAI
import VendorUBL

/// Every built-in vendor plugin, sorted by id. **A new vendor is one folder under `Plugins/` (which
/// `Package.swift` makes a target), its card in `RateCards/`, and one line here.**
public let builtInPlugins: [any VendorPlugin.Type] = [
    AnthropicPlugin.self,
    BedrockPlugin.self,
    AzureOpenAIPlugin.self,
    FOCUSPlugin.self,
    VertexPlugin.self,
    OpenAIPlugin.self,
    UBLPlugin.self,
]

extension PluginRegistry {
    /// The registry of built-in plugins; a duplicate id is a programming error caught at start.
    public static func builtIn() throws -> PluginRegistry { try PluginRegistry(builtInPlugins) }
}
