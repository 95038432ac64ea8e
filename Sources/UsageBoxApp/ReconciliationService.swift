public import ExactJSON
import Foundation
public import Metering
import RateCardData
public import ReconCore
import ReconPlugins
import UsageBoxServer

/// Reconciliation as the CLI and the server run it: the built-in plugins and cards, the engine,
/// the record of every run, and applying corrections through ingest.
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

    /// Runs, optionally applies, and records a reconciliation.
    public func run(_ options: ReconciliationOptions, store: any MeterStore, log: (any ReconciliationLog)?, apply: Bool)
        async throws -> (report: ReconciliationReport, applied: IngestResponse?) {
        var report = try await engine.run(options, store: store)
        var answer: IngestResponse?
        if apply {
            let response = try await store.ingest(report.corrections.map(IngestItem.event))
            answer = response
            report.applied = response.rejected == 0 && response.conflicts == 0
        }
        try await log?.saveReconciliation(id: report.id, vendor: report.vendor, createdAt: report.createdAt, runBy: report.runBy,
                                          reportJSON: JSONWriter.write(report.jsonValue))
        return (report, answer)
    }

    /// Posts a stored report's corrections through ingest; applying twice answers duplicates.
    public func apply(id: String, store: any MeterStore, log: any ReconciliationLog) async throws -> IngestResponse {
        guard let text = try await log.reconciliation(id: id) else { throw UsageBoxError(.notFound, "no reconciliation \(id)", field: "id") }
        let report = try JSONParser.parse(text)
        let decoder = EventDecoder()
        let items = (report["corrections"]?.arrayValue ?? []).map(decoder.decode)
        let response = try await store.ingest(items)
        if response.rejected == 0, response.conflicts == 0, case let .object(members) = report {
            let updated = JSONValue.object(members.map { $0.0 == "applied" ? ("applied", .bool(true)) : $0 })
            try await log.markReconciliationApplied(id: id, reportJSON: JSONWriter.write(updated), appliedAt: Timestamp.now())
        }
        return response
    }

    /// `--fx EUR=1.0842` values.
    public static func parseFX(_ values: [String]) throws -> [String: Decimal] {
        var out: [String: Decimal] = [:]
        for v in values {
            let parts = v.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0].count == 3, let rate = ExactDecimal.parse(parts[1]), rate > 0 else {
                throw UsageBoxError.invalidArgument("--fx takes CUR=RATE with an exact decimal rate, e.g. EUR=1.0842; got '\(v)'", field: "fx")
            }
            out[parts[0].uppercased()] = rate
        }
        return out
    }

    public func vendorsJSON() -> JSONValue {
        .object([("vendors", .array(registry.plugins.map { p in
            .object([
                ("id", .string(p.id)), ("name", .string(p.name)),
                ("formats", .array(Array(Set(p.parsers.map(\.format.rawValue))).sorted().map(JSONValue.string))),
                ("parsers", .array(p.parsers.map { .string($0.id) })),
                ("rate_card_version", .optionalString(cards[p.rateCardName]?.version)),
            ])
        }))])
    }
}

extension ReconciliationService: ReconciliationBackend {}
