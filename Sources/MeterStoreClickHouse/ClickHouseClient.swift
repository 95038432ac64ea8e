import AsyncHTTPClient
import ExactJSON
import Foundation
public import Metering
import NIOCore
import NIOHTTP1

/// Where a ClickHouse store lives:
/// `clickhouse://host:port[,host:port…]/database[?user=…&password=…&cluster=…&replicated=true]`.
/// Every host is a server's HTTP interface; the first answers queries and takes every write (but
/// verify's log of checks). With
/// `cluster`, the hosts are the shards of that `remote_servers` cluster: events and rollups are
/// sharded by account, the small tables live on the first host. With `replicated`, every table is
/// a `Replicated…MergeTree` kept by ZooKeeper on every listed host (each names itself with its
/// `{replica}` macro, and `{shard}` in a cluster), and reads go on to the next host when one
/// cannot be reached (docs/clickhouse.md).
public struct ClickHouseLocation: Sendable, Equatable {
    public var hosts: [String]
    public var database: String
    public var user: String?
    public var password: String?
    public var cluster: String?
    public var replicated = false

    public init(url: String) throws {
        guard url.hasPrefix("clickhouse://") else {
            throw UsageBoxError.invalidArgument("a ClickHouse store is clickhouse://host:port/database, got '\(Self.redacted(url))'", field: "store")
        }
        var rest = Substring(url.dropFirst("clickhouse://".count))
        var query = ""
        if let q = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: q)...])
            rest = rest[..<q]
        }
        guard let slash = rest.firstIndex(of: "/") else {
            throw UsageBoxError.invalidArgument("name the database: clickhouse://host:port/database", field: "store")
        }
        hosts = rest[..<slash].split(separator: ",").map(String.init)
        database = String(rest[rest.index(after: slash)...])
        // host:port (a name, an IPv4 or a [bracketed] IPv6 address): a `#` in a host made every
        // setting of each statement — readonly, limits, the user and password — a URL fragment,
        // never sent.
        guard !hosts.isEmpty, hosts.allSatisfy(Self.isHostPort) else {
            throw UsageBoxError.invalidArgument(
                "name at least one host:port, each a name or address and a port (credentials go in ?user=&password=)", field: "store")
        }
        // ASCII, as ClickHouse's unquoted names are (`t2_é` passed and failed in ClickHouse's
        // parser); at most 64, so no path on the server outgrows its limits.
        guard !database.isEmpty, database.utf8.count <= 64, database.utf8.allSatisfy(Self.isNameByte) else {
            throw UsageBoxError.invalidArgument("the database name is 1–64 of A–Z, a–z, 0–9 and _, got '\(database.prefix(80))'", field: "store")
        }
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            guard kv.count == 2 else { continue }
            switch kv[0] {
            case "user": user = kv[1]
            case "password": password = kv[1]
            case "cluster": cluster = kv[1]
            case "replicated":
                switch kv[1] {
                case "true", "1": replicated = true
                case "false", "0": replicated = false
                default: throw UsageBoxError.invalidArgument("replicated is true or false, got '\(kv[1])'", field: "store")
                }
            default: throw UsageBoxError.invalidArgument("unknown store option '\(kv[0])' (user, password, cluster, replicated)", field: "store")
            }
        }
        if let cluster, cluster.isEmpty || cluster.utf8.count > 64 || !cluster.utf8.allSatisfy(Self.isNameByte) {
            throw UsageBoxError.invalidArgument("the cluster name is 1–64 of A–Z, a–z, 0–9 and _, got '\(cluster.prefix(80))'", field: "store")
        }
    }

    static func isNameByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"): true
        default: false
        }
    }

    static func isHostPort(_ s: String) -> Bool {
        guard let colon = s.lastIndex(of: ":") else { return false }
        let host = s[..<colon], port = s[s.index(after: colon)...]
        guard !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber), Int(port).map({ $0 > 0 && $0 < 65536 }) == true
        else { return false }
        if host.hasPrefix("["), host.hasSuffix("]") {
            return host.count > 2 && host.dropFirst().dropLast().utf8.allSatisfy { b in isNameByte(b) || b == UInt8(ascii: ":") || b == UInt8(ascii: ".") }
        }
        return !host.isEmpty && host.utf8.count <= 253
            && host.utf8.allSatisfy { b in isNameByte(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") }
    }

    /// The URL with its password replaced, for logs and messages.
    /// Every `password=` value is replaced (a URL may repeat the option; the last one counts).
    public static func redacted(_ url: String) -> String {
        var out = url
        var from = out.startIndex
        while let range = out.range(of: "password=", range: from..<out.endIndex) {
            let end = out[range.upperBound...].firstIndex(of: "&") ?? out.endIndex
            out.replaceSubrange(range.upperBound..<end, with: "***")
            from = out.index(range.upperBound, offsetBy: 3)
        }
        return out
    }
}

