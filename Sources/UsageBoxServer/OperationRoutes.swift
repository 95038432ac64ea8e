import Hummingbird
import Metering

/// Who is calling an operation: the key the authentication middleware found, and the account the
/// path names (already checked against the key's scope).
struct Caller: Sendable {
    let key: APIKey
    let account: String?

    /// The path's account, for operations whose path names one.
    var pathAccount: String { account ?? "" }
}

/// Mounts handlers by operation id, each at the method and path the OpenAPI document gives it and
/// behind what the document says of it: its role, the account the path names, and the limits on
/// expensive work. Building the router fails at once when an operation has no handler or a
/// handler names no operation, so the document and the server cannot drift apart.
final class OperationRoutes: @unchecked Sendable {
    typealias Handler = @Sendable (Request, UsageBoxRequestContext, Caller) async throws -> Response
    typealias OpenHandler = @Sendable (Request, UsageBoxRequestContext) async throws -> Response

    let api: HTTPAPI
    /// Operations that need a key, mounted under `/v1` behind authentication.
    let authenticated = RouteCollection(context: UsageBoxRequestContext.self)
    /// Operations that need none (`/healthz`, `/openapi.yaml`, the sign-in form).
    let open = RouteCollection(context: UsageBoxRequestContext.self)
    /// Bearer operations outside /v1 (`/metrics`), behind the same authentication.
    let rootAuthenticated = RouteCollection(context: UsageBoxRequestContext.self)
    /// Pages that need a browser session, mounted under `/ui` behind the session middleware.
    let pages = RouteCollection(context: UsageBoxRequestContext.self)
    static let pagesPrefix = "/ui"
    private(set) var mounted: Set<String> = []

    init(api: HTTPAPI) { self.api = api }

    static let authenticatedPrefix = "/v1"

    private func operation(_ id: String) -> APIOperation {
        guard let op = APIOperation.named(id) else { preconditionFailure("no operation '\(id)' in openapi.yaml") }
        precondition(!mounted.contains(id), "operation '\(id)' mounted twice")
        mounted.insert(id)
        return op
    }

    /// Mounts the handler of an operation that needs no key.
    func open(_ id: String, _ handler: @escaping OpenHandler) {
        let op = operation(id)
        precondition(op.role == nil, "\(id) needs a key: mount it with on(_:)")
        open.on(RouterPath(op.routerPath(dropping: "")), method: HTTPRequest.Method(op.method)!, use: handler)
        // HEAD as well, which uptime checks and load balancers probe with: the GET's status and
        // headers, no body.
        guard op.method == "GET" else { return }
        open.on(RouterPath(op.routerPath(dropping: "")), method: .head) { request, context in
            var response = try await handler(request, context)
            let length = response.body.contentLength
            response.body = ResponseBody()
            if let length { response.headers[.contentLength] = String(length) }
            return response
        }
    }

    /// Mounts the handler of an operation that needs a key.
    func on(_ id: String, _ handler: @escaping Handler) {
        let op = operation(id)
        precondition(op.auth == .bearer, "\(id) is not a bearer-key operation")
        if op.path.hasPrefix(Self.authenticatedPrefix + "/") {
            mount(op, on: authenticated, prefix: Self.authenticatedPrefix, handler)
        } else {
            mount(op, on: rootAuthenticated, prefix: "", handler)
        }
    }

    /// Mounts the handler of a page (a browser session or Basic credentials present the key).
    func page(_ id: String, _ handler: @escaping Handler) {
        let op = operation(id)
        precondition(op.auth == .session, "\(id) is not a page")
        mount(op, on: pages, prefix: Self.pagesPrefix, handler)
    }

