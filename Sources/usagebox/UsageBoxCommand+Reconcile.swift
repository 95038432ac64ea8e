import ArgumentParser
import ExactJSON
import Foundation
import MeterStoreHTTPClient
import MeterStoreSQLite
import Metering
import ReconCore
import ReportPages
import UsageBoxApp

extension UsageBoxCommand {
    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reconcile a vendor invoice against the meter; list, show, apply or revert recorded runs.",
            discussion: """
                usagebox reconcile --vendor V --invoice FILE --from 2026-05-01 --to 2026-06-01 [--account A] …   (run)
                usagebox reconcile list [--account A] [--limit N]  the recorded runs, newest first (--before T --before-id ID: the next page)
                usagebox reconcile show ID [--format F]            a recorded run's report
                usagebox reconcile apply ID [--confirm-large]      post a recorded run's corrections
                usagebox reconcile revert ID                       post the corrections that undo an applied run
                """,
            subcommands: [Run.self, List.self, Show.self, Apply.self, Revert.self], defaultSubcommand: Run.self)
    }
}

extension UsageBoxCommand.Reconcile {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Reconcile a vendor invoice against the meter (the default subcommand).",
            discussion: """
                Verifies the meter first (exit 3 on drift unless --allow-drift), parses the invoices with the vendor's plugin,
                converts money to tokens with the rate card, measures what the invoice covers, diffs per model, token type and
                account, classifies every gap (plugin classifiers, then --rules, then the defaults) and proposes corrections only
                when the evidence is conclusive. The report opens with the verdict; every limit on the evidence is listed with what
                would lift it. --apply posts the proposed corrections (exit 5 when the run is inconclusive); corrections that back
                out more than half of what was metered are held until --confirm-large. See docs/reconciliation.md.
                """)

        @Option(
            help: "The vendor plugin id (see `usagebox vendors`), or 'auto' to pick by sniffing the file.",
            completion: .custom { _, _, _ in ["auto"] + Completions.vendorIDs() })
        var vendor: String
        @Option(name: .customLong("invoice"), help: "An invoice file (repeat for several, e.g. every page of an export).") var invoices: [String]
        @Option(help: "Start of the period: a date (2026-05-01, 00:00 UTC) or an RFC 3339 time in UTC.") var from: String
        @Option(help: "End of the period (exclusive), written like --from.") var to: String
        @Option(help: "The account the run is for.") var account: String?
        @Option(
            name: .customLong("invoice-scope"), help: "'account': the invoice is --account's alone (other accounts' usage of its models is not billed on it).")
        var invoiceScope: InvoiceScope?
        @Option(name: .customLong("rate-card"), help: "A rate card file overriding the vendor's card.") var rateCard: String?
        @Option(help: "A team's classification rules, consulted before the defaults (see `usagebox rules`).") var rules: String?
        @Option(name: .customLong("account-map"), help: "A YAML/JSON file mapping vendor workspace/project/key ids to accounts.") var accountMap: String?
        @Option(name: .customLong("model-map"), help: "A YAML/JSON file mapping model names no card knows (an Azure deployment) to the model they serve.")
        var modelMap: String?
        @Option(help: "CUR=RATE: units of the card's currency per unit of CUR (repeat).") var fx: [String] = []
        @Option(name: .customLong("meter-id"), help: "Only this meter; required when an account meters a model on several.") var meterID: String?
        @OptionGroup var form: ReportForm
        @Flag(help: "Post the proposed corrections (refused, exit 5, when the run is inconclusive).") var apply = false
        @Flag(name: .customLong("confirm-large"), help: "With --apply, also post the corrections held for review.") var confirmLarge = false
        @Flag(name: .customLong("allow-drift"), help: "Go on when verify finds drift.") var allowDrift = false
        @Flag(name: .customLong("deep-verify"), help: "Verify deep instead of incremental.") var deepVerify = false
        @Flag(name: .customLong("allow-overlap"), help: "Accept invoice files that bill the same bucket twice, or a file listing a line twice.")
        var allowOverlap = false
        @OptionGroup var store: StoreOptions

        func validate() throws {
            guard !invoices.isEmpty else { throw ValidationError("name at least one --invoice") }
            if confirmLarge, !apply { throw ValidationError("--confirm-large goes with --apply") }
        }

        static func read(_ path: String, what: String) throws -> String {
            String(decoding: try readBytes(path, what: what), as: UTF8.self)
        }

        /// A file's bytes, or an error saying why not (missing, a folder, unreadable).
        static func readBytes(_ path: String, what: String) throws -> Data {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw UsageBoxError.invalidArgument("\(path): no such file (the \(what))", field: what)
            }
            guard !isDirectory.boolValue else { throw UsageBoxError.invalidArgument("\(path) is a folder, not the \(what) file", field: what) }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw UsageBoxError.invalidArgument("\(path): cannot read the \(what) (no permission, or not a regular file)", field: what)
            }
            return data
        }

        /// The flags as the one request type the HTTP API decodes too.
        func request(service: ReconciliationService) throws -> ReconciliationRequest {
            var files: [InvoiceFile] = []
            for path in invoices {
                // The bytes as they are (its SHA-256 is recorded; text decoding would change them).
                let data = try Self.readBytes(path, what: "invoice")
                files.append(InvoiceFile(name: (path as NSString).lastPathComponent, bytes: Array(data)))
            }
            var vendorID = vendor
            if vendor == "auto" {
                guard let (plugin, parser) = try service.registry.sniff(files[0]) else {
                    throw UsageBoxError.invalidArgument("\(invoices[0]): no plugin recognizes this file; name --vendor", field: "vendor")
                }
                vendorID = plugin.id
                printErr("--vendor auto: \(plugin.id) (\(parser.id)) reads \(files[0].name)")
            }
            var r = ReconciliationRequest(vendor: vendorID, from: from, to: to, accountID: account, invoices: files)
            r.invoiceScope = invoiceScope
            // Read here first so an error names the option given (`rules`), not the API's body
            // field (`rules_yaml`) the request carries it in.
            if let rules {
                (r.rulesYAML, r.rulesName) = (try Self.read(rules, what: "rules"), rules)
                _ = try ReconciliationRequest.config("rules") { try ClassificationRules.load(text: r.rulesYAML!, file: rules) }
            }
            if let rateCard {
                (r.rateCardYAML, r.rateCardName) = (try Self.read(rateCard, what: "rate_card"), rateCard)
                _ = try ReconciliationRequest.config("rate_card") { try RateCard.load(text: r.rateCardYAML!, file: rateCard) }
            }
            if let accountMap {
                r.accountMap = try ReconciliationRequest.config("account_map") {
                    try AccountMap.load(text: try Self.read(accountMap, what: "account_map"), file: accountMap)
                }
            }
            if let modelMap {
                r.modelMap = try ReconciliationRequest.config("model_map") {
                    try ModelMap.load(text: try Self.read(modelMap, what: "model_map"), file: modelMap)
                }
            }
            r.fx = try ReconciliationRequest.fxRates(flags: fx).mapValues { ExactDecimal.text($0) }
            r.meterID = meterID
            r.deepVerify = deepVerify
            r.allowDrift = allowDrift
            r.allowOverlap = allowOverlap
            return r
        }

        /// With `--server` the server runs and records the reconciliation (the same request its
        /// API decodes), and applies it: a run made here would be recorded nowhere, and its
        /// corrections posted past the server's checks of other runs, with no revert.
        static func runOnServer(
            _ server: HTTPMeterStore, _ asked: ReconciliationRequest, apply: Bool, confirmLarge: Bool
        ) async throws -> (ReconciliationReport, ReconciliationRunner.ApplyOutcome) {
            let text = try await server.reconcile(request: try JSONParser.parse(try ReconciliationJSON.encode(asked)))
            let report = try ReconciliationJSON.decode(ReconciliationReport.self, from: text)
            guard apply else { return (report, .notRequested) }
            do {
                let answer: ApplyAnswer = try await server.reconciliationAction("apply", id: report.id, confirmLarge: confirmLarge)
                return (report, .posted(answer.batch, heldBack: answer.heldNotPosted))
            } catch let e as UsageBoxError where e.code == .inconclusive {
                return (report, .refused(e))
            }
        }

        func run() async throws {
            let service = try ReconciliationService()
            let asked = try request(service: service)
            let options = try asked.resolve(scope: .all, runBy: "cli")
            let db = try await store.open()
            let report: ReconciliationReport
            let outcome: ReconciliationRunner.ApplyOutcome
            do {
                if let server = db as? HTTPMeterStore {
                    (report, outcome) = try await Self.runOnServer(server, asked, apply: apply, confirmLarge: confirmLarge)
                } else {
                    (report, outcome) = try await service.run(
                        options, store: db, log: db as? any ReconciliationLog, apply: apply,
                        confirmLarge: confirmLarge)
                    if case let .posted(applied, _) = outcome { await Revert.seal(db, after: applied) }
                }
            } catch let drift as VerifyDrift {
                printErr("usagebox: reconcile stopped: \(drift)")
                throw ExitCode.verifyDrift
            } catch let e as UsageBoxError where e.code == .verifyDrift {
                printErr("usagebox: reconcile stopped: \(e.message)")
                throw ExitCode.verifyDrift
            }
            form.print(report)
            if form.chosen == .table, case let .posted(applied, heldBack) = outcome {
                printOut("\napplied: " + Rendering.ingest(applied) + Apply.heldBack(heldBack, id: report.id))
            }
            if case let .refused(error) = outcome {
                printErr("usagebox: --apply refused: \(error.message)")
                throw ExitCode.inconclusive
            }
        }
    }

    /// A recorded run's report, from the server (`--server`, as the key may see it) or the embedded store.
    static func storedReport(_ id: String, in db: any MeterStore, field: String) async throws -> ReconciliationReport {
        if let remote = db as? HTTPMeterStore {
            return try ReconciliationJSON.decode(ReconciliationReport.self, from: try await remote.reconciliationReportText(id: id))
        }
        guard let log = db as? any ReconciliationLog, let stored = try await ReconciliationArchive(log).report(id: id) else {
            throw UsageBoxError(.notFound, "no reconciliation \(id)", field: field)
        }
        return stored
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a recorded run's report as it stands (GET /v1/reconciliations/{id}), in any of run's forms.")
        @Argument(help: "The reconciliation id (rec_…).") var id: String
        @OptionGroup var form: ReportForm
        @OptionGroup var store: StoreOptions

        func run() async throws {
            form.print(try await UsageBoxCommand.Reconcile.storedReport(id, in: try await store.open(), field: "id"))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The recorded runs, newest first (GET /v1/reconciliations): id, vendor, month, account, verdict, gap, corrections, applied.")
        @Option(help: "Only this account's runs.") var account: String?
        @Option(help: "How many runs at most, \(ReconciliationList.limits.lowerBound) to \(ReconciliationList.limits.upperBound).")
        var limit: String = String(ReconciliationList.defaultLimit)
        @Option(help: "Only runs recorded before this date or RFC 3339 time (with --before-id, the next page: as the list prints it).")
        var before: String?
        @Option(name: .customLong("before-id"), help: "With --before, only runs after this one in the list's order (runs can share a time).")
        var beforeID: String?
        @Flag(help: "Print the API's JSON.") var json = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let limit = try ReconciliationList.limit(limit, field: "--limit")
            let cursor = try ReconciliationList.Cursor.parse(before: before, beforeID: beforeID, fields: ("--before", "--before-id"))
            let account = try ReconciliationList.account(account, field: "--account")
            let db = try await store.open()
            let list: ReconciliationList
            if let remote = db as? HTTPMeterStore {
                list = try ReconciliationJSON.decode(
                    ReconciliationList.self,
                    from: try await remote.reconciliationListText(account: account, limit: limit, before: cursor?.before.rfc3339, beforeID: cursor?.beforeID))
            } else {
                guard let log = db as? any ReconciliationLog else { throw UsageBoxError(.notFound, "this store keeps no reconciliations") }
                list = try await ReconciliationArchive(log).recent(limit: limit, ofAccounts: account.map { [$0] }, after: cursor)
            }
            printOut(json ? JSONWriter.write(list.jsonValue) : Rendering.reconciliationList(list, after: cursor))
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Post a recorded run's proposed corrections (POST /v1/reconciliations/{id}/apply); twice answers duplicates.")
        @Argument(help: "The reconciliation id (rec_…).") var id: String
        @Flag(name: .customLong("confirm-large"), help: "Also post the corrections held for review.") var confirmLarge = false
        @Flag(help: "Print the API's JSON.") var json = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let db = try await store.open()
            let answer = try await Revert.act(
                "apply", id: id, confirmLarge: confirmLarge, db: db,
                local: { service, db, log in try await service.apply(id: id, confirmLarge: confirmLarge, store: db, log: log) })
            await Revert.seal(db, after: answer.batch)
            guard !json else { return printOut(JSONWriter.write(answer.jsonValue)) }
            // Corrections held for review are not posted without --confirm-large: say so, as
            // `reconcile --apply` does (the answer alone read as if the run were applied whole).
            printOut("applied \(id): " + Rendering.ingest(answer.batch) + Self.heldBack(answer.heldNotPosted, id: id))
        }

        /// What the run left for review, and how to post it (nothing when nothing was held back).
        static func heldBack(_ count: Int, id: String) -> String {
            count > 0 ? "\n\(count) held correction(s) not posted: review them, then `usagebox reconcile apply \(id) --confirm-large`" : ""
        }
    }

    struct Revert: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Post the corrections that undo an applied run, with their own correction_ref (POST /v1/reconciliations/{id}/revert); twice posts nothing new.")
        @Argument(help: "The reconciliation id (rec_…).") var id: String
        @Flag(help: "Print the API's JSON.") var json = false
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let db = try await store.open()
            let response = try await Self.act(
                "revert", id: id, confirmLarge: false, db: db,
                local: { service, db, log in try await service.revert(id: id, store: db, log: log) })
            await Self.seal(db, after: response)
            printOut(json ? JSONWriter.write(response.jsonValue) : "reverted \(id): " + Rendering.ingest(response))
        }

        /// Segments seal when the process that wrote them finishes, as `ingest`'s do — when this
        /// one posted something to an embedded store (a server seals its own). The corrections are
        /// posted whatever the seal says: a failure is a warning, not the command's error.
        /// Duplicates only count too: posting them took ClickHouse's writer lease, which the seal
        /// gives up (a second revert kept it, and the next write waited for it to lapse).
        static func seal(_ db: any MeterStore, after posted: IngestResponse) async {
            guard posted.accepted + posted.duplicates + posted.conflicts + posted.rejected > 0, !(db is HTTPMeterStore) else { return }
            do {
                try await db.sealSegmentsWrittenHere()
            } catch {
                printErr("usagebox: warning: the corrections are posted; sealing their segment failed (\(error)): the next ingest or shutdown seals it")
            }
        }

        /// Applies or reverts on the server (its record changes) or on the embedded store.
        static func act<Answer: WireShape>(
            _ action: String, id: String, confirmLarge: Bool, db: any MeterStore,
            local: (ReconciliationService, any MeterStore, any ReconciliationLog) async throws -> Answer
        ) async throws -> Answer {
            do {
                if let remote = db as? HTTPMeterStore {
                    return try await remote.reconciliationAction(action, id: id, confirmLarge: confirmLarge)
                }
                guard let log = db as? any ReconciliationLog else { throw UsageBoxError(.notFound, "this store keeps no reconciliations") }
                return try await local(try ReconciliationService(), db, log)
            } catch let e as UsageBoxError where e.code == .inconclusive {
                printErr("usagebox: \(e.message)")
                throw ExitCode.inconclusive
            }
        }
    }
}

