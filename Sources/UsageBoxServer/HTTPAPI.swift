import ExactJSON
public import Hummingbird
public import Logging
public import Metering

/// The composition of the HTTP API: one router over a meter store and a key store.
public struct HTTPAPI: Sendable {
    public static let maxBodyBytes = 16 << 20
    public static let maxBatchEvents = 10_000

    public var store: any MeterStore
    public var keys: any KeyStore
    /// The secret of `USAGEBOX_KEY` at start: an admin key that lives only in this process.
    public var environmentAdminSecret: String?
    public var decoder: EventDecoder
    /// Extra routes (reconciliation) mounted by the composition root.
    public var sqlTimeLimitSeconds: Double = 10
    /// Reconciliation (docs/api.md), when the composition root provides it.
    public var reconciliation: (any ReconciliationBackend)?
    public var reconciliationLog: (any ReconciliationLog)?
    public let limits: RequestLimits
    let work: WorkLimiter
    let authFailures: AuthFailureLimiter

    public init(store: any MeterStore, keys: any KeyStore, environmentAdminSecret: String?, decoder: EventDecoder = EventDecoder(),
                limits: RequestLimits = RequestLimits()) {
        self.store = store
        self.keys = keys
        self.environmentAdminSecret = environmentAdminSecret?.isEmpty == true ? nil : environmentAdminSecret
        self.decoder = decoder
        self.limits = limits
        work = WorkLimiter(perKey: limits.expensivePerKey, overall: limits.expensiveOverall)
        authFailures = AuthFailureLimiter(perMinute: limits.failedAuthPerMinute)
    }

    /// Runs an expensive request (SQL, JSON query, verify, explain, reconciliation) within the
    /// per-key and overall limits; beyond them the answer is 429 with Retry-After.
    func expensive<T>(_ key: APIKey, _ body: () async throws -> T) async throws -> T {
        try await work.acquire(key.keyID)
        do {
            let value = try await body()
            await work.release(key.keyID)
            return value
        } catch {
            await work.release(key.keyID)
            throw error
        }
    }

