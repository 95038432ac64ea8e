import ExactJSON
import Foundation
public import Hummingbird
public import Metering
public import ReconCore

/// What the HTTP API needs of reconciliation; the composition root supplies it.
public protocol ReconciliationBackend: Sendable {
    func vendorsJSON() -> JSONValue
    func run(_ options: ReconciliationOptions, store: any MeterStore, log: (any ReconciliationLog)?, apply: Bool, confirmLarge: Bool)
        async throws -> (report: ReconciliationReport, outcome: ReconciliationRunner.ApplyOutcome)
    func apply(id: String, confirmLarge: Bool, store: any MeterStore, log: any ReconciliationLog) async throws -> IngestResponse
    func revert(id: String, store: any MeterStore, log: any ReconciliationLog) async throws -> IngestResponse
}

extension HTTPAPI {
    func addReconciliationRoutes(to router: Router<UsageBoxRequestContext>) {
        guard let backend = reconciliation else { return }
        router.get("/v1/vendors") { request, context in
            _ = try await authenticate(request, context)
            return JSONResponse.make(backend.vendorsJSON())
        }
        router.post("/v1/reconciliations") { request, context in
            let key = try await authenticate(request, context)
            let (options, dryRun) = try await reconciliationOptions(request, key: key)
            // Recording a run is a write: a reader may only look (dry_run), and nothing is stored.
            if !dryRun { try require(key, .writer) }
            do {
                let (report, _) = try await expensive(key) {
                    try await backend.run(options, store: store, log: dryRun ? nil : reconciliationLog, apply: false, confirmLarge: false)
                }
                return JSONResponse.make(text: report.jsonText, status: dryRun ? .ok : .created)
            } catch let drift as VerifyDrift {
                throw UsageBoxError(.verifyDrift, drift.description)
            }
        }
        router.get("/v1/reconciliations/:id") { request, context in
            let key = try await authenticate(request, context)
            let report = try await storedReport(context.parameters.get("id") ?? "", key: key)
            return JSONResponse.make(text: report.jsonText)
        }
        router.post("/v1/reconciliations/:id/apply") { request, context in
            let key = try await authenticate(request, context)
            try require(key, .writer)
            let id = context.parameters.get("id") ?? ""
            _ = try await storedReport(id, key: key)
            guard let log = reconciliationLog else { throw UsageBoxError(.notFound, "no reconciliation \(id)") }
            let confirmLarge = try parameters(request).last { $0.0 == "confirm_large" }?.1 == "true"
            return JSONResponse.make(try await backend.apply(id: id, confirmLarge: confirmLarge, store: store, log: log).jsonValue)
        }
        router.post("/v1/reconciliations/:id/revert") { request, context in
            let key = try await authenticate(request, context)
            try require(key, .writer)
            let id = context.parameters.get("id") ?? ""
            _ = try await storedReport(id, key: key)
            guard let log = reconciliationLog else { throw UsageBoxError(.notFound, "no reconciliation \(id)") }
            return JSONResponse.make(try await backend.revert(id: id, store: store, log: log).jsonValue)
        }
    }

    /// A stored report the key may see: its account's keys, or admins for cross-account runs.
    func storedReport(_ id: String, key: APIKey) async throws -> ReconciliationReport {
        guard let log = reconciliationLog, let report = try await ReconciliationArchive(log).report(id: id) else {
            throw UsageBoxError(.notFound, "no reconciliation \(id)", field: "id")
        }
        let corrected = (report.corrections + report.held.map(\.correction)).map(\.accountID)
        let visible = key.role == .admin || (report.accountID.map(key.scope.allows) ?? false) && corrected.allSatisfy(key.scope.allows)
        guard visible else { throw UsageBoxError(.permissionDenied, "this key may not see reconciliation \(id)") }
        return report
    }

    /// The options from the query string and raw invoice body, or from a JSON body with `invoices`:
    /// one `ReconciliationRequest` either way, resolved as the CLI resolves it.
    func reconciliationOptions(_ request: Request, key: APIKey) async throws -> (ReconciliationOptions, dryRun: Bool) {
        let params = try parameters(request)
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limits.maxInvoiceBytes)
        } catch {
            throw UsageBoxError(.payloadTooLarge, "the invoice body is larger than the server's limit of \(limits.maxInvoiceBytes >> 20) MiB "
                                + "(usagebox serve --max-invoice-mb)")
        }
        let bytes = Array(buffer.readableBytesView)
        // The query string names the vendor in the simple form; otherwise the body is the JSON request.
        let asked = params.contains(where: { $0.0 == "vendor" }) == false
            ? try ReconciliationRequest.decode(json: bytes)
            : try ReconciliationRequest.fromParameters({ name in params.last { $0.0 == name }?.1 }, invoice: bytes)
        var options = try asked.resolve(scope: key.scope, runBy: key.keyID)
        if options.account == nil, options.accountMap.isEmpty, key.role != .admin, let only = key.accountID {
            options.account = only
        }
        return (options, asked.dryRun ?? false)
    }
}