/// A ClickHouse server error, with its code (`Code: 60`), kept for callers that map some of them.
struct ClickHouseError: Error, CustomStringConvertible {
    var code: Int?
    var message: String
    var description: String { message }
}

/// ClickHouse's HTTP interface: statements as request bodies, answers as `JSONCompact`, rows in as
/// `JSONEachRow`. Every value put into SQL text goes through `quote` (strings) or is an integer.
struct ClickHouseClient: Sendable {
    let host: String
    let user: String?
    let password: String?
    let timeout: TimeAmount
    /// Settings every statement sends (a statement's own win).
    let defaults: [String: String]

    /// How the refusal of an answer past its limit begins.
    static let answerLimitPrefix = "the answer is larger than "

    /// The longest a read (`idempotent`) waits for ClickHouse's answer; writes wait `timeout`.
    let readTimeout: TimeAmount

    init(
        host: String, user: String?, password: String?, timeoutSeconds: Int64 = 300, readTimeoutSeconds: Int64 = 30,
        defaults: [String: String] = [:]
    ) {
        self.readTimeout = .seconds(readTimeoutSeconds)
        self.host = host
        self.user = user
        self.password = password
        self.timeout = .seconds(timeoutSeconds)
        self.defaults = defaults
    }

    /// A SQL string literal.
    static func quote(_ s: String) -> String {
        var out = "'"
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case "\0": out += "\\0"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "'"
    }

    static func list(_ values: [String]) -> String { values.map(quote).joined(separator: ", ") }

    /// The HTTP client of every ClickHouse store in the process. ClickHouse closes a keep-alive
    /// connection idle for `keep_alive_timeout` (10 s on 18.16, 3 s on older servers); pooled
    /// connections are dropped sooner, so a statement rarely meets one the server is closing. A
    /// server that is down is given up on after 2 s of trying to connect (the client's default
    /// keeps retrying a refused connection for 10 s): a write fails fast, a read moves on to a
    /// replica.
    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration(connectionPool: .init(idleTimeout: .seconds(2)))
        configuration.timeout.connect = .seconds(2)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// How an error begins when ClickHouse did not answer at all (down, refused, timed out).
    static let unreachable = "cannot reach ClickHouse at "

    static func isUnreachable(_ error: any Error) -> Bool { (error as? UsageBoxError)?.message.hasPrefix(unreachable) == true }

    /// Whether a request failed because its pooled connection was closed under it (the server
    /// closed it, or reset it, before answering): a statement that is safe to repeat is sent again.
    static func isClosedConnection(_ error: any Error) -> Bool {
        if let e = error as? HTTPClientError { return e == .remoteConnectionClosed }
        if let e = error as? IOError { return [ECONNRESET, EPIPE].contains(e.errnoCode) }
        if let e = error as? ChannelError { return e == .ioOnClosedChannel || e == .eof }
        return false
    }