    public func buildRouter() -> Router<UsageBoxRequestContext> {
        let router = Router(context: UsageBoxRequestContext.self)
        router.add(middleware: RequestLogMiddleware())
        router.add(middleware: APIErrorMiddleware())
        router.get("/healthz") { _, _ in JSONResponse.make(.object([("status", .string("ok"))])) }
        router.get("/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
        router.post("/v1/usage/batch") { request, context in try await ingest(request, context) }
        router.get("/v1/accounts/:account/usage") { request, context in
            let (key, account) = try await authorize(request, context, role: .reader)
            let q = try UsageQuery.fromParameters(try parameters(request), scope: key.scope.intersect(.accounts([account])))
            try checkBuckets(q.range, q.groupBy)
            return JSONResponse.make(try await store.usage(q).jsonValue)
        }
        router.get("/v1/usage") { request, context in
            let key = try await authenticate(request, context)
            let q = try UsageQuery.fromParameters(try parameters(request), scope: key.scope)
            try checkBuckets(q.range, q.groupBy)
            return JSONResponse.make(try await store.usage(q).jsonValue)
        }
        router.get("/v1/accounts/:account/verify") { request, context in
            let (key, account) = try await authorize(request, context, role: .reader)
            let params = try parameters(request)
            let allowed: Set<String> = ["from", "to", "group_by", "mode"]
            for (name, _) in params where !allowed.contains(name) {
                throw UsageBoxError.invalidArgument("unknown parameter '\(name)'", field: name)
            }
            let value = { (name: String) in params.last { $0.0 == name }?.1 }
            let range = try TimeRange(from: value("from"), to: value("to"))
            var mode = VerifyMode.deep
            if let m = value("mode") {
                guard let parsed = VerifyMode(rawValue: m) else { throw UsageBoxError.invalidArgument("mode is deep or incremental", field: "mode") }
                mode = parsed
            }
            if let g = value("group_by"), g != "day" { throw UsageBoxError.invalidArgument("verify groups only by day", field: "group_by") }
            if value("group_by") == "day" { try checkBuckets(range, [.day]) }
            let report = try await expensive(key) {
                try await store.verify(VerifyRequest(account: account, range: range, mode: mode, byDay: value("group_by") == "day"))
            }
            return JSONResponse.make(report.jsonValue)
        }
        router.get("/v1/accounts/:account/explain") { request, context in
            let (key, account) = try await authorize(request, context, role: .reader)
            let params = try parameters(request)
            let value = { (name: String) in params.last { $0.0 == name }?.1 }
            let range = try TimeRange(from: value("from"), to: value("to"))
            return JSONResponse.make(try await expensive(key) { try await store.explain(account: account, range: range) }.jsonValue)
        }
        router.post("/v1/accounts/:account/periods/close") { request, context in
            let (_, account) = try await authorize(request, context, role: .writer)
            let body = try await jsonBody(request)
            guard let period = body["period"]?.stringValue else {
                throw UsageBoxError.invalidArgument("the body needs {\"period\": \"YYYY-MM\"}", field: "period")
            }
            return JSONResponse.make(try await store.closePeriod(account: account, period: period).jsonValue)
        }
        router.get("/v1/accounts/:account/periods") { request, context in
            let (_, account) = try await authorize(request, context, role: .reader)
            let records = try await store.periods(account: account)
            return JSONResponse.make(.object([("account_id", .string(account)), ("periods", .array(records.map(\.jsonValue)))]))
        }
        router.post("/v1/query/sql") { request, context in
            let key = try await authenticate(request, context)
            let body = try await jsonBody(request)
            guard let sql = body["sql"]?.stringValue, !sql.isEmpty else {
                throw UsageBoxError.invalidArgument("the body needs {\"sql\": \"SELECT …\"}", field: "sql")
            }
            let answer = try await expensive(key) {
                try await store.sql(sql, scope: key.scope, timeLimitSeconds: sqlTimeLimitSeconds, rowLimit: 10_000)
            }
            return JSONResponse.make(answer.jsonValue)
        }
        router.post("/v1/query/json") { request, context in
            let key = try await authenticate(request, context)
            let body = try await jsonBody(request)
            var scope = key.scope
            if let account = try UsageQuery.jsonQueryAccount(body) {
                guard key.scope.allows(account) else { throw forbidden(account) }
                scope = .accounts([account])
            }
            let q = try UsageQuery.fromJSON(body, scope: scope)
            try checkBuckets(q.range, q.groupBy)
            return JSONResponse.make(try await expensive(key) { try await store.usage(q) }.jsonValue)
        }
        router.get("/v1/meters") { request, context in
            let key = try await authenticate(request, context)
            let meters = try await store.meters(scope: key.scope)
            return JSONResponse.make(.object([("meters", .array(meters.map(\.jsonValue)))]))
        }
        router.put("/v1/meters/:meter_id") { request, context in
            let key = try await authenticate(request, context)
            guard key.role == .admin else { throw UsageBoxError(.permissionDenied, "only admin keys manage meters") }
            let meterID = context.parameters.get("meter_id") ?? ""
            let body = try await jsonBody(request)
            guard case let .object(members) = body else { throw UsageBoxError.invalidArgument("the body must be a JSON object") }
            var unit: String?
            var dims: [String]?
            for (k, v) in members {
                switch (k, v) {
                case ("unit", .string(let s)): unit = s
                case ("unit", .null): break
                case ("rollup_dimensions", .array(let a)):
                    dims = try a.map {
                        guard let s = $0.stringValue else { throw UsageBoxError.invalidArgument("rollup_dimensions holds names", field: "rollup_dimensions") }
                        return s
                    }
                case ("rollup_dimensions", .null): break
                case ("unit", _), ("rollup_dimensions", _):
                    throw UsageBoxError.invalidArgument("\(k) has the wrong type (\(v.typeName))", field: k)
                default:
                    throw UsageBoxError.invalidArgument("unknown field '\(k)'", field: k)
                }
            }
            return JSONResponse.make(try await store.setMeter(meterID, unit: unit, rollupDimensions: dims).jsonValue)
        }
        addReconciliationRoutes(to: router)
        return router
    }

    /// The key presented with the request; 401 when missing or unknown.
    /// The key presented with the request; 401 when missing or unknown, 429 for a client that failed
    /// too often in the last minute (checked before the key, so guessing costs nothing extra).
    func authenticate(_ request: Request, _ context: UsageBoxRequestContext) async throws -> APIKey {
        let client = context.clientAddress
        try await authFailures.check(client)
        do {
            return try await presentedKey(request)
        } catch let e as UsageBoxError where e.code == .unauthenticated {
            await authFailures.record(client)
            throw e
        }
    }

    func presentedKey(_ request: Request) async throws -> APIKey {
        guard let header = request.headers[.authorization] else {
            throw UsageBoxError(.unauthenticated, "missing Authorization: Bearer <key>")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw UsageBoxError(.unauthenticated, "the Authorization header must be 'Bearer <key>'")
        }
        let secret = String(parts[1].filter { $0 != " " })
        if let env = environmentAdminSecret, constantTimeEquals(secret, env) {
            return APIKey(keyID: "env:USAGEBOX_KEY", accountID: nil, role: .admin, createdAt: Timestamp(microseconds: 0), revokedAt: nil)
        }
        guard let key = try await keys.authenticate(secret: secret) else {
            throw UsageBoxError(.unauthenticated, "unknown or revoked key")
        }
        return key
    }

    /// Answers that group by hour, day or month hold at most `limits.maxTimeBuckets` buckets.
    func checkBuckets(_ range: TimeRange, _ groupBy: [UsageField]) throws {
        let span = range.to.microseconds - range.from.microseconds
        for field in groupBy {
            let size: Int64
            switch field {
            case .hour: size = Timestamp.microsPerHour
            case .day: size = Timestamp.microsPerHour * 24
            case .month: size = Timestamp.microsPerHour * 24 * 28
            default: continue
            }
            let buckets = span / size + 1
            guard buckets <= Int64(limits.maxTimeBuckets) else {
                throw UsageBoxError.invalidArgument(
                    "grouping by \(field.name) over this range gives \(buckets) buckets; an answer holds at most \(limits.maxTimeBuckets): narrow from/to",
                    field: "group_by")
            }
        }
    }

    /// The key and the route's account, when the key may act on it with at least `role`.
    func authorize(_ request: Request, _ context: UsageBoxRequestContext, role: KeyRole) async throws -> (APIKey, String) {
        let key = try await authenticate(request, context)
        let account = context.parameters.get("account") ?? ""
        guard key.scope.allows(account) else { throw forbidden(account) }
        try require(key, role)
        return (key, account)
    }

    func require(_ key: APIKey, _ role: KeyRole) throws {
        let rank: [KeyRole: Int] = [.reader: 0, .writer: 1, .admin: 2]
        guard rank[key.role]! >= rank[role]! else {
            throw UsageBoxError(.permissionDenied, "a \(key.role.rawValue) key cannot do this; it needs a \(role.rawValue) key")
        }
    }

    func forbidden(_ account: String) -> UsageBoxError {
        UsageBoxError(.permissionDenied, "this key may not see account \(account)", field: "account_id")
    }

    func parameters(_ request: Request) throws -> [(String, String)] {
        do {
            return try QueryString.parse(request.uri.query ?? "")
        } catch let e as QueryString.BadQuery {
            throw UsageBoxError.invalidArgument("bad percent-encoding in the query: \(e.text)")
        }
    }

    func jsonBody(_ request: Request) async throws -> JSONValue {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.maxBodyBytes)
        } catch {
            throw UsageBoxError(.payloadTooLarge, "the body is larger than 16 MiB")
        }
        do {
            return try buffer.withUnsafeReadableBytes { try JSONParser.parse(bytes: $0.bindMemory(to: UInt8.self)) }
        } catch let e as JSONParseError {
            throw UsageBoxError.invalidArgument("malformed JSON body at line \(e.line), column \(e.column): \(e.message)", field: "body")
        }
    }

    func ingest(_ request: Request, _ context: UsageBoxRequestContext) async throws -> Response {
        let key = try await authenticate(request, context)
        try require(key, .writer)
        let body = try await jsonBody(request)
        guard case let .object(members) = body else { throw UsageBoxError.invalidArgument("the body must be {\"events\": [...]}", field: "events") }
        // A misspelt member would be ignored silently otherwise: unknown members are refused, as for events.
        if let unknown = members.first(where: { $0.0 != "events" }) {
            throw UsageBoxError.invalidArgument("unknown field '\(unknown.0)' in the batch (it holds only \"events\")", field: unknown.0)
        }
        guard let eventsValue = body["events"] else { throw UsageBoxError.invalidArgument("the body needs an \"events\" array", field: "events") }
        guard case let .array(events) = eventsValue else {
            throw UsageBoxError.invalidArgument("\"events\" must be an array, got \(eventsValue.typeName)", field: "events")
        }
        guard events.count <= Self.maxBatchEvents else {
            throw UsageBoxError(.payloadTooLarge, "a batch holds at most \(Self.maxBatchEvents) events, got \(events.count)", field: "events")
        }
        let items = events.map(decoder.decode)
        // A key bound to an account writes only that account: one foreign event refuses the whole batch.
        if case .accounts = key.scope {
            for case let .event(e) in items where !key.scope.allows(e.accountID) { throw forbidden(e.accountID) }
        }
        return JSONResponse.make(try await store.ingest(items).jsonValue)
    }
}
