public import ExactJSON
import Foundation
public import Metering
import RateCardData
public import ReconCore
import ReconPlugins
import UsageBoxServer

/// Reconciliation as the CLI and the server run it: the built-in plugins and cards, the engine,
/// the record of every run, and posting (and undoing) its corrections through ingest.
public struct ReconciliationService: Sendable {
    public let registry: PluginRegistry
    public let cards: [String: RateCard]
    public let engine: ReconciliationEngine

    public init() throws {
        registry = try PluginRegistry.builtIn()
        var cards: [String: RateCard] = [:]
        for (name, text) in RateCardData.cards { cards[name] = try RateCard.load(text: text, file: "RateCards/\(name).yaml") }
        self.cards = cards
        engine = ReconciliationEngine(registry: registry, cards: cards)
    }

    public var runner: ReconciliationRunner { ReconciliationRunner(engine: engine) }

    public func run(
        _ options: ReconciliationOptions, store: any MeterStore, log: (any ReconciliationLog)?, record: Bool = true, apply: Bool = false,
        confirmLarge: Bool = false
    ) async throws -> (report: ReconciliationReport, outcome: ReconciliationRunner.ApplyOutcome) {
        try await runner.run(options, store: store, log: log, record: record, apply: apply, confirmLarge: confirmLarge)
    }

    public func apply(id: String, confirmLarge: Bool, store: any MeterStore, log: any ReconciliationLog) async throws -> ApplyAnswer {
        try await runner.apply(id: id, confirmLarge: confirmLarge, store: store, log: log)
    }

    public func revert(id: String, store: any MeterStore, log: any ReconciliationLog) async throws -> IngestResponse {
        try await runner.revert(id: id, store: store, log: log)
    }

    public var vendors: VendorList { VendorList(registry: registry, cards: cards) }
}

extension ReconciliationService: ReconciliationBackend {}