    /// Runs a statement; the answer's body, at most `limit` bytes. A statement that is safe to
    /// repeat (`idempotent`: reads) is sent once more when its connection was closed under it.
    func execute(
        _ sql: String, settings: [String: String] = [:], body: [UInt8]? = nil, limit: Int = 256 << 20, idempotent: Bool = false
    ) async throws -> ByteBuffer {
        var params = defaults.merging(settings) { $1 }
        // A read inside a request is bounded by its deadline (`WorkDeadline`), unless the
        // statement brings its own limit (SQL).
        let deadline = idempotent && settings["max_execution_time"] == nil ? WorkDeadline.current : nil
        var readLimit = readTimeout
        if let deadline {
            try deadline.check()
            params["max_execution_time"] = String(Int(deadline.remainingSeconds.rounded(.up)))
            readLimit = min(readLimit, .milliseconds(Int64(deadline.remainingSeconds * 1000) + 1000))
        }
        if let user { params["user"] = user }
        if let password { params["password"] = password }
        var url = "http://\(host)/"
        var payload: [UInt8]
        if let body {
            params["query"] = sql
            payload = body
        } else {
            payload = Array(sql.utf8)
        }
        if !params.isEmpty {
            let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
            url +=
                "?"
                + params.sorted { $0.key < $1.key }.map {
                    "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.value)"
                }.joined(separator: "&")
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.body = .bytes(ByteBuffer(bytes: payload))
        var response: HTTPClientResponse?
        for attempt in 0..<2 where response == nil {
            do {
                // A read is given at most `readTimeout`: a ClickHouse that takes connections and
                // never answers held each request for the whole 300 s.
                response = try await Self.http.execute(request, timeout: idempotent ? min(timeout, readLimit) : timeout)
            } catch {
                try deadline?.check()
                guard idempotent, attempt == 0, Self.isClosedConnection(error) else {
                    throw UsageBoxError.unavailable(Self.unreachable + "\(host): \(error)")
                }
            }
        }
        guard let response else { throw UsageBoxError.unavailable(Self.unreachable + host) }
        let answer: ByteBuffer
        do {
            answer = try await response.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw UsageBoxError.invalidArgument(
                Self.answerLimitPrefix + "\(limit >> 20) MiB; narrow the query (a shorter range, fewer dimensions in group_by or the filters)")
        } catch {
            // An answer cut off on the way (ClickHouse or the network closed the connection) is
            // "not now", to retry: as a 400 it told a client to drop its batch.
            throw UsageBoxError.unavailable("the answer of ClickHouse at \(host) was cut off: \(error)")
        }
        guard response.status == .ok else {
            let text = String(buffer: answer).trimmingCharacters(in: .whitespacesAndNewlines)
            var code: Int?
            if text.hasPrefix("Code: "), let end = text.firstIndex(of: ",") {
                code = Int(text[text.index(text.startIndex, offsetBy: 6)..<end])
            }
            if let deadline, code == 159 { throw deadline.timeoutError }  // TIMEOUT_EXCEEDED
            throw ClickHouseError(code: code, message: text)
        }
        return answer
    }

    /// A statement that answers nothing (DDL, inserts with VALUES).
    func command(_ sql: String, settings: [String: String] = [:]) async throws {
        _ = try await execute(sql, settings: settings)
    }

    /// The rows of a query, each a list of values as ClickHouse writes them in JSON (64-bit
    /// integers as strings, by default), and the column types.
    func rows(_ sql: String, settings: [String: String] = [:], limit: Int = 256 << 20) async throws -> (names: [String], types: [String], rows: [[JSONValue]]) {
        let answer = try await execute(sql + "\nFORMAT JSONCompact", settings: settings, limit: limit, idempotent: true)
        let value = try answer.withUnsafeReadableBytes { try JSONParser.parse(bytes: $0.bindMemory(to: UInt8.self)) }
        let meta = value["meta"]?.arrayValue ?? []
        let rows = (value["data"]?.arrayValue ?? []).map { $0.arrayValue ?? [] }
        return (meta.map { $0["name"]?.stringValue ?? "" }, meta.map { $0["type"]?.stringValue ?? "" }, rows)
    }

    /// Inserts rows (JSON objects) in one statement: one part, all or nothing.
    func insert(into table: String, _ rows: [JSONValue], settings: [String: String] = [:]) async throws {
        guard !rows.isEmpty else { return }
        var body: [UInt8] = []
        body.reserveCapacity(rows.count * 256)
        for row in rows {
            body += Array(JSONWriter.write(row).utf8)
            body.append(0x0A)
        }
        _ = try await execute("INSERT INTO \(table) FORMAT JSONEachRow", settings: settings, body: body)
    }
}

extension JSONValue {
    /// A ClickHouse integer, written as a number or (64-bit) as a string.
    var chInt: Int64? {
        switch self {
        case let .number(n): return Int64(exactly: n)
        case let .string(s): return Int64(exactly: s)
        default: return nil
        }
    }

    var chString: String? { stringValue }
}