    private func mount(_ op: APIOperation, on collection: RouteCollection<UsageBoxRequestContext>, prefix: String, _ handler: @escaping Handler) {
        guard let role = op.role else { preconditionFailure("\(op.id) needs no key: mount it with open(_:)") }
        precondition(op.path.hasPrefix(prefix + "/"), "\(op.id): lives under \(prefix)")
        let api = self.api
        @Sendable func handle(_ request: Request, _ context: UsageBoxRequestContext, _ caller: Caller) async throws -> Response {
            if op.read { return try await api.within(api.reads, caller.key) { try await api.bounded { try await handler(request, context, caller) } } }
            // API operations only: a page's errors are pages (`UISessionMiddleware`), and a browser
            // keeps its connection.
            guard op.expensive, op.auth == .bearer else { return try await perform(request, context, caller) }
            // An expensive answer nobody will read is not worked out: a client that hangs up
            // cancels its request (a SQL query is interrupted, store reads stop) and frees its work
            // slot at once, where it held the slot and a core until the time limit. Watching the
            // connection for the hang-up reads past this request, so the connection closes after
            // the answer: it says so, and clients open a new one for the next request.
            return try await request.body.consumeWithCancellationOnInboundClose { body in
                var request = request
                request.body = body
                var response: Response
                do {
                    response = try await perform(request, context, caller)
                } catch let error where !(error is CancellationError) {
                    response = APIErrorMiddleware<UsageBoxRequestContext>.response(for: error, request, logger: context.logger)
                }
                response.headers[.connection] = "close"
                return response
            }
        }
        @Sendable func perform(_ request: Request, _ context: UsageBoxRequestContext, _ caller: Caller) async throws -> Response {
            let key = caller.key
            // Read a write's body first: before taking a slot, so a slow upload holds no share of
            // the limit; and before the key is checked again, so a key revoked while its body
            // arrived (checked once, when the headers came) writes nothing.
            var request = request
            if op.method == "POST" || op.method == "PUT" {
                _ = try await api.collect(&request, for: op)
                if request.headers[.authorization] != nil, try await api.presentedKey(request).keyID != key.keyID {
                    throw UsageBoxError(.unauthenticated, "unknown or revoked key")
                }
            }
            guard op.expensive else { return try await handler(request, context, caller) }
            return try await api.expensive(key) { try await handler(request, context, caller) }
        }
        collection.on(RouterPath(op.routerPath(dropping: prefix)), method: HTTPRequest.Method(op.method)!) { request, context in
            guard let key = context.key else { throw UsageBoxError(.unauthenticated, "missing Authorization: Bearer <key>") }
            var account: String?
            if op.namesAccount {
                // The path keeps its percent-encoding (`org%3Aacme` is `org:acme`, as a client's
                // quoting writes it); an id that is not one is refused, not read as an empty account.
                let named = try HTTPAPI.pathIdentifier(context.parameters.require("account"), field: "account_id")
                guard key.scope.allows(named) else { throw api.forbidden(named) }
                account = named
            }
            try api.require(key, role)
            if op.auth == .bearer { try api.refuseUnknownParameters(request, of: op) }
            let caller = Caller(key: key, account: account)
            // Bodies over 1 MiB (or of unknown length) take one of the key's few places while read
            // and handled: each may buffer 16 MiB, and unfinished uploads would otherwise pile up.
            // No Content-Length and no Transfer-Encoding: no body (HTTP/1.1).
            let declared = request.headers[.contentLength].flatMap { Int($0) } ?? (request.headers[.transferEncoding] == nil ? 0 : Int.max)
            if op.method == "POST" || op.method == "PUT", declared > RequestLimits.largeBodyBytes {
                return try await api.within(api.largeBodies, key, refused: context.stopReading) { try await handle(request, context, caller) }
            }
            // Smaller ones hold their declared bytes of a budget while read and handled. Refused,
            // neither body is read: the connection closes after the 429.
            if op.method == "POST" || op.method == "PUT", declared > 0 {
                return try await api.within(api.smallBodies, key, weight: declared, refused: context.stopReading) {
                    try await handle(request, context, caller)
                }
            }
            return try await handle(request, context, caller)
        }
    }

    /// Every operation of the document must have a handler.
    func checkComplete() {
        let missing = Set(APIOperation.all.map(\.id)).subtracting(mounted)
        precondition(missing.isEmpty, "operations in openapi.yaml with no handler: \(missing.sorted())")
    }
}
