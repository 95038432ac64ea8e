import ArgumentParser
import ExactJSON
import Foundation
import Metering
import UsageBoxApp

/// The period options of reads.
struct PeriodOptions: ParsableArguments {
    @Option(help: "Start (inclusive): a date (2026-05-01, 00:00 UTC) or RFC 3339, e.g. 2026-05-01T00:00:00Z.") var from: String
    @Option(help: "End (exclusive), written like --from.") var to: String

    /// A date is that day at 00:00 UTC, as `reconcile` reads it; the API takes RFC 3339.
    static func instant(_ text: String) -> String { Timestamp(date: text) != nil ? text + "T00:00:00Z" : text }
    var fromInstant: String { Self.instant(from) }
    var toInstant: String { Self.instant(to) }

    func range() throws -> TimeRange { try TimeRange(from: fromInstant, to: toInstant) }
}

extension UsageBoxCommand {
    struct Usage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Usage grouped by fields and dimensions (GET /v1/accounts/{account}/usage).",
            discussion: "Without --account the read spans every account (GET /v1/usage).")

        @OptionGroup var store: StoreOptions
        @Option(help: "The account (omit for every account).") var account: String?
        @OptionGroup var period: PeriodOptions
        @Option(name: .customLong("group-by"), help: "Comma-separated: model_id, meter_id, account_id, kind, unit, hour, day, month, a dimension, or dim.NAME.")
        var groupBy: [String] = []
        @Option(name: .customLong("filter"), help: "NAME=VALUE; repeat a name for any of several values.") var filters: [String] = []
        @Option(help: "What to read: rollups where they can answer (auto), only rollups, or raw events.") var source: SourcePreference?
        @Flag(help: "Print the API's JSON.") var json = false

        func run() async throws {
            var params: [(String, String)] = [("from", period.fromInstant), ("to", period.toInstant)]
            if !groupBy.isEmpty { params.append(("group_by", groupBy.joined(separator: ","))) }
            if let source { params.append(("source", source.rawValue)) }
            for f in filters {
                guard let eq = f.firstIndex(of: "=") else { throw ValidationError("--filter takes NAME=VALUE, got '\(f)'") }
                params.append((String(f[..<eq]), String(f[f.index(after: eq)...])))
            }
            let query = try UsageQuery.fromParameters(params, scope: account.map { .accounts([$0]) } ?? .all)
            try query.checkTimeBuckets()
            let db = try await store.open()
            let result = try await db.usage(query)
            printOut(json ? JSONWriter.write(result.jsonValue) : Rendering.usage(result))
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check rollups against raw events and re-hash segments (GET /v1/accounts/{account}/verify).",
            discussion: "Exits 0 and prints the report either way; check \"ok\" (or the exit code with --fail-on-drift).")

        @OptionGroup var store: StoreOptions
        @Option(help: "The account.") var account: String
        @OptionGroup var period: PeriodOptions
        @Option(name: .customLong("group-by"), help: "A per-day report.") var groupBy: ReportBreakdown?
        @Option(help: "How far to trust earlier passes.") var mode: VerifyMode = .deep
        @Flag(help: "Exit 3 when drift or a corrupt segment is found.") var failOnDrift = false
        @Flag(help: "Print the API's JSON.") var json = false

        func run() async throws {
            let range = try period.range()
            // The server refuses as many days as it refuses a usage read of (tester O2).
            if groupBy == .day { try UsageQuery(scope: .all, range: range, groupBy: [.day]).checkTimeBuckets() }
            let db = try await store.open()
            let report = try await db.verify(VerifyRequest(account: account, range: range, mode: mode, byDay: groupBy == .day))
            printOut(json ? JSONWriter.write(report.jsonValue) : Rendering.verify(report))
            if failOnDrift, !report.ok { throw ExitCode.verifyDrift }
        }
    }

    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Totals, per-model breakdown, segment provenance and corrections (GET /v1/accounts/{account}/explain).")

        @OptionGroup var store: StoreOptions
        @Option(help: "The account.") var account: String
        @OptionGroup var period: PeriodOptions
        @Option(name: .customLong("by"), help: "'day': also print usage and corrections per day × model × token type (from the daily rollups; text only).")
        var by: ReportBreakdown?
        @Flag(help: "Print the API's JSON.") var json = false

        func validate() throws {
            // The table is the CLI's, not the API's: with --json it was left out without a word.
            if by == .day, json {
                throw ValidationError(
                    "--by day prints a table beside the text report; for JSON read the same figures with "
                        + "`usagebox usage --account \(account) --group-by day,model_id,token_type --json` and the period's --from/--to")
            }
        }

        func run() async throws {
            let db = try await store.open()
            let range = try period.range()
            // The server refuses as many days as it refuses a usage read of (tester O2).
            if by == .day { try UsageQuery(scope: .all, range: range, groupBy: [.day]).checkTimeBuckets() }
            let report = try await db.explain(account: account, range: range)
            printOut(json ? JSONWriter.write(report.jsonValue) : Rendering.explain(report))
            if by == .day, !json {
                let daily = try await Rendering.dailyUsage(db, account: account, range: range)
                printOut("\n" + daily)
            }
        }
    }

    struct Periods: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Close calendar months, or list the closed ones.", subcommands: [Close.self, List.self], defaultSubcommand: List.self)

        struct Close: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Close a month: later Usage into it is rejected; Corrections are marked post_close.")
            @OptionGroup var store: StoreOptions
            @Option(help: "The account.") var account: String
            @Option(help: "The month, YYYY-MM.") var period: String
            @Flag(help: "Print the API's JSON.") var json = false

            func run() async throws {
                let db = try await store.open()
                let record = try await db.closePeriod(account: account, period: period)
                printOut(json ? JSONWriter.write(record.jsonValue) : "\(record.accountID) \(record.period) closed at \(record.closedAt.rfc3339)")
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List an account's closed months.")
            @OptionGroup var store: StoreOptions
            @Option(help: "The account.") var account: String
            @Flag(help: "Print the API's JSON.") var json = false

            func run() async throws {
                let db = try await store.open()
                let records = try await db.periods(account: account)
                if json {
                    printOut(JSONWriter.write(PeriodList(accountID: account, periods: records).jsonValue))
                } else {
                    printOut(TextTable(headers: ["period", "closed_at"], rows: records.map { [$0.period, $0.closedAt.rfc3339] }).render())
                }
            }
        }
    }

    struct Meters: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List meters, or set a meter's unit and the dimensions its rollups keep.",
            subcommands: [List.self, Set.self], defaultSubcommand: List.self)

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List meters (GET /v1/meters).")
            @OptionGroup var store: StoreOptions
            @Flag(help: "Print the API's JSON.") var json = false

            func run() async throws {
                let db = try await store.open()
                let meters = try await db.meters(scope: .all)
                if json {
                    printOut(JSONWriter.write(MeterList(meters: meters).jsonValue))
                } else {
                    printOut(
                        TextTable(
                            headers: ["meter", "unit", "rollup dimensions"],
                            rows: meters.map {
                                [$0.meterID, $0.unit ?? "", $0.rollupDimensions?.joined(separator: ",") ?? "(all)"]
                            }
                        ).render())
                }
            }
        }

        struct Set: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Set a meter (PUT /v1/meters/{meter_id}); changing kept dimensions rebuilds its rollups from raw events.")
            @OptionGroup var store: StoreOptions
            @Argument(help: "The meter id.") var meter: String
            @Option(help: "The unit.") var unit: String?
            @Option(name: .customLong("rollup-dimensions"), help: "Comma-separated dimension names rollups keep ('*' keeps every dimension again).")
            var rollupDimensions: String?
            @Flag(help: "Print the API's JSON.") var json = false

            func run() async throws {
                let db = try await store.open(creating: true)
                // `*` travels as `["*"]`, the API's spelling of every dimension.
                let dims = rollupDimensions.map { $0.isEmpty ? [] : $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
                let info = try await db.setMeter(meter, unit: unit, rollupDimensions: dims)
                printOut(
                    json
                        ? JSONWriter.write(info.jsonValue)
                        : "\(info.meterID): unit \(info.unit ?? "(none)"), rollups keep \(info.rollupDimensions?.joined(separator: ",") ?? "all dimensions")")
            }
        }
    }

    struct Query: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read-only SQL over usage_events, or a structured JSON query.", subcommands: [SQL.self, JSONQuery.self])

        struct SQL: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "sql", abstract: "Read-only SQL over the usage_events view (POST /v1/query/sql).")
            @OptionGroup var store: StoreOptions
            @Option(help: "Limit the view to one account.") var account: String?
            /// The longest a local query may run (the CLI's own bound; a server keeps its own).
            static let mostSeconds: Double = 3600
            @Option(
                help: """
                    Time limit in seconds (more than 0, at most \(Int(mostSeconds)); with --server it can only lower the server's, \
                    \(Int(SQLQueryBody.defaultTimeoutSeconds)) s by default).
                    """) var timeout: Double = SQLQueryBody.defaultTimeoutSeconds
            @Flag(help: "Print the API's JSON.") var json = false
            @Argument(help: "One SELECT statement.") var sql: String

            func validate() throws {
                // nan and inf meant no limit at all.
                guard timeout.isFinite, timeout > 0, timeout <= Self.mostSeconds else {
                    throw ValidationError("--timeout is seconds, more than 0 and at most \(Int(Self.mostSeconds))")
                }
            }

            func run() async throws {
                let db = try await store.open()
                let result = try await db.sql(sql, scope: account.map { .accounts([$0]) } ?? .all, timeLimitSeconds: timeout, rowLimit: 10_000)
                printOut(json ? JSONWriter.write(result.jsonValue) : Rendering.sql(result))
            }
        }

        struct JSONQuery: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "json", abstract: "A structured query from a JSON file (POST /v1/query/json); '-' reads standard input.")
            @OptionGroup var store: StoreOptions
            @Flag(help: "Print the API's JSON.") var json = false
            @Argument(help: "The query file.") var file: String

            func run() async throws {
                let data: Data
                if file == "-" {
                    data = FileHandle.standardInput.readDataToEndOfFile()
                } else {
                    guard let d = FileManager.default.contents(atPath: file) else {
                        throw UsageBoxError.invalidArgument("\(file): cannot read the file", field: "file")
                    }
                    data = d
                }
                let value: JSONValue
                do {
                    value = try JSONParser.parse(bytes: data)
                } catch let e as JSONParseError {
                    throw UsageBoxError.invalidArgument("\(file):\(e.line):\(e.column): \(e.message)", field: "file")
                }
                let body = try UsageQuery.jsonBody(value)
                let query = try UsageQuery.from(body, scope: body.accountID.map { AccountScope.accounts([$0]) } ?? .all)
                try query.checkTimeBuckets()
                let db = try await store.open()
                let result = try await db.usage(query)
                printOut(json ? JSONWriter.write(result.jsonValue) : Rendering.usage(result))
            }
        }
    }
}
