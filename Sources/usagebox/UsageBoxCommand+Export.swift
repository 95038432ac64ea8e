import ArgumentParser
import Foundation
import Metering
import ReconCore
import UsageBoxApp

extension UsageBoxCommand {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export the meter in a format other tools import.", subcommands: [FOCUS.self], defaultSubcommand: FOCUS.self)

        struct FOCUS: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "focus",
                abstract: "The meter as a FinOps FOCUS 1.2 cost and usage CSV: a row per day × account × model × token type, priced by the rate cards.",
                discussion: """
                    Tokens in ConsumedQuantity; ListCost, ContractedCost, EffectiveCost and BilledCost from the card in force that day; corrections
                    as ChargeClass=Correction rows keeping their charge period; x_TokenType keeps what FOCUS cannot say (cache-write lifetimes).
                    Every FOCUS 1.0 column is present too (the 1.0 names of renamed columns beside the 1.2 ones).
                    """)
            @OptionGroup var store: StoreOptions
            @Option(help: "Start, a date (00:00 UTC) or RFC 3339 in UTC.") var from: String
            @Option(help: "End (exclusive).") var to: String
            @Option(help: "One account (default: every account the store or key may see).") var account: String?
            @Option(help: "The BillingAccountId to write (the reseller's own billing account).") var billingAccount = "usagebox"
            @Option(help: "Write here instead of standard output.") var output: String?

            func run() async throws {
                let range = try TimeRange(from: Self.time(from, "from"), to: Self.time(to, "to"))
                let db = try await store.open()
                let service = try ReconciliationService()
                var handle = FileHandle.standardOutput
                // Opened as the shell's `>` opens it (a symlink's target written, a device or FIFO
                // written to): `createFile` replaced whatever was at the path with a new file, and
                // a failed export then removed it (`--output /dev/null` as root: tester O2).
                if let output {
                    let fd = open(output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                    guard fd >= 0 else {
                        throw UsageBoxError.invalidArgument("\(output): cannot write the file (\(String(cString: strerror(errno))))", field: "output")
                    }
                    handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
                }
                var buffer = ""
                let summary: FOCUSExport.Summary
                do {
                    summary = try await FOCUSExport.write(store: db, service: service, range: range, account: account, billingAccount: billingAccount) {
                        buffer += $0
                        if buffer.utf8.count > 1 << 20 {
                            handle.write(Data(buffer.utf8))
                            buffer = ""
                        }
                    }
                } catch {
                    // A file cut short reads as a complete export to whatever imports it.
                    // A regular file only (not a symlink's target, a device or a FIFO).
                    if let output, (try? FileManager.default.attributesOfItem(atPath: output)[.type]) as? FileAttributeType == .typeRegular {
                        try? FileManager.default.removeItem(atPath: output)
                    }
                    throw error
                }
                handle.write(Data(buffer.utf8))
                let billed = summary.billed.sorted { $0.key < $1.key }.map { "\($0.key) \(ExactDecimal.format($0.value))" }.joined(separator: ", ")
                printErr(
                    "exported \(summary.rows) row(s), billed \(billed.isEmpty ? "0" : billed)"
                        + (summary.unpriced > 0 ? "; \(summary.unpriced) row(s) had no rate (BilledCost 0.0)" : "")
                        + (summary.leftOut.isEmpty ? "" : "; left out, in units other than tokens: " + summary.leftOut.joined(separator: ", ")))
            }

            static func time(_ text: String, _ field: String) throws -> Timestamp {
                if let t = Timestamp(rfc3339: text) ?? Timestamp(rfc3339: text + "T00:00:00Z") { return t }
                throw UsageBoxError.invalidArgument("\(field) is a date (2026-05-01) or an RFC 3339 time, got '\(text)'", field: field)
            }
        }
    }
}
