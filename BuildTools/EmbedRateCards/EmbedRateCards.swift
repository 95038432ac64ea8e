import Foundation
import PackagePlugin

/// Compiles every `*.yaml` in the target's folder (RateCards/) into the target, so a new card is
/// one file: no list of cards is kept by hand anywhere.
@main
struct EmbedRateCards: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let folder = target.directoryURL
        let cards = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "yaml" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("RateCardTexts.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(cards.count) rate cards", executable: try context.tool(named: "embed-rate-cards").url,
                arguments: [output.path] + cards.map(\.path), inputFiles: cards, outputFiles: [output])
        ]
    }
}
