import ExactJSON
import FormatReaders
import Foundation
import Testing

/// One reader check on a `NAME.csv` beside the rows it must give (`NAME.json`, an array of objects
/// keyed by the header; compared as objects, not key order). The same check runs the project's own
/// fixtures and, under `scripts/conformance`, csv-spectrum.
enum CSVCase {
    static func names(in dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { $0.hasSuffix(".csv") }.map { String($0.dropLast(4)) }.sorted()
    }

    /// Reads the file in 7-byte feeds (fields and CRLF pairs split across feeds) and compares.
    static func check(_ name: String, in dir: URL, adjust: (String, inout [[String: String]], [[String: String]]) -> Void = { _, _, _ in }) throws {
        let expected = try JSONParser.parse(bytes: Array(try Data(contentsOf: dir.appendingPathComponent(name + ".json"))))
        var bytes = Array(try Data(contentsOf: dir.appendingPathComponent(name + ".csv")))
        if name.hasSuffix("_crlf"), !bytes.contains(0x0D) {
            // A checkout that normalized line endings lost the CRs: restore the CRLF file the expected
            // "\r\n" inside quoted fields was written for.
            bytes = bytes.flatMap { $0 == 0x0A ? [0x0D, 0x0A] : [$0] }
        }
        var records: [CSVRecord] = []
        let reader = try CSVReader()
        var start = 0
        while start < bytes.count {
            let end = min(start + 7, bytes.count)
            try bytes[start..<end].withUnsafeBytes { try reader.feed($0) { records.append($0) } }
            start = end
        }
        try reader.finish { records.append($0) }
        guard let header = records.first else {
            #expect(expected == .array([]), "\(name): an empty file gives no rows")
            return
        }
        let rows: [JSONValue] = records.dropFirst().map { r in .object(zip(header.fields, r.fields).map { ($0, .string($1)) }) }
        func normalized(_ v: JSONValue) -> [[String: String]] {
            let list = v.arrayValue ?? (v.objectValue != nil ? [v] : [])
            return list.map { row in Dictionary(uniqueKeysWithValues: (row.objectValue ?? []).map { ($0.0, $0.1.stringValue ?? "") }) }
        }
        let got = normalized(.array(rows))
        var want = normalized(expected)
        adjust(name, &want, got)
        #expect(got == want, "\(name)")
    }
}

/// A UBL document streamed by namespace URI: line amounts found, elements balanced.
enum UBLCase {
    static func check(_ url: URL) throws {
        var lineAmounts = 0
        var depth = 0, maxDepth = 0
        try XMLStreamReader.read(path: url.path) { event in
            switch event {
            case let .start(ns, local, attributes, _):
                depth += 1
                maxDepth = max(maxDepth, depth)
                if ns == "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2", local == "LineExtensionAmount",
                    attributes.contains(where: { $0.localName == "currencyID" })
                {
                    lineAmounts += 1
                }
            case .end: depth -= 1
            case .text: break
            }
        }
        #expect(lineAmounts >= 2, "\(url.lastPathComponent): line and document LineExtensionAmount found by namespace URI")
        #expect(depth == 0 && maxDepth > 2, "\(url.lastPathComponent): balanced")
    }
}
