import ArgumentParser
import ExactJSON
import Foundation
import Metering
import MeterStoreSQLite
import ReconCore
import UsageBoxApp

extension UsageBoxCommand {
    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reconcile a vendor invoice against the meter (CONTRACT §5).",
            discussion: """
                Verifies the meter first (exit 3 on drift unless --allow-drift), parses the invoice with the vendor's plugin,
                converts dollars to tokens with the rate card, diffs per model, token type and account, classifies every gap,
                proposes corrections for attributable metering gaps, and records the run. --apply posts the corrections.
                """)

        @Option(help: "The vendor plugin id (see `usagebox vendors`), or 'auto' to pick by sniffing the file.") var vendor: String
        @Option(name: .customLong("invoice"), help: "An invoice file (repeat for several).") var invoices: [String]
        @OptionGroup var period: PeriodOptions
        @Option(help: "The account the whole invoice belongs to.") var account: String?
        @Option(name: .customLong("rate-card"), help: "A rate card file overriding the vendor's card.") var rateCard: String?
        @Option(help: "A classification rules file replacing the default rules.") var rules: String?
        @Option(name: .customLong("account-map"), help: "A YAML/JSON file mapping vendor workspace/project/key ids to accounts.") var accountMap: String?
        @Option(help: "CUR=RATE: units of the card's currency per unit of CUR (repeat).") var fx: [String] = []
        @Option(name: .customLong("meter-id"), help: "Only this meter; required when an account meters a model on several.") var meterID: String?
        @Option(help: "table, json or markdown.") var format = "table"
        @Flag(help: "Post the proposed corrections.") var apply = false
        @Flag(name: .customLong("allow-drift"), help: "Go on when verify finds drift.") var allowDrift = false
        @Flag(name: .customLong("deep-verify"), help: "Verify deep instead of incremental.") var deepVerify = false
        @Flag(name: .customLong("allow-overlap"), help: "Accept invoice files that bill the same bucket twice.") var allowOverlap = false
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard ["table", "json", "markdown"].contains(format) else { throw ValidationError("--format is table, json or markdown") }
            guard !invoices.isEmpty else { throw ValidationError("name at least one --invoice") }
        }

        static func read(_ path: String, what: String) throws -> String {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw UsageBoxError.invalidArgument("\(path): cannot read the \(what)", field: what)
            }
            return String(decoding: data, as: UTF8.self)
        }

        static func loadConfig<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as ConfigError { throw UsageBoxError.invalidArgument(e.description, field: "config") }
        }

        func run() async throws {
            let service = try ReconciliationService()
            var files: [InvoiceFile] = []
            for path in invoices {
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw UsageBoxError.invalidArgument("\(path): cannot read the invoice file", field: "invoice")
                }
                files.append(InvoiceFile(name: (path as NSString).lastPathComponent, bytes: Array(data)))
            }
            var vendorID = vendor
            if vendor == "auto" {
                guard let (plugin, parser) = service.registry.sniff(files[0]) else {
                    throw UsageBoxError.invalidArgument("\(invoices[0]): no plugin recognizes this file; name --vendor", field: "vendor")
                }
                vendorID = plugin.id
                printErr("--vendor auto: \(plugin.id) (\(parser.id)) reads \(files[0].name)")
            }
            var options = ReconciliationOptions(vendor: vendorID, invoices: files, range: try period.range(), account: account)
            if let rateCard { options.rateCard = try Self.loadConfig { try RateCard.load(text: try Self.read(rateCard, what: "rate_card"), file: rateCard) } }
            if let rules { options.rules = try Self.loadConfig { try ClassificationRules.load(text: try Self.read(rules, what: "rules"), file: rules) } }
            if let accountMap { options.accountMap = try Self.loadConfig { try AccountMap.load(text: try Self.read(accountMap, what: "account_map"), file: accountMap) } }
            options.fx = try ReconciliationService.parseFX(fx)
            options.meterID = meterID
            options.deepVerify = deepVerify
            options.allowDrift = allowDrift
            options.allowOverlap = allowOverlap
            let db = try store.open()
            let report: ReconciliationReport
            let applied: IngestResponse?
            do {
                (report, applied) = try await service.run(options, store: db, log: db as? any ReconciliationLog, apply: apply)
            } catch let drift as VerifyDrift {
                printErr("usagebox: reconcile stopped: \(drift)")
                throw ExitWith(code: 3)
            }
            switch format {
            case "json": printOut(JSONWriter.write(report.jsonValue))
            case "markdown": printOut(Rendering.reconciliationMarkdown(report))
            default:
                printOut(Rendering.reconciliation(report))
                if let applied { printOut("\napplied: " + Rendering.ingest(applied)) }
            }
        }
    }

    struct Vendors: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The vendor plugins: ids, formats, parsers and rate-card versions (GET /v1/vendors).",
            subcommands: [List.self, Scaffold.self], defaultSubcommand: List.self)

        struct Scaffold: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Write a new vendor plugin into a UsageBox checkout: folder, rate card, Package.swift target, registry line.")
            @Argument(help: "The vendor's name, e.g. Acme.") var name: String
            @Option(name: .customLong("package-root"), help: "The UsageBox checkout (default: the working directory).") var packageRoot = "."

            func run() async throws {
                let written = try VendorScaffold.run(name: name, packageRoot: packageRoot)
                printOut("Scaffolded \(name):\n" + written.map { "  " + $0 }.joined(separator: "\n")
                         + "\nNext: swift build && swift test --filter PluginExampleTests (its examples run by themselves).")
            }
        }
    }
}

extension UsageBoxCommand.Vendors {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the plugins.")
        @Flag(help: "Print the API's JSON.") var json = false

        func run() async throws {
            let service = try ReconciliationService()
            if json { printOut(JSONWriter.write(service.vendorsJSON())); return }
            printOut(TextTable(headers: ["id", "name", "formats", "parsers", "rate card"], rows: service.registry.plugins.map { p in
                [p.id, p.name, Array(Set(p.parsers.map(\.format.rawValue))).sorted().joined(separator: ","),
                 p.parsers.map(\.id).joined(separator: ", "), service.cards[p.rateCardName]?.version ?? "(none)"]
            }).render())
        }
    }
}

extension UsageBoxCommand {
    struct RateCards: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ratecards", abstract: "The rate cards compiled into usagebox, or one of them.")
        @Argument(help: "'show VENDOR' prints a card.") var words: [String] = []

        func run() async throws {
            let service = try ReconciliationService()
            if words.first == "show" {
                guard words.count == 2, let card = service.cards[words[1]] else {
                    throw UsageBoxError.invalidArgument("usage: usagebox ratecards show VENDOR (one of \(service.cards.keys.sorted().joined(separator: ", ")))", field: "vendor")
                }
                printOut(card.source)
                return
            }
            guard words.isEmpty else { throw ValidationError("usage: usagebox ratecards [show VENDOR]") }
            printOut(TextTable(headers: ["vendor", "version", "currency", "models"], rows: service.cards.values.sorted { $0.vendor < $1.vendor }.map {
                [$0.vendor, $0.version, $0.currency, $0.models.joined(separator: ", ")]
            }).render())
        }
    }

    struct Rules: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the default gap classification rules (a starting point for --rules).")
        func run() async throws { printOut(ClassificationRules.defaultYAML) }
    }
}