/// The forms a reconciliation report prints in.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, markdown, html
}

/// Extra breakdowns of the table report.
enum ReportBreakdown: String, ExpressibleByArgument, CaseIterable {
    case day
}

/// How a report prints (`reconcile run` and `reconcile show` alike).
struct ReportForm: ParsableArguments {
    @Option(help: "The report's form.") var format: ReportFormat = .table
    @Option(name: .customLong("by"), help: "'day': also print the day-by-day table (JSON and Markdown always carry it).") var by: ReportBreakdown?
    @Flag(help: "Print the report as the API's JSON (same as --format json).") var json = false

    var chosen: ReportFormat { json ? .json : format }

    func print(_ report: ReconciliationReport) {
        switch chosen {
        case .json: printOut(report.jsonText)
        case .markdown: printOut(Rendering.reconciliationMarkdown(report))
        case .html: printOut(ReportPages.report(report))
        case .table:
            printOut(Rendering.reconciliation(report))
            if by == .day { printOut("\n" + Rendering.reconciliationDays(report)) }
        }
    }
}

extension InvoiceScope: ExpressibleByArgument {}

extension UsageBoxCommand {
    struct Vendors: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The vendor plugins: ids, formats, parsers and rate-card versions (GET /v1/vendors).",
            subcommands: [List.self, Scaffold.self], defaultSubcommand: List.self)

        struct Scaffold: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Write a new vendor plugin into a UsageBox checkout: folder (Package.swift makes it a target), rate card, registry line.")
            @Argument(help: "The vendor's name, e.g. Acme.") var name: String
            @Option(name: .customLong("package-root"), help: "The UsageBox checkout (default: the working directory).") var packageRoot = "."

            func run() async throws {
                let written = try VendorScaffold.run(name: name, packageRoot: packageRoot)
                printOut(
                    "Scaffolded \(name):\n" + written.map { "  " + $0 }.joined(separator: "\n")
                        + "\nNext: scripts/refresh-package && swift test --skip-build --filter PluginExampleTests (its examples run by themselves; the script makes SwiftPM see the new folder)."
                )
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
            if json { printOut(JSONWriter.write(service.vendors.jsonValue)); return }
            printOut(
                TextTable(
                    headers: ["id", "name", "formats", "parsers", "rate card"],
                    rows: service.registry.plugins.map { p in
                        [
                            p.id, p.name, Array(Set(p.parsers.map(\.format.rawValue))).sorted().joined(separator: ","),
                            p.parsers.map(\.id).joined(separator: ", "), service.cards[p.rateCardName]?.version ?? "(none)",
                        ]
                    }
                ).render())
        }
    }
}

