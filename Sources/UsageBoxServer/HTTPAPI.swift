import ExactJSON
import Foundation
public import Hummingbird
public import Logging
public import Metering
import NIOCore
public import ReconCore

/// The composition of the HTTP API: one router over a meter store and a key store.
public struct HTTPAPI: Sendable {
    public static let maxBodyBytes = UsageBatchBody.maxBodyBytes
    public static let maxBatchEvents = UsageBatchBody.maxEvents

    public var store: any MeterStore
    public var keys: any KeyStore
    /// The secret of `USAGEBOX_KEY` at start: an admin key that lives only in this process.
    public var environmentAdminSecret: String?
    public var decoder: EventDecoder
    public var sqlTimeLimitSeconds: Double = SQLQueryBody.defaultTimeoutSeconds
    /// Reconciliation (docs/api.md), when the composition root provides it.
    public var reconciliation: (any ReconciliationBackend)?
    public var reconciliationLog: (any ReconciliationLog)?
    public let limits: RequestLimits
    let work: WorkLimiter
    let largeBodies: WorkLimiter
    let smallBodies: WorkLimiter
    let reads: WorkLimiter
    let authFailures: AuthFailureLimiter
    /// Browser sessions of the pages under /ui/.
    let sessions = UISessions()
    /// The Prometheus metrics served at /metrics, when the composition root provides them.
    public var metrics: ServerMetrics?

    public init(
        store: any MeterStore, keys: any KeyStore, environmentAdminSecret: String?, decoder: EventDecoder = EventDecoder(),
        limits: RequestLimits = RequestLimits()
    ) {
        self.store = store
        self.keys = keys
        self.environmentAdminSecret = environmentAdminSecret?.isEmpty == true ? nil : environmentAdminSecret
        self.decoder = decoder
        self.limits = limits
        work = WorkLimiter(perKey: limits.expensivePerKey, overall: limits.expensiveOverall)
        largeBodies = WorkLimiter(perKey: limits.largeBodiesPerKey, overall: limits.largeBodiesOverall, what: "requests with bodies over 1 MiB")
        smallBodies = WorkLimiter(
            perKey: limits.smallBodyBytesPerKey, overall: limits.smallBodyBytesOverall, what: "of request bodies up to 1 MiB",
            amount: WorkLimiter.mebibytes)
        reads = WorkLimiter(perKey: limits.readsPerKey, overall: limits.readsOverall, what: "usage reads")
        authFailures = AuthFailureLimiter(perMinute: limits.failedAuthPerMinute, window: limits.failedAuthWindow)
    }

    /// Runs an expensive request (SQL, JSON query, verify, explain, reconciliation) within the
    /// per-key and overall limits; beyond them the answer is 429 with Retry-After.
    func expensive<T>(_ key: APIKey, _ body: () async throws -> T) async throws -> T {
        try await within(work, key) { try await bounded(body) }
    }

    /// `body` with its store reads bounded by `limits.readSeconds` from now (`WorkDeadline`), and
    /// stopped when its client hangs up.
    func bounded<T>(_ body: () async throws -> T) async throws -> T {
        try await WorkDeadline(seconds: limits.readSeconds, hint: " (this server's --read-time-limit)").run(body)
    }

    /// Whose places a key's requests take: an account's keys share its places (two reader keys
    /// of one account held every expensive place, and every other account was answered 429:
    /// tester R2); an admin key has its own.
    static func workHolder(of key: APIKey) -> String { key.accountID.map { "account \($0)" } ?? "key \(key.keyID)" }

    /// `body` holding `weight` of `limiter`'s places for the key (429 when there is not that much,
    /// `refused` called first).
    func within<T>(
        _ limiter: WorkLimiter, _ key: APIKey, weight: Int = 1, refused: () -> Void = {}, _ body: () async throws -> T
    ) async throws -> T {
        let holder = Self.workHolder(of: key)
        do {
            try await limiter.acquire(holder, weight: weight)
        } catch {
            refused()
            throw error
        }
        do {
            let value = try await body()
            await limiter.release(holder, weight: weight)
            return value
        } catch {
            await limiter.release(holder, weight: weight)
            throw error
        }
    }

