import Foundation
import HTTPTypes
import Hummingbird
import Metering
import ReconCore
import ReportPages

/// Browser sessions for the pages under `/ui/`: signing in with an API key sets an HttpOnly,
/// SameSite=Strict cookie naming a random session; the key itself stays in this server's memory
/// and is authenticated again on every page, so revoking it ends its sessions at once. Scripts (and
/// the headless browser test) may instead present the key as the password of HTTP Basic or as the
/// API's bearer header.
actor UISessions {
    private var sessions: [String: (secret: String, holder: String, expires: ContinuousClock.Instant)] = [:]
    static let lifetime: Duration = .seconds(8 * 3600)
    static let maxSessions = 10_000
    /// Sessions one holder (one key) keeps at once: past it, its own oldest gives way. One reader
    /// key signing in 10,000 times signed every other user out (tester S), and, held per
    /// account, still signed its account's writer out (tester S2).
    static let maxPerHolder = 100
    static func sessionHolder(of key: APIKey) -> String { "key \(key.keyID)" }

    func open(secret: String, holder: String) -> String {
        let now = ContinuousClock.now
        let own = sessions.filter { $0.value.holder == holder }
        if own.count >= Self.maxPerHolder, let oldest = own.min(by: { $0.value.expires < $1.value.expires })?.key {
            sessions[oldest] = nil
        }
        if sessions.count >= Self.maxSessions { sessions = sessions.filter { $0.value.expires > now } }
        if sessions.count >= Self.maxSessions, let oldest = sessions.min(by: { $0.value.expires < $1.value.expires })?.key {
            sessions[oldest] = nil
        }
        var generator = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        sessions[token] = (secret, holder, now + Self.lifetime)
        return token
    }

    func secret(for token: String) -> String? {
        guard let s = sessions[token] else { return nil }
        guard s.expires > ContinuousClock.now else {
            sessions[token] = nil
            return nil
        }
        return s.secret
    }

    func close(_ token: String) { sessions[token] = nil }

    /// Closes a session whose key is unknown or revoked now.
    func closeIfSignedOut(_ token: String, api: HTTPAPI) async {
        guard let s = sessions[token] else { return }
        if (try? await api.key(secret: s.secret)) == nil { sessions[token] = nil }
    }

    func count(holder: String) -> Int { sessions.values.filter { $0.holder == holder }.count }
}

