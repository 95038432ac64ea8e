import ArgumentParser
import ExactJSON
import Foundation
import Hummingbird
import Logging
import Metering
import UsageBoxApp
import UsageBoxServer

extension UsageBoxCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the HTTP API over the embedded store.",
            discussion: """
                $USAGEBOX_KEY, when set, is an admin key for this server's lifetime (so the kata's curl commands work).
                Other keys: usagebox keys create. SIGTERM or SIGINT: in-flight requests finish, open segments seal, then exit.
                """)

        @Option(help: "Address to listen on.") var host = "127.0.0.1"
        @Option(help: "Port (0 picks a free one; the URL is printed on stdout once listening).") var port = 8080
        @OptionGroup var location: LocalStoreOptions
        @Option(help: "The least severity logged.") var logLevel: Logger.Level = .info
        @Option(help: "How log lines are written on stderr: text, or one JSON object per line.") var logFormat: LogFormat = .text
        @Option(help: "Every serve process sharing this store, as URLs, the same list in the same order on each (a ClickHouse store).")
        var peers: String?
        @Option(help: "This process's place in --peers, from 0.") var node: Int?
        @Option(name: .customLong("max-invoice-mb"), help: "The largest invoice a reconciliation request may carry, in MiB.") var maxInvoiceMB = 32
        @Option(
            name: .customLong("expensive-per-key"),
            help: "Expensive requests (SQL, JSON query, verify, explain, reconcile) at once per account (its keys together; an admin key on its own).")
        var expensivePerKey = 2
        @Option(name: .customLong("expensive-overall"), help: "Expensive requests at once on the whole server.") var expensiveOverall = 4
        @Option(name: .customLong("reads-per-key"), help: "Usage reads at once per account (its keys together; an admin key on its own).") var readsPerKey =
            RequestLimits().readsPerKey
        @Option(name: .customLong("reads-overall"), help: "Usage reads at once on the whole server.") var readsOverall = RequestLimits().readsOverall
        @Option(
            name: .customLong("small-bodies-mb-per-key"),
            help:
                "MiB of request bodies up to 1 MiB (by their Content-Length) read at once per account (its keys together; an admin key on its own); past it, 429."
        )
        var smallBodiesMBPerKey = RequestLimits().smallBodyBytesPerKey >> 20
        @Option(name: .customLong("small-bodies-mb-overall"), help: "MiB of request bodies up to 1 MiB read at once on the whole server.")
        var smallBodiesMBOverall = RequestLimits().smallBodyBytesOverall >> 20
        @Option(name: .customLong("idle-timeout"), help: "Seconds before an idle connection is closed.") var idleTimeout = 30
        @Option(
            name: .customLong("max-connections"),
            help: "Open connections at most; past it the quietest gives way to each new one (default: the process's file limit less 128).")
        var maxConnections: Int?
        @Option(name: .customLong("request-timeout"), help: "Seconds a request (head and body) may take to arrive whole; then its connection is closed.")
        var requestTimeout = 120
        @Option(
            name: .customLong("read-time-limit"),
            help:
                "Seconds the store reads of one usage read, JSON query, verify, explain or reconciliation may take; past it, 400 timeout (SQL has its own limit)."
        )
        var readTimeLimit = RequestLimits().readSeconds
        @Option(name: .customLong("failed-auth-per-minute"), help: "Failed authentications per client address per minute before it is answered 429.")
        var failedAuthPerMinute = RequestLimits().failedAuthPerMinute

        func run() async throws {
            let level = logLevel
            // The executable is the only place that bootstraps logging.
            let format = logFormat
            LoggingSystem.bootstrap { label in
                switch format {
                case .text:
                    var handler = StreamLogHandler.standardError(label: label)
                    handler.logLevel = level
                    return handler
                case .json:
                    return JSONLogHandler(label: label, logLevel: level)
                }
            }
            let env = ProcessInfo.processInfo.environment["USAGEBOX_KEY"]
            // With peers, each account has one writer: this process, or the peer it forwards to.
            var ring: PeerRing?
            if let peers {
                guard let node else { throw ValidationError("--peers needs --node (this server's place in the list)") }
                guard let env, !env.isEmpty else { throw ValidationError("--peers needs $USAGEBOX_KEY, the admin key the peers share to forward writes") }
                ring = try PeerRing(peers: peers.split(separator: ",").map(String.init), node: node)
            }
            var store = try await location.open(ring: ring)
            if let ring, let env { store = try OwnedWritesStore(base: store, ring: ring, key: env) }
            try await StoreFactory.recover(store)
            var logger = Logger(label: "usagebox")
            logger.logLevel = level
            logger.info("UsageBox serving", metadata: ["store": "\(location.description)", "address": "\(host):\(port)"])
            let host = self.host
            guard maxInvoiceMB > 0, maxInvoiceMB <= 1024, expensivePerKey > 0, expensiveOverall >= expensivePerKey, readsPerKey > 0,
                readsOverall >= readsPerKey, idleTimeout > 0, requestTimeout > 0, readTimeLimit > 0, readTimeLimit <= 86_400,
                failedAuthPerMinute > 0, smallBodiesMBPerKey > 0, smallBodiesMBOverall >= smallBodiesMBPerKey, smallBodiesMBOverall <= 1 << 20
            else {
                throw ValidationError(
                    "limits must be positive, --max-invoice-mb at most 1024, --read-time-limit at most 86400, --expensive-overall at least --expensive-per-key, --reads-overall at least --reads-per-key, "
                        + "--small-bodies-mb-overall at least --small-bodies-mb-per-key and at most 1048576"
                )
            }
            var limits = RequestLimits()
            limits.maxInvoiceBytes = maxInvoiceMB << 20
            limits.expensivePerKey = expensivePerKey
            limits.expensiveOverall = expensiveOverall
            limits.readsPerKey = readsPerKey
            limits.readsOverall = readsOverall
            limits.failedAuthPerMinute = failedAuthPerMinute
            limits.readSeconds = readTimeLimit
            limits.smallBodyBytesPerKey = smallBodiesMBPerKey << 20
            limits.smallBodyBytesOverall = smallBodiesMBOverall << 20
            // Prometheus metrics at /metrics; the store's size is the SQLite file's (with its WAL).
            let sizePath: String? =
                location.store == nil && ProcessInfo.processInfo.environment["USAGEBOX_STORE"] == nil
                ? StoreFactory.resolvePath(location.db) : nil
            let metrics = ServerMetrics(storeSize: {
                guard let sizePath else { return nil }
                return [sizePath, sizePath + "-wal"].reduce(Int64(0)) { total, file in
                    total + ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int64) ?? 0)
                }
            })
            let app = try ServerApplication.build(
                store: store, host: host, port: port, environmentAdminSecret: env, logger: logger,
                limits: limits, idleTimeout: .seconds(Int64(idleTimeout)),
                requestTimeout: .seconds(Int64(requestTimeout)), metrics: metrics,
                connections: ConnectionRegistry(limit: maxConnections)
            ) { bound in
                printOut("UsageBox listening on http://\(host):\(bound)")
            }
            try await app.runService()
        }
    }

    struct Keys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create, list and revoke API keys (stored hashed in the embedded store; a running server honours changes at once).",
            subcommands: [Create.self, List.self, Revoke.self], defaultSubcommand: List.self)

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create a key and print its secret once.")
            @OptionGroup var location: LocalStoreOptions
            @Option(help: "The account the key is for (reader and writer keys; an admin key has none: it sees every account).") var account: String?
            @Option(help: "What the key may do.") var role: KeyRole = .reader
            @Flag(help: "Print {key_id, secret, account_id, role}.") var json = false

            func run() async throws {
                let store = try await location.open()
                let (key, secret) = try await store.createKey(account: account, role: role)
                if json {
                    printOut(JSONWriter.write(CreatedKey(key: key, secret: secret).jsonValue))
                } else {
                    printOut(secret)
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List keys (never their secrets).")
            @OptionGroup var location: LocalStoreOptions
            @Flag(help: "Print JSON.") var json = false

            func run() async throws {
                let store = try await location.open(creating: false)
                let keys = try await store.listKeys()
                if json {
                    printOut(JSONWriter.write(KeyList(keys: keys).jsonValue))
                } else {
                    printOut(
                        TextTable(
                            headers: ["key_id", "account", "role", "created", "revoked"],
                            rows: keys.map {
                                [$0.keyID, $0.accountID ?? "(all)", $0.role.rawValue, $0.createdAt.rfc3339, $0.revokedAt?.rfc3339 ?? ""]
                            }
                        ).render())
                }
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Revoke a key; it stops working at once.")
            @OptionGroup var location: LocalStoreOptions
            @Argument(help: "The key id.") var keyID: String
            @Flag(help: "Print JSON.") var json = false

            func run() async throws {
                let store = try await location.open(creating: false)
                let key = try await store.revokeKey(keyID)
                printOut(json ? JSONWriter.write(key.jsonValue) : "\(key.keyID) revoked at \(key.revokedAt?.rfc3339 ?? "")")
            }
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
