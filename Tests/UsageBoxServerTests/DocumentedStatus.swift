import Testing
import UsageBoxServer

/// Every answer the in-process tests get must be a status the document lists for its operation:
/// the document is what clients and the schemathesis run read, so an unlisted 400 or 403 is a
/// bug in one or the other. Answers of no operation (404, 405, HEAD) are not checked here.
func expectDocumented(_ method: String, _ uri: String, _ status: Int, sourceLocation: SourceLocation = #_sourceLocation) {
    let path = String(uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    guard let op = APIOperation.answering(method, path) else { return }
    #expect(
        op.statuses.contains(status), "\(method) \(uri.prefix(120)) answered \(status), which openapi.yaml does not list for \(op.id)",
        sourceLocation: sourceLocation)
}
