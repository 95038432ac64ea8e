import HTTPTypes
import Hummingbird
import Metering

/// Authenticates every `/v1` request: the bearer key is looked up (the admin key of `USAGEBOX_KEY`
/// compared in constant time) and carried in the request context; a missing or unknown key is a
/// 401, and a client address that failed too often in the last minute is a 429 before its key is
/// even read.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = UsageBoxRequestContext
    let api: HTTPAPI

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.key = try await api.authenticate(request, context)
        // A write another server forwarded to this one (the owner of its account) is never forwarded again.
        let forwarded = HTTPField.Name(WriteRouting.header).map { request.headers[$0] != nil } ?? false
        return try await WriteRouting.$forwarded.withValue(forwarded) { try await next(request, context) }
    }
}