extension UsageBoxCommand {
    struct RateCards: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ratecards", abstract: "The rate cards compiled into usagebox; show one; propose the version a reconciliation's price step calls for.",
            subcommands: [List.self, Show.self, Propose.self], defaultSubcommand: List.self)

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the cards and their versions.")
            @Flag(help: "Print JSON.") var json = false
            func run() async throws {
                let service = try ReconciliationService()
                let cards = service.cards.values.sorted { $0.vendor < $1.vendor }
                if json {
                    printOut(JSONWriter.write(RateCardList(cards: cards).jsonValue))
                    return
                }
                printOut(
                    TextTable(
                        headers: ["vendor", "version", "currency", "models"],
                        rows: cards.map {
                            [$0.vendor, $0.version, $0.currency, $0.models.joined(separator: ", ")]
                        }
                    ).render())
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Print a card as compiled in.")
            @Argument(
                help: "The card's vendor (see `usagebox ratecards`).",
                completion: .custom { _, _, _ in Completions.cardNames() })
            var vendor: String
            func run() async throws {
                let service = try ReconciliationService()
                guard let card = service.cards[vendor] else {
                    throw UsageBoxError.invalidArgument("no card '\(vendor)'; known: \(service.cards.keys.sorted().joined(separator: ", "))", field: "vendor")
                }
                printOut(card.source)
            }
        }

        struct Propose: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Write the card version that would close a reconciliation's price steps, for a person to review.",
                discussion: """
                    For each model whose implied price changed on a day (the report's price_steps), the card gets a new dated price
                    row from that day, the earlier row ends there, the reconciliation is named as the source, and the version and
                    changelog move on. A step of one model or one token type (kind one_model, one_token_type) is written too, but a
                    steady loss of those requests from that day looks the same: use it only once the vendor's price list confirms the change. Re-run the
                    reconciliation with --rate-card FILE to see the gap close.
                    """)
            @Option(name: .customLong("from-report"), help: "The reconciliation id (rec_…).") var fromReport: String
            @Option(help: "Write the card here instead of standard output.") var output: String?
            @OptionGroup var store: StoreOptions

            func run() async throws {
                let service = try ReconciliationService()
                let db = try await store.open()
                let report = try await UsageBoxCommand.Reconcile.storedReport(fromReport, in: db, field: "from_report")
                // The card the run priced with: a run on a proposed card (`--rate-card FILE`) was
                // proposed against the shipped one, undoing the first proposal's rows (tester U).
                guard let card = ReconciliationRunner.card(of: report, shipped: service.cards) else {
                    throw UsageBoxError.invalidArgument(
                        "reconciliation \(fromReport) priced its invoice with \(report.rateCard.vendor) card \(report.rateCard.version), which this "
                            + "usagebox neither ships nor kept the text of; edit that card by hand", field: "from_report")
                }
                let text = try card.proposing(report)
                _ = try RateCard.load(text: text, file: "proposed")
                for step in report.priceSteps {
                    guard let alone = step.movedAlone else { continue }
                    printErr(
                        "\(step.date): only the price of \(alone) moved (a steady loss of its requests from that day looks the same); "
                            + "keep this row only if the vendor's price list confirms it")
                }
                if let output {
                    try text.write(toFile: output, atomically: true, encoding: .utf8)
                    printErr(
                        "wrote \(output): \(card.vendor) card with \(report.priceSteps.count) price step(s) from \(fromReport); review it, then --rate-card \(output)"
                    )
                } else {
                    printOut(text)
                }
            }
        }
    }

    struct Rules: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Gap classification rules: print the defaults, or test a team's rules file against its examples.",
            subcommands: [Show.self, Test.self], defaultSubcommand: Show.self)

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Print the default rules (a starting point for --rules).")
            func run() async throws { printOut(ClassificationRules.defaultYAML) }
        }

        struct Test: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Run every example in a rules file through that file and the defaults, as reconcile would; exit 1 when one fails.",
                discussion: "Each example is a finding and the class it must get; the file's rules are asked first, then the defaults.")
            @Argument(help: "The rules file.") var file: String
            @Option(
                name: .customLong("rate-card"),
                help: "A rate card the rules run against (as reconcile --rate-card): its models and token types are read as reconcile reads them.")
            var rateCard: String?
            @Flag(help: "Print the results as JSON.") var json = false

            static func exampleJSON(_ e: RuleExample, _ r: (passed: Bool, got: GapClassification)) -> JSONValue {
                let members: [(String, JSONValue)] = [
                    ("rule", .string(e.rule)), ("line", .int(Int64(e.line))), ("finding", .string(e.summary)),
                    ("expect", .string(e.expect.rawValue)), ("got", .string(r.got.gapClass.rawValue)),
                    ("decided_by", .string(r.got.classifier + " " + r.got.rule)), ("passed", .bool(r.passed)),
                ]
                return .object(members)
            }

            func run() async throws {
                let text = try UsageBoxCommand.Reconcile.Run.read(file, what: "rules")
                // Plain model names read as a run reads them when its card does not know them.
                let cards = Array(try ReconciliationService().cards.values)
                let card = try rateCard.map { path in
                    let cardText = try UsageBoxCommand.Reconcile.Run.read(path, what: "rate_card")
                    return try ReconciliationRequest.config("rate_card") { try RateCard.load(text: cardText, file: path) }
                }
                let written = try ReconciliationRequest.config("rules") { try ClassificationRules.load(text: text, file: file) }
                let rules = written.resolvingModels(ClassificationRules.modelReader(card: card, cards: cards))
                let warnings = written.unmatchableNames(card: card, cards: cards) + written.respelledModels(card: card, cards: cards) + rules.shadowedRules()
                let chain = ClassifierChain(team: rules)
                let results = rules.examples.map { ($0, $0.check(chain)) }
                let failed = results.filter { !$0.1.passed }.count
                let untested = rules.rules.filter { $0.examples.isEmpty }.map { $0.id }
                if json {
                    printOut(
                        JSONWriter.write(
                            .object([
                                ("file", .string(file)), ("passed", .int(Int64(results.count - failed))), ("failed", .int(Int64(failed))),
                                ("rules_without_examples", .array(untested.map(JSONValue.string))),
                                ("warnings", .array(warnings.map(JSONValue.string))),
                                ("examples", .array(results.map(Self.exampleJSON))),
                            ])))
                } else {
                    for (e, r) in results {
                        printOut(
                            "\(r.passed ? "PASS" : "FAIL")  \(file):\(e.line)  rule \(e.rule): \(e.summary) → \(r.got.gapClass.rawValue)"
                                + " (\(r.got.classifier) \(r.got.rule))"
                                + (r.passed ? "" : ", expected \(e.expect.rawValue)\(e.expectRule.map { " by \($0)" } ?? "")"))
                    }
                    if !untested.isEmpty { printOut("rules without examples: \(untested.joined(separator: ", "))") }
                    for w in warnings { printOut("warning: \(w)") }
                    printOut("\(results.count - failed) passed, \(failed) failed")
                }
                if failed > 0 { throw ExitCode.failure }
            }
        }
    }
}

/// Values the shell completes, read from the registry compiled in.
enum Completions {
    static func vendorIDs() -> [String] {
        guard let service = try? ReconciliationService() else { return [] }
        var ids: [String] = []
        for plugin in service.registry.plugins { ids.append(plugin.id) }
        return ids
    }

    static func cardNames() -> [String] {
        guard let service = try? ReconciliationService() else { return [] }
        return service.cards.keys.sorted()
    }
}