    /// The router: the operations of `openapi.yaml`, each mounted by its controller; `/v1` behind
    /// authentication. Fails at once (a programming error) if the document and the handlers differ.
    public func buildRouter() -> Router<UsageBoxRequestContext> {
        let router = Router(context: UsageBoxRequestContext.self)
        router.add(middleware: RequestLogMiddleware(metrics: metrics))
        router.add(middleware: APIErrorMiddleware())
        let routes = OperationRoutes(api: self)
        routes.open("health") { _, _ in JSONResponse.make(Health(status: "ok")) }
        routes.open("openapi") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
        MeteringController(api: self).register(routes)
        AdminController(api: self).register(routes)
        ReconciliationController(api: self).register(routes)
        UIController(api: self).register(routes)
        routes.checkComplete()
        router.addRoutes(routes.open)
        router.group("ui").add(middleware: UISessionMiddleware(api: self)).addRoutes(routes.pages)
        router.group().add(middleware: AuthenticationMiddleware(api: self)).addRoutes(routes.rootAuthenticated)
        router.group(RouterPath(OperationRoutes.authenticatedPrefix))
            .add(middleware: AuthenticationMiddleware(api: self))
            .addRoutes(routes.authenticated)
        return router
    }

    struct Health: WireShape { var status: String }

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
        // Two headers read as one ("Bearer a, Bearer b"), a key no store holds.
        guard request.headers[values: .authorization].count == 1 else {
            throw UsageBoxError(.unauthenticated, "send one Authorization header, not \(request.headers[values: .authorization].count)")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw UsageBoxError(.unauthenticated, "the Authorization header must be 'Bearer <key>'")
        }
        return try await key(secret: String(parts[1].filter { $0 != " " }))
    }

    /// A secret presented another way (a page's session, Basic credentials), under the same limit on failures.
    func authenticate(secret: String, _ context: UsageBoxRequestContext) async throws -> APIKey {
        let client = context.clientAddress
        try await authFailures.check(client)
        do {
            return try await key(secret: secret)
        } catch let e as UsageBoxError where e.code == .unauthenticated {
            await authFailures.record(client)
            throw e
        }
    }

    func key(secret: String) async throws -> APIKey {
        if let env = environmentAdminSecret, constantTimeEquals(secret, env) {
            return APIKey(keyID: "env:USAGEBOX_KEY", accountID: nil, role: .admin, createdAt: Timestamp(microseconds: 0), revokedAt: nil)
        }
        guard let key = try await keys.authenticate(secret: secret) else {
            throw UsageBoxError(.unauthenticated, "unknown or revoked key")
        }
        // Made before admin keys for one account were refused: listed as that account's, it saw all.
        if key.role == .admin, let account = key.accountID {
            throw UsageBoxError(
                .permissionDenied,
                "key \(key.keyID) is an admin key listed under \(account), which no longer works: an admin key sees every account. "
                    + "Revoke it (usagebox keys revoke \(key.keyID)) and create a writer key for \(account), or an admin key without an account")
        }
        return key
    }

    /// Answers that group by hour, day or month hold at most `limits.maxTimeBuckets` buckets.
    func checkBuckets(_ range: TimeRange, _ groupBy: [UsageField]) throws {
        try UsageQuery(scope: .all, range: range, groupBy: groupBy).checkTimeBuckets(limit: limits.maxTimeBuckets)
    }

    func require(_ key: APIKey, _ role: KeyRole) throws {
        let rank: [KeyRole: Int] = [.reader: 0, .writer: 1, .admin: 2]
        guard rank[key.role]! >= rank[role]! else {
            throw UsageBoxError(.permissionDenied, "a \(key.role.rawValue) key cannot do this; it needs \(role == .admin ? "an" : "a") \(role.rawValue) key")
        }
    }

    func forbidden(_ account: String) -> UsageBoxError {
        UsageBoxError(.permissionDenied, "this key may not see account \(account)", field: "account_id")
    }

    /// A body's `account_id`, checked like a path's and against the key: the key's scope
    /// narrowed to it, or the key's scope when it names none.
    func narrowed(_ scope: AccountScope, to account: String?) throws -> AccountScope {
        guard let account else { return scope }
        guard EventDecoder.isValidIdentifier(account) else {
            throw UsageBoxError.invalidArgument("account_id must be \(EventDecoder.identifierRule)", field: "account_id")
        }
        guard scope.allows(account) else { throw forbidden(account) }
        return .accounts([account])
    }

    /// An id named in the path, percent-decoded and checked like the same id in a body.
    static func pathIdentifier(_ raw: String, field: String) throws -> String {
        let decoded = raw.removingPercentEncoding
        guard let id = decoded, EventDecoder.isValidIdentifier(id) else {
            // Quoted decoded, as the id it would be (`acct_42%2F..` said nothing of its slash),
            // control and format characters (a right-to-left override, a zero-width space, which
            // reorder or hide what a terminal shows) as `?`.
            let quoted = String(
                (decoded ?? raw).unicodeScalars.map {
                    [.control, .format, .lineSeparator, .paragraphSeparator].contains($0.properties.generalCategory) ? "?" : Character($0)
                })
            throw UsageBoxError.invalidArgument(
                "\(field) in the path must be \(EventDecoder.identifierRule), got '\(EventDecoder.shown(quoted))'", field: field)
        }
        return id
    }

    /// The query's parameters by name (those the document does not name were refused before the
    /// handler ran), each given once (`from=…&from=…` read as the last one verified another
    /// range than asked).
    func uniqueParameters(_ request: Request) throws -> [String: String] {
        var values: [String: String] = [:]
        for (name, value) in try parameters(request) {
            guard values.updateValue(value, forKey: name) == nil else {
                throw UsageBoxError.invalidArgument("'\(name)' is given more than once", field: name)
            }
        }
        return values
    }

    /// Every API operation refuses a parameter its document does not name, before its handler
    /// runs: one that reads none (`GET /v1/meters?acount=x`) must not answer as if it were obeyed.
    func refuseUnknownParameters(_ request: Request, of op: APIOperation) throws {
        guard !op.dimensionFilters else { return }
        for (name, _) in try parameters(request) where !op.queryParameters.contains(name) {
            throw UsageBoxError.invalidArgument("unknown parameter '\(name.prefix(80))'", field: name)
        }
    }

    func parameters(_ request: Request) throws -> [(String, String)] {
        do {
            return try QueryString.parse(request.uri.query ?? "")
        } catch let e as QueryString.BadQuery {
            throw UsageBoxError.invalidArgument("bad percent-encoding in the query: \(e.text)", field: "query")
        }
    }

    /// Reads the whole body within the operation's limit: an invoice within the server's
    /// `--max-invoice-mb`, anything else within 16 MiB. The request keeps the bytes for its handler.
    func collect(_ request: inout Request, for op: APIOperation) async throws -> ByteBuffer {
        let invoice = op.id == "reconcile"
        // A JSON request (no `vendor` in the query) carries its invoices in base64, a third
        // larger than the files: its body may be that much larger, and the files are checked
        // against the limit once decoded (`requireInvoicesWithinLimit`).
        let json = invoice && Self.isJSONReconciliation(vendorInQuery: request.uri.queryParameters["vendor"].map(String.init))
        let limit = invoice ? (json ? limits.maxInvoiceBytes / 3 * 4 + (1 << 20) : limits.maxInvoiceBytes) : Self.maxBodyBytes
        do {
            return try await request.collectBody(upTo: limit)
        } catch let error where !(error is NIOTooManyBytesError) {
            throw Self.bodyCutOff(error)
        } catch {
            throw UsageBoxError(
                .payloadTooLarge,
                !invoice
                    ? "the body is larger than 16 MiB"
                    : json
                        ? "the JSON body is larger than the server's limit for \(limits.maxInvoiceBytes >> 20) MiB of invoices in base64 (usagebox serve --max-invoice-mb)"
                        : "the invoice body is larger than the server's limit of \(limit >> 20) MiB (usagebox serve --max-invoice-mb)")
        }
    }

    /// The invoices of a JSON request, decoded, within the server's invoice limit.
    func requireInvoicesWithinLimit(_ asked: ReconciliationRequest) throws {
        let total = asked.invoices.reduce(0) { $0 + $1.bytes.count }
        guard total <= limits.maxInvoiceBytes else {
            throw UsageBoxError(
                .payloadTooLarge,
                "the invoices come to \(total) bytes, larger than the server's limit of \(limits.maxInvoiceBytes >> 20) MiB (usagebox serve --max-invoice-mb)")
        }
    }

    /// Refuses a body on a route that takes none (apply, revert), rather than ignore it:
    /// `{"confirm_large": true}` sent as a body read as a confirmation and was not one. Nothing,
    /// whitespace or `{}` passes.
    func requireNoBody(_ request: Request, _ remedy: String) async throws {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: 64 << 10)
        } catch {
            throw UsageBoxError.invalidArgument("this route takes no body; \(remedy)", field: "body")
        }
        let text = String(buffer: buffer).filter { !$0.isWhitespace }
        guard text.isEmpty || text == "{}" else {
            throw UsageBoxError.invalidArgument("this route takes no body (it was not read); \(remedy)", field: "body")
        }
    }

    /// An `application/x-www-form-urlencoded` body (the sign-in form), at most 64 KiB.
    func form(_ request: Request) async throws -> [String: String] {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: 64 << 10)
        } catch {
            throw UsageBoxError(.payloadTooLarge, "the form is larger than 64 KiB")
        }
        var out: [String: String] = [:]
        let text = String(buffer: buffer).replacingOccurrences(of: "+", with: " ")
        do {
            for (name, value) in try QueryString.parse(text) { out[name] = value }
        } catch {
            throw UsageBoxError.invalidArgument("the form is not URL-encoded", field: "body")
        }
        return out
    }

    /// A body that ended before its declared length (the client closed mid-body) was answered
    /// "larger than 16 MiB"; nothing of it is read.
    static func bodyCutOff(_ error: any Error) -> UsageBoxError {
        UsageBoxError.invalidArgument("the body ended before its declared length (the connection closed mid-body); nothing was read", field: "body")
    }

    func jsonBody(_ request: Request) async throws -> JSONValue {
        // A gzip body was answered "unexpected character '\u{1f}'".
        if let encoding = request.headers[.contentEncoding], encoding.lowercased() != "identity" {
            throw UsageBoxError.invalidArgument("Content-Encoding \(encoding) is not supported: send the body uncompressed", field: "body")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw UsageBoxError(.payloadTooLarge, "the body is larger than 16 MiB")
        } catch {
            throw Self.bodyCutOff(error)
        }
        do {
            // A byte order mark first is no JSON, and is skipped as the file readers skip it
            // (it was "unexpected character 'ï'").
            return try buffer.withUnsafeReadableBytes { raw in
                let bytes = raw.bindMemory(to: UInt8.self)
                return try JSONParser.parse(bytes: bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? UnsafeBufferPointer(rebasing: bytes.dropFirst(3)) : bytes)
            }
        } catch let e as JSONParseError {
            throw UsageBoxError.malformedBody(e)
        }
    }

    /// The body read into its wire shape; a member that does not fit is a 400 naming it.
    func body<T: WireShape>(_ type: T.Type, _ request: Request) async throws -> T {
        do {
            return try T.decode(try await jsonBody(request))
        } catch let f as JSONValueDecoder.Failure {
            throw f.usageBoxError
        }
    }

    func ingest(_ request: Request, _ key: APIKey) async throws -> Response {
        FreedMemory.enter()
        var large = true  // a batch that failed part-way may have held many events
        defer { FreedMemory.leave(large: large) }
        let (response, events) = try await ingestBatch(request, key)
        large = events >= FreedMemory.largeBatch
        return response
    }

    /// The batch's answer and how many events it held; its memory is released when it returns.
    private func ingestBatch(_ request: Request, _ key: APIKey) async throws -> (Response, Int) {
        var value = try await jsonBody(request)
        guard case .object = value else { throw UsageBoxError.invalidArgument("the body must be {\"events\": [...]}", field: "events") }
        var batch: UsageBatchBody
        do {
            batch = try UsageBatchBody.decode(value)
        } catch let f as JSONValueDecoder.Failure {
            throw f.usageBoxError
        }
        guard batch.events.count <= Self.maxBatchEvents else {
            throw UsageBoxError(.payloadTooLarge, "a batch holds at most \(Self.maxBatchEvents) events, got \(batch.events.count)", field: "events")
        }
        // Each event's JSON tree is let go as it is decoded, so the tree and the events are not
        // held whole side by side (4 batches of 16 MiB with 32 dimensions per event held 460 MB).
        value = .null
        var items: [IngestItem] = []
        items.reserveCapacity(batch.events.count)
        for i in batch.events.indices {
            items.append(decoder.decode(batch.events[i]))
            batch.events[i] = .null
        }
        // A key bound to an account writes only that account: one foreign event refuses the whole batch.
        if case .accounts = key.scope {
            for (i, item) in items.enumerated() {
                // Named by its place, so a client can say which line of its file it was.
                if case let .event(e) = item, !key.scope.allows(e.accountID) {
                    throw UsageBoxError(.permissionDenied, "this key may not see account \(e.accountID)", field: "events[\(i)].account_id")
                }
            }
        }
        metrics?.writesInFlight(1)
        defer { metrics?.writesInFlight(-1) }
        let answer = try await store.ingest(items)
        metrics?.ingested(answer, batch: items.count)
        return (JSONResponse.make(answer), items.count)
    }
}
