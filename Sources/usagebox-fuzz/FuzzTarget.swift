import ExactJSON
import FormatReaders
import Foundation
import Metering
import ReconCore
import ReconPlugins

/// What one fuzz target does with one input. Every reader must answer any bytes with a value or a
/// thrown error: a crash, a hang or a broken round trip is a finding. Where a reader has a writer,
/// what it read must survive writing and reading again.
enum FuzzTarget {
    case csv, xml, json, eventJSON, eventCSV, usageQuery, reconciliationRequest, rateCard, rules
    case plugin(any VendorPlugin.Type)

    /// Every target by name: the readers, the wire decoders, the YAML loaders and one per plugin.
    static var all: [(String, FuzzTarget)] {
        [
            ("csv", .csv), ("xml", .xml), ("json", .json), ("event-json", .eventJSON), ("event-csv", .eventCSV),
            ("usage-query", .usageQuery), ("reconciliation-request", .reconciliationRequest),
            ("rate-card", .rateCard), ("rules", .rules),
        ]
            + builtInPlugins.map { ("plugin-\($0.id)", .plugin($0)) }
    }

    static func named(_ name: String) -> FuzzTarget? { all.first { $0.0 == name }?.1 }

    func run(_ bytes: [UInt8]) {
        switch self {
        case .csv: Self.csvRoundTrip(bytes)
        case .xml: _ = try? XMLStreamReader.read(bytes: bytes) { _ in }
        case .json: Self.jsonRoundTrip(bytes)
        case .eventJSON:
            guard let value = try? JSONParser.parse(bytes: bytes) else { return }
            let decoder = EventDecoder(now: { Timestamp(microseconds: 1_800_000_000_000_000) })
            if case let .object(members) = value, let events = members.first(where: { $0.0 == "events" })?.1, case let .array(items) = events {
                for item in items { _ = decoder.decode(item) }
            } else {
                _ = decoder.decode(value)
            }
        case .eventCSV:
            guard let records = try? CSVReader.parse(String(decoding: bytes, as: UTF8.self)), let header = records.first else { return }
            let decoder = EventDecoder(now: { Timestamp(microseconds: 1_800_000_000_000_000) })
            for record in records.dropFirst() { _ = decoder.decode(row: Array(zip(header.fields, record.fields))) }
        case .usageQuery:
            guard let value = try? JSONParser.parse(bytes: bytes) else { return }
            _ = try? UsageQuery.fromJSON(value, scope: .all)
        case .reconciliationRequest:
            if let request = try? ReconciliationRequest.decode(json: bytes) {
                _ = try? request.resolve(scope: .all, runBy: "fuzz")
            }
        case .rateCard: _ = try? RateCard.load(text: String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml")
        case .rules: _ = try? ClassificationRules.load(text: String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml")
        case .plugin(let plugin):
            // Every parser, sniffed or not: `--parser` lets a user force one onto any file.
            let file = InvoiceFile(name: "fuzz-input", bytes: bytes)
            for parser in plugin.parsers {
                _ = parser.sniff(file)
                do {
                    _ = try parser.parse(file)
                } catch let error as InvoiceError {
                    precondition(error.file == "fuzz-input", "an invoice error must name its file: \(error)")
                } catch {
                    // Other errors are allowed but must describe themselves.
                    precondition(!String(describing: error).isEmpty)
                }
            }
        }
    }

    /// Records read, written back fully quoted and read again, are the same records.
    static func csvRoundTrip(_ bytes: [UInt8]) {
        guard let records = try? CSVReader.parse(String(decoding: bytes, as: UTF8.self)) else { return }
        let kept = records.map(\.fields).filter { $0 != [""] && !$0.isEmpty }
        let text = kept.map { $0.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: ",") + "\n" }.joined()
        guard let again = try? CSVReader.parse(text) else { preconditionFailure("written CSV does not read back: \(text.debugDescription)") }
        precondition(again.map(\.fields) == kept, "CSV round trip changed records: \(kept) → \(again.map(\.fields))")
    }

    /// A value read, written and read again is the same value (numbers kept as their exact text).
    static func jsonRoundTrip(_ bytes: [UInt8]) {
        guard let value = try? JSONParser.parse(bytes: bytes) else { return }
        let text = JSONWriter.write(value)
        guard let again = try? JSONParser.parse(text) else { preconditionFailure("written JSON does not read back: \(text.debugDescription)") }
        precondition(again == value, "JSON round trip changed the value: \(text)")
        // Streamed in 7-byte pieces, an export's `data` array and other members come out the same.
        guard case let .object(members) = value, case let .array(data)? = value["data"] else { return }
        var streamed: [JSONValue] = []
        guard let rest = try? JSONStream.forEachElement(bytes: bytes, of: "data", chunkSize: 7, { streamed.append($0) }) else {
            preconditionFailure("a document the parser reads does not stream")
        }
        precondition(streamed == data, "streamed elements differ from the parsed array")
        precondition(rest == .object(members.map { $0.0 == "data" ? ($0.0, .array([])) : $0 }), "streamed members differ")
    }
}
