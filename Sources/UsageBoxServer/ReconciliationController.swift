import ExactJSON
import Foundation
import Hummingbird
public import Metering
public import ReconCore

/// What the HTTP API needs of reconciliation; the composition root supplies it.
///
/// ```swift
/// var api = HTTPAPI(store: store, keys: store, environmentAdminSecret: nil)
/// api.reconciliation = try ReconciliationService()   // the built-in plugins and cards
/// api.reconciliationLog = store
/// ```
public protocol ReconciliationBackend: Sendable {
    var vendors: VendorList { get }
    func run(
        _ options: ReconciliationOptions, store: any MeterStore, log: (any ReconciliationLog)?, record: Bool, apply: Bool, confirmLarge: Bool
    )
        async throws -> (report: ReconciliationReport, outcome: ReconciliationRunner.ApplyOutcome)
    func apply(id: String, confirmLarge: Bool, store: any MeterStore, log: any ReconciliationLog) async throws -> ApplyAnswer
    func revert(id: String, store: any MeterStore, log: any ReconciliationLog) async throws -> IngestResponse
}

/// Vendors and reconciliation runs: create (or dry-run), read, apply, revert.
struct ReconciliationController {
    let api: HTTPAPI

    func register(_ routes: OperationRoutes) {
        let api = self.api
        @Sendable func backend() throws -> any ReconciliationBackend {
            guard let backend = api.reconciliation else { throw UsageBoxError(.notFound, "this server runs no reconciliation") }
            return backend
        }
        @Sendable func log(_ id: String) throws -> any ReconciliationLog {
            guard let log = api.reconciliationLog else { throw UsageBoxError(.notFound, "no reconciliation \(id)", field: "id") }
            return log
        }
        routes.on("listVendors") { _, _, _ in JSONResponse.make(try backend().vendors) }
        routes.on("reconcile") { request, _, caller in
            let (options, dryRun) = try await api.reconciliationOptions(request, key: caller.key)
            // Recording a run is a write: a reader may only look (dry_run), and nothing is stored;
            // earlier runs are read all the same (one overlapping the period holds this one).
            if !dryRun { try api.require(caller.key, .writer) }
            do {
                let (report, _) = try await backend().run(
                    options, store: api.store, log: api.reconciliationLog, record: false, apply: false, confirmLarge: false)
                // The key is checked again before the run is kept or answered: one revoked while
                // its run was computed still recorded it (tester S), and a reader's dry run still
                // answered the whole report (tester S2).
                if request.headers[.authorization] != nil, try await api.presentedKey(request).keyID != caller.key.keyID {
                    throw UsageBoxError(.unauthenticated, "unknown or revoked key")
                }
                if !dryRun, let log = api.reconciliationLog { try await ReconciliationArchive(log).save(report) }
                api.metrics?.reconciled(vendor: report.vendor, verdict: report.verdict.rawValue)
                return JSONResponse.make(text: report.jsonText, status: dryRun ? .ok : .created)
            } catch let drift as VerifyDrift {
                throw UsageBoxError(.verifyDrift, drift.description)
            }
        }
        routes.on("listReconciliations") { request, _, caller in
            let params = try api.uniqueParameters(request)
            let limit = try ReconciliationList.limit(params["limit"], field: "limit")
            let cursor = try ReconciliationList.Cursor.parse(before: params["before"], beforeID: params["before_id"], fields: ("before", "before_id"))
            let account = try ReconciliationList.account(params["account"], field: "account")
            if let account {
                guard caller.key.scope.allows(account) else {
                    throw UsageBoxError(.permissionDenied, "this key may not see account \(account)", field: "account")
                }
            }
            return JSONResponse.make(try await api.recentRuns(limit: limit, of: account, after: cursor, key: caller.key))
        }
        routes.on("getReconciliation") { request, context, caller in
            return JSONResponse.make(text: try await api.storedReport(try context.parameters.require("id"), key: caller.key).jsonText)
        }
        routes.on("applyReconciliation") { request, context, caller in
            let confirm = try api.uniqueParameters(request)["confirm_large"]
            guard confirm == nil || confirm == "true" || confirm == "false" else {
                throw UsageBoxError.invalidArgument("confirm_large is true or false", field: "confirm_large")
            }
            let confirmLarge = confirm == "true"
            try await api.requireNoBody(request, "post held corrections too with ?confirm_large=true")
            let id = try context.parameters.require("id")
            _ = try await api.storedReport(id, key: caller.key)
            return JSONResponse.make(try await backend().apply(id: id, confirmLarge: confirmLarge, store: api.store, log: try log(id)))
        }
        routes.on("revertReconciliation") { request, context, caller in
            try await api.requireNoBody(request, "the reconciliation's id in the path says what to revert")
            let id = try context.parameters.require("id")
            _ = try await api.storedReport(id, key: caller.key)
            return JSONResponse.make(try await backend().revert(id: id, store: api.store, log: try log(id)))
        }
    }
}

extension HTTPAPI {
    /// A stored report the key may see: its account's keys, or admins for cross-account runs.
    func storedReport(_ id: String, key: APIKey) async throws -> ReconciliationReport {
        let unknown = UsageBoxError(.notFound, "no reconciliation \(id)", field: "id")
        guard let log = reconciliationLog else { throw unknown }
        // Another tenant's run is refused from the start of its text, read alone, before the
        // rest is read or decoded: its refusal took as long as its size (1.3 s for 19 MB, 0.02 s
        // for a small one: tester S; 0.077 s once only the decoding was spared: tester S2).
        let forbidden = UsageBoxError(.permissionDenied, "this key may not see reconciliation \(id)")
        if key.role != .admin {
            guard let head = try await log.reconciliationHead(id: id, characters: 512) else { throw unknown }
            switch ReconciliationArchive.account(ofHead: head) {
            case let .account(account) where !key.scope.allows(account): throw forbidden
            case .none: throw forbidden  // a run across accounts: admins' (below)
            default: break
            }
        }
        guard let text = try await log.reconciliation(id: id) else { throw unknown }
        let report = try ReconciliationArchive.report(text: text, id: id)
        guard Self.mayRead(account: report.accountID, corrected: report.everyCorrection.map(\.accountID), key: key) else { throw forbidden }
        return Self.redacted(report, for: key.scope)
    }

