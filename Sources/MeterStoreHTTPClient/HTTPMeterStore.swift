import AsyncHTTPClient
public import ExactJSON
import Foundation
public import Metering
import NIOCore
import NIOHTTP1

/// A `MeterStore` that is a running UsageBox server: the CLI's `--server URL --key K` mode, so
/// every read and ingest works the same on a local file or a remote UsageBox.
///
/// The key decides which accounts are visible; the server seals segments itself.
public final class HTTPMeterStore: MeterStore {
    public let baseURL: String
    let key: String
    let timeout: TimeAmount
    /// Sent with every request (a forwarding server marks its writes with `WriteRouting.header`).
    let extraHeaders: [(String, String)]

    public init(baseURL: String, key: String, timeoutSeconds: Int64 = 120, extraHeaders: [(String, String)] = []) throws {
        self.extraHeaders = extraHeaders
        guard baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://") else {
            throw UsageBoxError.invalidArgument("--server must be an http:// or https:// URL, got '\(baseURL)'", field: "server")
        }
        guard !key.isEmpty else { throw UsageBoxError.invalidArgument("--server needs --key (or $USAGEBOX_KEY)", field: "key") }
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.key = key
        self.timeout = .seconds(timeoutSeconds)
    }

    static func escape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:")) ?? s
    }

    /// A transport failure in words: NIO's own text for a socket error ("connection reset (error
    /// set): Connection refused) (errno: 111)") names two failures and leaves a parenthesis open.
    static func describe(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }

    func call(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil) async throws -> JSONValue {
        try await call(method, path, query: query, body: body.map { Array(JSONWriter.write($0).utf8) })
    }

    func call(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: [UInt8]?) async throws -> JSONValue {
        var url = baseURL + path
        if !query.isEmpty { url += "?" + query.map { Self.escape($0.0) + "=" + Self.escape($0.1) }.joined(separator: "&") }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        for (name, value) in extraHeaders { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        var response: HTTPClientResponse
        var attempt = 0
        while true {
            do {
                response = try await HTTPClient.shared.execute(request, timeout: timeout)
            } catch {
                throw UsageBoxError(.internal, "cannot reach \(baseURL): \(Self.describe(error))", field: "server")
            }
            // A busy server answers 429 with Retry-After: wait as told, a bounded number of times.
            guard response.status.code == 429, attempt < 30 else { break }
            attempt += 1
            let wait = response.headers.first(name: "Retry-After").flatMap(Int64.init) ?? 1
            _ = try? await response.body.collect(upTo: 1 << 20)
            try await Task.sleep(for: .seconds(min(max(wait, 1), 10)))
        }
        let buffer = try await response.body.collect(upTo: 256 << 20)
        let value = try? buffer.withUnsafeReadableBytes { try JSONParser.parse(bytes: $0.bindMemory(to: UInt8.self)) }
        guard (200..<300).contains(Int(response.status.code)) else {
            let error = value?["error"]
            let codeText = error?["code"]?.stringValue ?? ""
            let code = UsageBoxError.Code(rawValue: codeText) ?? (response.status.code == 404 ? .notFound : .internal)
            var failure = UsageBoxError(
                code, "server answered \(response.status.code): \(error?["message"]?.stringValue ?? String(buffer: buffer))",
                field: error?["field"]?.stringValue)
            // Passed on (a forwarded write whose owner's store is down): the wait it was told.
            failure.retryAfter = response.headers.first(name: "Retry-After").flatMap(Int.init)
            throw failure
        }
        guard let value else { throw UsageBoxError(.internal, "the server's answer is not JSON") }
        return value
    }

    public func ingest(_ prepared: IngestBatch) async throws -> IngestResponse {
        // The server prepares its own batches; only the items travel, in requests of at most
        // `UsageBatchBody.maxEvents` events and half the body limit (each event written once).
        let batch = prepared.items
        var total = IngestResponse()
        var local = IngestResponse()
        var body: [UInt8] = []
        var wireIndex: [Int] = []
        func send() async throws {
            if !wireIndex.isEmpty {
                body.append(contentsOf: "]}".utf8)
                let answer: JSONValue
                do {
                    answer = try await call(.POST, "/v1/usage/batch", body: body)
                } catch let e as UsageBoxError where e.eventIndex.map(wireIndex.indices.contains) == true {
                    // The request's place of the event → its place in the batch that was split (a
                    // place the request did not have is passed on as the server said it).
                    let places = wireIndex
                    throw e.renumbered { places[$0] }
                }
                var remote = try Self.read(IngestResponse.self, answer)
                for i in remote.errors.indices { remote.errors[i].index = wireIndex[remote.errors[i].index] }
                local.add(remote)
            }
            local.errors.sort { $0.index < $1.index }
            total.add(local)
            local = IngestResponse()
            body = Array(#"{"events":["#.utf8)
            wireIndex = []
        }
        body = Array(#"{"events":["#.utf8)
        for (i, item) in batch.enumerated() {
            switch item {
            case let .event(e):
                let text = JSONWriter.write(e.jsonValue).utf8
                if !wireIndex.isEmpty, wireIndex.count == UsageBatchBody.maxEvents || body.count + text.count + 3 > UsageBatchBody.maxBodyBytes / 2 {
                    try await send()
                }
                if !wireIndex.isEmpty { body.append(UInt8(ascii: ",")) }
                body.append(contentsOf: text)
                wireIndex.append(i)
            case let .invalid(r):
                // Events that failed to decode locally never travel; their rejections keep their index.
                local.rejected += 1
                local.errors.append(.init(index: i, eventID: r.eventID, status: .rejected, code: r.code, message: r.message, field: r.field))
            }
        }
        try await send()
        return total
    }

    public func usage(_ query: UsageQuery) async throws -> UsageResult {
        let answer = try await call(.POST, "/v1/query/json", body: try query.jsonBody().jsonValue)
        return try Self.read(UsageResult.self, answer, userInfo: [UsageResult.queryKey: query])
    }

    public func verify(_ request: VerifyRequest) async throws -> VerifyReport {
        var q = [("from", request.range.from.rfc3339), ("to", request.range.to.rfc3339), ("mode", request.mode.rawValue)]
        if request.byDay { q.append(("group_by", "day")) }
        return try Self.read(VerifyReport.self, try await call(.GET, "/v1/accounts/\(Self.escape(request.account))/verify", query: q))
    }

    public func explain(account: String, range: TimeRange) async throws -> ExplainReport {
        let v = try await call(
            .GET, "/v1/accounts/\(Self.escape(account))/explain",
            query: [("from", range.from.rfc3339), ("to", range.to.rfc3339)])
        return try Self.read(ExplainReport.self, v)
    }

    /// Through the server's SQL view (ids are checked identifiers, so quoting them is safe), in
    /// statements under the server's SQL size bound. A ClickHouse-backed server answers this to
    /// admin keys only, as it does all SQL.
    public func storedEvents(account: String, ids: [String]) async throws -> [UsageEvent] {
        try StoredEventLookup.check(account: account, ids: ids)
        var found: [String: UsageEvent] = [:]
        var pending = Array(Set(ids)).sorted()
        while !pending.isEmpty {
            var chunk: [String] = []
            var bytes = 0
            while let id = pending.last, chunk.isEmpty || bytes + id.utf8.count + 4 < 60_000 {
                chunk.append(pending.removeLast())
                bytes += id.utf8.count + 4
            }
            let answer = try await sql(
                "SELECT event_id, meter_id, model_id, kind, correction_ref, quantity, unit, timestamp, dimensions FROM usage_events "
                    + "WHERE account_id = '\(account)' AND event_id IN (\(chunk.map { "'\($0)'" }.joined(separator: ", ")))",
                scope: .accounts([account]), timeLimitSeconds: 30, rowLimit: StoredEventLookup.maxIDs)
            guard !answer.truncated else { throw UsageBoxError(.internal, "the server cut short its answer of \(chunk.count) event ids") }
            for r in answer.rows {
                guard r.count == 9, let id = r[0].stringValue, let meter = r[1].stringValue,
                    let kind = r[3].stringValue.flatMap(EventKind.init(rawValue:)),
                    let quantity = r[5].exactInt64 ?? r[5].stringValue.flatMap({ Int64($0) }),
                    let ts = r[7].stringValue.flatMap(Timestamp.init(rfc3339:)), let dims = r[8].stringValue
                else { throw UsageBoxError(.internal, "the server's event rows do not fit the usage_events view") }
                found[id] =
                    found[id]
                    ?? UsageEvent(
                        eventID: id, accountID: account, meterID: meter, modelID: r[2].stringValue, kind: kind, correctionRef: r[4].stringValue,
                        quantity: quantity, unit: r[6].stringValue, timestamp: ts, sortedDimensions: UsageEvent.decodeDimensions(dims))
            }
        }
        return Array(found.values)
    }

    public func closePeriod(account: String, period: String) async throws -> PeriodRecord {
        try Self.read(
            PeriodRecord.self,
            try await call(
                .POST, "/v1/accounts/\(Self.escape(account))/periods/close",
                body: PeriodCloseBody(period: period).jsonValue))
    }

    public func periods(account: String) async throws -> [PeriodRecord] {
        let v = try await call(.GET, "/v1/accounts/\(Self.escape(account))/periods")
        return try Self.read(PeriodList.self, v).periods
    }

    public func meters(scope: AccountScope) async throws -> [MeterInfo] {
        let v = try await call(.GET, "/v1/meters")
        return try Self.read(MeterList.self, v).meters
    }

    public func setMeter(_ meterID: String, unit: String?, rollupDimensions: [String]?) async throws -> MeterInfo {
        let body = MeterSettingsBody(unit: unit, rollupDimensions: rollupDimensions)
        return try Self.read(MeterInfo.self, try await call(.PUT, "/v1/meters/\(Self.escape(meterID))", body: body.jsonValue))
    }

    public func sql(_ query: String, scope: AccountScope, timeLimitSeconds: Double, rowLimit: Int) async throws -> SQLResult {
        // The scope and the limit go with the query: dropped, `--account` answered for every account.
        let account: String?
        switch scope {
        case .all: account = nil
        case let .accounts(list):
            guard list.count == 1 else { throw UsageBoxError.invalidArgument("a remote query names one account or all", field: "account_id") }
            account = list[0]
        }
        // Members only when they say something (a server before them refuses a body naming them):
        // no account, and no limit at or past the server's default.
        let body = SQLQueryBody(
            sql: query, accountID: account, timeoutSeconds: timeLimitSeconds < SQLQueryBody.defaultTimeoutSeconds ? timeLimitSeconds : nil)
        var value = body.jsonValue
        if case let .object(members) = value { value = .object(members.filter { $0.1 != .null }) }
        return try Self.read(SQLResult.self, try await call(.POST, "/v1/query/sql", body: value))
    }

    /// An answer read back into its shape; an answer that does not fit is the server's fault.
    static func read<T: WireShape>(_ type: T.Type, _ value: JSONValue, userInfo: [CodingUserInfoKey: any Sendable] = [:]) throws -> T {
        do {
            return try T.decode(value, userInfo: userInfo)
        } catch let f as JSONValueDecoder.Failure {
            throw UsageBoxError(.internal, "the server's answer does not fit \(T.self): \(f)")
        }
    }

    public func sealOpenSegments() async throws {}
    public func sealExpiredSegments() async throws {}
}

extension HTTPMeterStore {
    /// `POST /v1/reconciliations/{id}/apply|revert` on the server: the CLI's `reconcile apply` and
    /// `reconcile revert` with `--server`, so the server's record of the run is the one changed.
    /// The answer is the batch answer (revert) or `ApplyAnswer` (apply).
    public func reconciliationAction<Answer: WireShape>(_ action: String, id: String, confirmLarge: Bool = false) async throws -> Answer {
        let answer = try await call(
            .POST, "/v1/reconciliations/\(Self.escape(id))/\(action)",
            query: confirmLarge ? [("confirm_large", "true")] : [])
        return try Self.read(Answer.self, answer)
    }
}

extension HTTPMeterStore {
    /// `POST /v1/reconciliations` with the JSON request: the server runs and records it, so its
    /// apply and revert, its turn-taking and its checks of other runs are the ones used (the
    /// CLI's `reconcile run --server`). The report's JSON text.
    public func reconcile(request: JSONValue) async throws -> String {
        JSONWriter.write(try await call(.POST, "/v1/reconciliations", body: request))
    }

    /// `GET /v1/reconciliations?[account=…&]limit=…[&before=…[&before_id=…]]`: the recorded runs
    /// the key may see, newest first, as the server's JSON (`ReconciliationList`).
    public func reconciliationListText(account: String?, limit: Int, before: String?, beforeID: String?) async throws -> String {
        let query = [("account", account), ("limit", String(limit)), ("before", before), ("before_id", beforeID)].compactMap { name, value in
            value.map { (name, $0) }
        }
        return JSONWriter.write(try await call(.GET, "/v1/reconciliations", query: query))
    }

    /// `GET /v1/reconciliations/{id}`: the stored report's JSON text.
    public func reconciliationReportText(id: String) async throws -> String {
        JSONWriter.write(try await call(.GET, "/v1/reconciliations/\(Self.escape(id))"))
    }
}
