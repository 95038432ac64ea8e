import Foundation
import MeterStoreHTTPClient
public import Metering
public import ReconCore

/// A store behind several `usagebox serve` processes: each account's writes (events and period
/// closes) go to the process that owns it (`PeerRing`) — here, or forwarded to that peer over its
/// API with the cluster's admin key — and every read goes to the shared store directly.
public final class OwnedWritesStore: ForwardingStore, KeyStore, ReconciliationLog, @unchecked Sendable {
    // Immutable after init.
    let base: ServerStore
    public var inner: any MeterStore { base }
    let ring: PeerRing
    let peers: [HTTPMeterStore?]

    public init(base: ServerStore, ring: PeerRing, key: String) throws {
        self.base = base
        self.ring = ring
        peers = try ring.peers.enumerated().map { i, url in
            i == ring.node ? nil : try HTTPMeterStore(baseURL: url, key: key, timeoutSeconds: 60, extraHeaders: [(WriteRouting.header, String(ring.node))])
        }
    }

    public func ingest(_ batch: IngestBatch) async throws -> IngestResponse {
        // A forwarded batch is ours by the sender's ring; the store refuses it if ours disagrees.
        if WriteRouting.forwarded { return try await base.ingest(batch) }
        var local: [Int] = []
        var remote: [Int: [Int]] = [:]
        for (i, item) in batch.items.enumerated() {
            if case let .event(e) = item, !ring.owns(e.accountID) { remote[ring.owner(of: e.accountID), default: []].append(i) } else { local.append(i) }
        }
        if remote.isEmpty { return try await base.ingest(batch) }
        var answer = IngestResponse()
        func merge(_ part: IngestResponse, _ indices: [Int]) {
            var part = part
            for j in part.errors.indices { part.errors[j].index = indices[part.errors[j].index] }
            answer.add(part)
        }
        if !local.isEmpty { merge(try await base.ingest(local.map { batch.items[$0] }), local) }
        for (owner, indices) in remote.sorted(by: { $0.key < $1.key }) {
            guard let peer = peers[owner] else { continue }
            do {
                merge(try await peer.ingest(indices.map { batch.items[$0] }), indices)
            } catch let e as UsageBoxError {
                // An owner whose store is down (503) or busy (429) says so, and when to come back.
                let passedOn: UsageBoxError.Code = [.unavailable, .rateLimited].contains(e.code) ? e.code : .internal
                var failure = UsageBoxError(
                    passedOn, "the server that writes these accounts (\(ring.peers[owner])) did not answer: \(e.message); retry the batch")
                failure.retryAfter = e.retryAfter
                throw failure
            }
        }
        answer.errors.sort { $0.index < $1.index }
        return answer
    }

    /// Checks read the shared store whoever owns the account (`ForwardingStore` does not forward
    /// the batch, for stores that replace `verify(_:)`; this one does not).
    public func verify(accounts: [String], range: TimeRange, mode: VerifyMode) async throws -> [VerifyReport] {
        try await inner.verify(accounts: accounts, range: range, mode: mode)
    }

    public func closePeriod(account: String, period: String) async throws -> PeriodRecord {
        if WriteRouting.forwarded || ring.owns(account) { return try await base.closePeriod(account: account, period: period) }
        guard let peer = peers[ring.owner(of: account)] else { return try await base.closePeriod(account: account, period: period) }
        return try await peer.closePeriod(account: account, period: period)
    }

    public func createKey(account: String?, role: KeyRole) async throws -> (APIKey, secret: String) {
        try await base.createKey(account: account, role: role)
    }
    public func listKeys() async throws -> [APIKey] { try await base.listKeys() }
    public func revokeKey(_ keyID: String) async throws -> APIKey { try await base.revokeKey(keyID) }
    public func authenticate(secret: String) async throws -> APIKey? { try await base.authenticate(secret: secret) }

    public func saveReconciliation(id: String, vendor: String, createdAt: Timestamp, runBy: String, reportJSON: String, summaryJSON: String) async throws {
        try await base.saveReconciliation(id: id, vendor: vendor, createdAt: createdAt, runBy: runBy, reportJSON: reportJSON, summaryJSON: summaryJSON)
    }
    public func reconciliation(id: String) async throws -> String? { try await base.reconciliation(id: id) }
    public func reconciliationHead(id: String, characters: Int) async throws -> String? {
        try await base.reconciliationHead(id: id, characters: characters)
    }
    public func recentReconciliations(
        limit: Int, before: (createdAt: Timestamp, id: String)?
    ) async throws -> [(id: String, createdAt: Timestamp, summaryJSON: String?)] {
        try await base.recentReconciliations(limit: limit, before: before)
    }
    public func recentReconciliations(
        limit: Int, ofAccounts accounts: [String], before: (createdAt: Timestamp, id: String)?
    ) async throws -> [(id: String, createdAt: Timestamp, summaryJSON: String?)] {
        try await base.recentReconciliations(limit: limit, ofAccounts: accounts, before: before)
    }
    public func markReconciliationApplied(id: String, reportJSON: String, summaryJSON: String, appliedAt: Timestamp) async throws {
        try await base.markReconciliationApplied(id: id, reportJSON: reportJSON, summaryJSON: summaryJSON, appliedAt: appliedAt)
    }
}
