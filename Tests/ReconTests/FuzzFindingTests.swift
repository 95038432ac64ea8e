import Foundation
import ReconCore
import ReconPlugins
import Testing

/// Inputs on which `scripts/fuzz` once crashed a parser, kept so they never crash one again. A new
/// finding is one file dropped into `FuzzFindings/`: every parser of every plugin reads it and must
/// answer with lines or an error that names the file.
@Suite struct FuzzFindingTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("FuzzFindings")

    static var findings: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }

    @Test(arguments: findings) func everyParserAnswersAFinding(_ name: String) throws {
        let bytes = try Array(Data(contentsOf: Self.folder.appendingPathComponent(name)))
        let file = InvoiceFile(name: name, bytes: bytes)
        for plugin in builtInPlugins {
            for parser in plugin.parsers {
                do {
                    _ = try parser.parse(file)
                } catch let error as InvoiceError {
                    #expect(error.file == name)
                }
            }
        }
    }

    @Test func unixSecondsPastYear9999AreNotADate() throws {
        let parser = try #require(builtInPlugins.first { $0.id == "openai" }?.parsers.first { $0.format == .csv })
        let csv =
            "start_time,end_time,amount_value,amount_currency,line_item,project_id\n"
            + "99999999999999999,1778112000,2.00,usd,\"gpt-4.1-2025-04-14, input\",proj_abc\n"
        #expect { try parser.parse(InvoiceFile(name: "costs.csv", bytes: Array(csv.utf8))) } throws: { error in
            let e = try #require(error as? InvoiceError)
            return e.line == 2 && e.field?.hasPrefix("start_time") == true && e.description.contains("not a date")
        }
        let json =
            #"{"object": "page", "data": [{"object": "bucket", "start_time": 99999999999999999, "end_time": 1778112000, "results": [{"object": "organization.costs.result", "amount": {"value": 1, "currency": "usd"}, "line_item": "gpt-4o, input"}]}], "has_more": false}"#
        let jsonParser = try #require(
            builtInPlugins.first { $0.id == "openai" }?.parsers.first { $0.format == .json && $0.sniff(InvoiceFile(name: "c.json", bytes: Array(json.utf8))) })
        #expect { try jsonParser.parse(InvoiceFile(name: "costs.json", bytes: Array(json.utf8))) } throws: { error in
            (error as? InvoiceError)?.field == "data[0].start_time"
        }
    }

    /// A 60-digit amount is a decimal too long to keep exactly, and says so; a huge cell is not
    /// echoed whole into the error.
    @Test func anAmountTooLongToKeepExactlySaysSo() throws {
        let parser = try #require(builtInPlugins.first { $0.id == "openai" }?.parsers.first { $0.format == .csv })
        func error(_ amount: String) throws -> InvoiceError {
            let csv =
                "start_time,end_time,amount_value,amount_currency,line_item,project_id\n"
                + "1777593600,1777680000,\(amount),usd,\"gpt-4.1-2025-04-14, input\",proj_abc\n"
            do {
                _ = try parser.parse(InvoiceFile(name: "costs.csv", bytes: Array(csv.utf8)))
            } catch let e as InvoiceError { return e }
            throw CancellationError()
        }
        let long = try error("1." + String(repeating: "5", count: 59))
        #expect(long.line == 2 && long.field == "amount_value" && long.description.contains("has 60 digits"), "\(long)")
        let huge = try error(String(repeating: "x", count: 100_000))
        #expect(huge.description.contains("is not a decimal") && huge.description.utf8.count < 400, "\(huge.description.prefix(500))")
        // An exponent is read exactly (as in CUR and FOCUS files); one of many digits is refused,
        // never trapped on.
        let csv =
            "start_time,end_time,amount_value,amount_currency,line_item,project_id\n"
            + "1777593600,1777680000,2.5E+00,usd,\"gpt-4.1-2025-04-14, input\",proj_abc\n"
        let line = try #require(try parser.parse(InvoiceFile(name: "costs.csv", bytes: Array(csv.utf8))).lines.first)
        #expect(line.amount == Decimal(string: "2.5") && line.amountScale == 1, "\(line)")
        #expect(try error("1e-9223372036854775808").field == "amount_value")
    }
}