/// The pages: the index of runs, each run's report, an account's daily drift watch, sign-in and out.
struct UIController {
    let api: HTTPAPI
    static let cookie = "ub_session"

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"]
        // No script anywhere; styles inline; forms post only here; never framed.
        headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// Whether a browser says the form was posted from another site: `Sec-Fetch-Site` where it
    /// sends one (it alone decides: a proxy that rewrites `Host`, as nginx does by default,
    /// refused every real sign-in by `Origin`: tester S2), else an `Origin` that is neither the
    /// host the request reached nor the one a proxy forwarded (`X-Forwarded-Host`).
    static func postedFromAnotherSite(_ request: Request) -> Bool {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!] { return site == "cross-site" || site == "same-site" }
        guard let origin = request.headers[HTTPField.Name("Origin")!] else { return false }
        let forwarded = request.headers[HTTPField.Name("X-Forwarded-Host")!]?.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) }
        return ![request.head.authority, forwarded].contains { sameOrigin(origin, host: $0) }
    }

    /// Whether an `Origin` header names the host the request was sent to (any scheme and port
    /// as written: `http://127.0.0.1:8080` for `127.0.0.1:8080`).
    static func sameOrigin(_ origin: String, host: String?) -> Bool {
        guard let host, let url = URL(string: origin), let originHost = url.host else { return false }
        let bracketed = originHost.contains(":") && !originHost.hasPrefix("[") ? "[\(originHost)]" : originHost  // IPv6
        let originAuthority = bracketed + (url.port.map { ":\($0)" } ?? "")
        return originAuthority.lowercased() == host.lowercased()
    }

    static func redirect(_ location: String, cookie: String? = nil) -> Response {
        var headers: HTTPFields = [.location: location, .cacheControl: "no-store"]
        if let cookie { headers[.setCookie] = cookie }
        return Response(status: .seeOther, headers: headers)
    }

    /// Only a page of this site is a place to go after signing in.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/ui/"), !next.hasPrefix("//"), !next.contains("\\"), next.count < 1000 else { return "/ui/" }
        return next
    }

    static func who(_ key: APIKey) -> String { "\(key.role.rawValue) key \(key.keyID)\(key.accountID.map { " of \($0)" } ?? "")" }

    func register(_ routes: OperationRoutes) {
        let api = self.api
        routes.open("uiLoginForm") { request, _ in
            let next = try api.parameters(request).last { $0.0 == "next" }?.1
            return Self.html(ReportPages.login(error: nil, next: Self.safeNext(next)))
        }
        routes.open("uiLogin") { request, context in
            // A form posted from another site would sign the browser into that site's key (login
            // CSRF: tester S): a browser names the page that posted it.
            if Self.postedFromAnotherSite(request) {
                return Self.html(ReportPages.login(error: "Sign in from this server's own page.", next: "/ui/"), status: .forbidden)
            }
            let form = try await api.form(request)
            let next = Self.safeNext(form["next"])
            guard let secret = form["key"], !secret.isEmpty else {
                return Self.html(ReportPages.login(error: "Paste a key.", next: next), status: .unauthorized)
            }
            let key: APIKey
            do {
                key = try await api.authenticate(secret: secret, context)
            } catch let e as UsageBoxError where e.code == .unauthenticated {
                return Self.html(ReportPages.login(error: "That key is unknown or revoked.", next: next), status: .unauthorized)
            }
            let token = await api.sessions.open(secret: secret, holder: UISessions.sessionHolder(of: key))
            // Secure when the browser reached the server over TLS (a proxy in front says so).
            // The first of a chain of proxies' values is the browser's side.
            let proto = request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.split(separator: ",").first?.trimmingCharacters(in: .whitespaces)
            let secure = proto?.lowercased() == "https" ? "; Secure" : ""
            return Self.redirect(next, cookie: "\(Self.cookie)=\(token); Path=/ui; HttpOnly; SameSite=Strict; Max-Age=\(8 * 3600)\(secure)")
        }
        routes.page("uiLogout") { request, _, _ in
            if let token = Self.sessionToken(request) { await api.sessions.close(token) }
            return Self.redirect("/ui/login", cookie: "\(Self.cookie)=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
        }
        routes.page("uiIndex") { request, _, caller in
            // The key's runs as the API lists them, 200 a page; older ones a link away.
            let params = try api.uniqueParameters(request)
            let cursor = try ReconciliationList.Cursor.parse(before: params["before"], beforeID: params["before_id"], fields: ("before", "before_id"))
            let list = try await api.recentRuns(limit: ReconciliationList.limits.upperBound, after: cursor, key: caller.key)
            return Self.html(ReportPages.index(list, after: cursor, who: Self.who(caller.key), defaultAccount: caller.key.accountID ?? ""))
        }
        routes.page("uiReport") { _, context, caller in
            let report = try await api.storedReport(try context.parameters.require("id"), key: caller.key)
            return Self.html(ReportPages.report(report, who: Self.who(caller.key)))
        }
        routes.page("uiAccount") { request, _, caller in
            let params = try api.parameters(request)
            let value = { (name: String) in params.last { $0.0 == name }?.1 }
            guard let account = value("account"), EventDecoder.isValidIdentifier(account) else {
                throw UsageBoxError.invalidArgument("name an account", field: "account")
            }
            guard caller.key.scope.allows(account) else { throw api.forbidden(account) }
            let month = value("month") ?? Timestamp.now().monthString
            let start = try PeriodRecord.validate(month)
            let range = try TimeRange(from: start, to: start.startOfNextMonth)
            // The operation is x-usagebox-expensive: the routes already hold its work slot.
            let report = try await api.store.verify(VerifyRequest(account: account, range: range, mode: .incremental, byDay: true))
            api.metrics?.verified(account: account, report)
            return Self.html(ReportPages.account(account, month: month, verify: report, who: Self.who(caller.key)))
        }
    }

    static func sessionToken(_ request: Request) -> String? {
        guard let header = request.headers[.cookie] else { return nil }
        for part in header.split(separator: ";") {
            let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0] == cookie { return String(kv[1]) }
        }
        return nil
    }

    /// The key of a page request: its session, HTTP Basic with the key as the password, or the
    /// API's bearer header (scripts; a browser never sends it on its own, so no cross-site use).
    /// A session cookie that names no live session signs nothing in, whatever else the request
    /// carries: the server never picks, among the credentials presented, the one that works.
    static func presentedSecret(_ request: Request, sessions: UISessions) async -> String? {
        if let token = sessionToken(request) { return await sessions.secret(for: token) }
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") {
            return String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        }
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("basic "),
            let data = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        {
            return String(text[text.index(after: colon)...])
        }
        return nil
    }
}

/// Signs page requests in from their session (or Basic credentials); a request without either is
/// sent to the sign-in form (GET) or refused (POST).
struct UISessionMiddleware: RouterMiddleware {
    typealias Context = UsageBoxRequestContext
    let api: HTTPAPI

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let secret = await UIController.presentedSecret(request, sessions: api.sessions),
            let key = try? await api.authenticate(secret: secret, context)
        {
            context.key = key
            do {
                return try await next(request, context)
            } catch let e as UsageBoxError {
                // A page's error is a page too, with the same status.
                return UIController.html(ReportPages.error(e.message, who: UIController.who(key)), status: e.httpStatus)
            }
        }
        // A session whose key no longer signs in is dropped, its secret with it (it stayed in
        // memory until it expired: tester S).
        if let token = UIController.sessionToken(request) { await api.sessions.closeIfSignedOut(token, api: api) }
        guard request.method == .get else { throw UsageBoxError(.unauthenticated, "sign in at /ui/login") }
        let path = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
        // A stale session cookie is cleared on the way to the form.
        let clear = UIController.sessionToken(request) == nil ? nil : "\(UIController.cookie)=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"
        return UIController.redirect("/ui/login?next=" + (path.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/ui/"), cookie: clear)
    }
}