    /// The latest recorded runs the key may see, newest first, from their stored summaries (the
    /// API's list and the `/ui/` index): of `account`, or of the key's accounts, or of all for a
    /// key of every account. Other tenants' runs neither hide nor slow a scoped key's (tester S,
    /// S2), and no run is read whole to list it unless it was recorded before summaries were kept.
    func recentRuns(limit: Int, of account: String? = nil, after cursor: ReconciliationList.Cursor? = nil, key: APIKey) async throws -> ReconciliationList {
        guard let log = reconciliationLog else { return ReconciliationList([]) }
        let accounts: [String]? =
            switch (account, key.scope) {
            case let (account?, _): [account]
            case let (nil, .accounts(own)): own.sorted()
            case (nil, .all): nil
            }
        return try await ReconciliationArchive(log).recent(limit: limit, ofAccounts: accounts, after: cursor) {
            Self.mayRead(account: $0.accountID, corrected: $0.correctedAccounts, key: key)
        }
    }

    /// Whether a key may read a run of `account` (nil: across accounts) whose corrections post to
    /// `corrected`: admins any run, other keys a run of an account they may see, every corrected
    /// account included. The API's reports and the pages' lists decide by it alike.
    static func mayRead(account: String?, corrected: [String], key: APIKey) -> Bool {
        key.role == .admin || (account.map(key.scope.allows) ?? false) && corrected.allSatisfy(key.scope.allows)
    }

    /// An admin's run of one account, read by that account's key: reasons about accounts the key
    /// may not see keep their code and effect, not the names and totals (a stored run told a
    /// scoped reader which other accounts metered its models, and how much).
    static func redacted(_ report: ReconciliationReport, for scope: AccountScope) -> ReconciliationReport {
        guard scope != .all else { return report }
        var out = report
        out.reasons = report.reasons.map { r in
            let hidden = (r.accountID.map { !scope.allows($0) } ?? false) || (r.accounts ?? []).contains { !scope.allows($0.accountID) }
            guard hidden else { return r }
            var r = r
            r.accountID = r.accountID.flatMap { scope.allows($0) ? $0 : nil }
            r.accounts = r.accounts?.filter { scope.allows($0.accountID) }
            r.detail = "\(r.code): its detail names accounts this key may not see (an admin key reads it)"
            return r
        }
        return out
    }

    /// Which form a reconciliation request takes: the query string names the vendor in the simple
    /// form (the body is the invoice file); otherwise the body is the JSON request, invoices in base64.
    static func isJSONReconciliation(vendorInQuery: String?) -> Bool { vendorInQuery == nil }

    /// Whether a body could be a JSON request (an object naming `invoices` near its start): only
    /// then is it decoded as one, so a vendor's large JSON export is not parsed twice.
    static func mayBeJSONRequest(_ bytes: [UInt8]) -> Bool {
        guard bytes.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "{") else { return false }
        let head = bytes.prefix(64 << 10)
        let needle = Array(#""invoices""#.utf8)
        return head.count >= needle.count && (0...(head.count - needle.count)).contains { head[$0..<$0 + needle.count].elementsEqual(needle) }
    }

    /// The options from the query string and raw invoice body, or from a JSON body with `invoices`:
    /// one `ReconciliationRequest` either way, resolved as the CLI resolves it.
    func reconciliationOptions(_ request: Request, key: APIKey) async throws -> (ReconciliationOptions, dryRun: Bool) {
        let params = try uniqueParameters(request)
        let json = Self.isJSONReconciliation(vendorInQuery: params["vendor"])
        // The JSON request carries every option: a query parameter beside it (account, dry_run)
        // would be ignored, and the run would be org-wide and recorded.
        if json, let name = params.keys.sorted().first {
            throw UsageBoxError.invalidArgument(
                "'\(name)' in the query is not read with a JSON body: put it in the body (or name vendor, from and to in the query)", field: name)
        }
        var request = request
        let bytes = Array(try await collect(&request, for: APIOperation.named("reconcile")!).readableBytesView)
        // A JSON request sent with vendor, from and to also in the query would be read as the
        // invoice file, and refused as a file no parser knows: say which form was meant.
        if !json, Self.mayBeJSONRequest(bytes), (try? ReconciliationRequest.decode(json: bytes)) != nil {
            throw UsageBoxError.invalidArgument(
                "the body is a JSON reconciliation request, but 'vendor' in the query asks for the invoice file as the body: with a JSON body, name vendor, from and to in the body only",
                field: "vendor")
        }
        let asked =
            json
            ? try ReconciliationRequest.decode(json: bytes)
            : try ReconciliationRequest.fromParameters({ params[$0] }, invoice: bytes)
        if json { try requireInvoicesWithinLimit(asked) }
        var options = try asked.resolve(scope: key.scope, runBy: key.keyID)
        if options.account == nil, options.accountMap.isEmpty, key.role != .admin, let only = key.accountID {
            options.account = only
        }
        return (options, asked.dryRun ?? false)
    }
}
