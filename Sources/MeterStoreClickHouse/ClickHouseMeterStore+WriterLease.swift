import Foundation
import Metering

/// Which accounts a process writes, as the writer lease compares it with other writers': `of`
/// processes share the accounts by hash (`serve --peers`), and this one is `node`. Alone (a
/// `serve` without peers, any CLI command): one of one, every account.
public struct WriterSlot: Sendable, Hashable {
    public var of: Int
    public var node: Int
    public init(of: Int = 1, node: Int = 0) {
        self.of = max(of, 1)
        self.node = node
    }
    public static let alone = WriterSlot()

    /// Whether two writers can own one account: the same place in the same split, or two splits.
    func overlaps(_ other: WriterSlot) -> Bool { of != other.of || node == other.node }
}

/// The writer lease. Exactly-once on ClickHouse rests on one writer per account (docs/clickhouse.md):
/// that writer decides every id against what it read. Two processes writing one account — two
/// `serve` without `--peers`, a CLI `ingest --store` beside a server — each stored what the other
/// had already stored. So a process writes only while it holds a lease in the `writers` table:
///
/// - To take it, a process writes its row (heartbeat: ClickHouse's `now()`), then reads the rows
///   of live writers (a heartbeat in the last `leaseSeconds`, not released). If any other can own
///   one of its accounts, it releases its row and answers 503 naming that writer. Two processes
///   that write and then read cannot both miss each other: at most one goes on (both may yield;
///   their retries come apart).
/// - It renews the row every `renewEvery` while it writes, and writes only within `writeWithin`
///   of its last renewal (measured from before that renewal was sent, on its own clock), well
///   inside the `leaseSeconds` others wait: an idle or stalled process lets the lease lapse and
///   takes it again before its next write.
/// - Taking the lease is a restart: what the process knew of its accounts (ids, open segments,
///   units) is forgotten and read again, and open segments and unsettled rollups are brought up to
///   the stored events, since another process may have written meanwhile.
/// - A process that stops releases its row; one killed holds it for `leaseSeconds`, during which
///   writes elsewhere are answered 503 (retry).
extension ClickHouseMeterStore {
    static let leaseSeconds = 10
    public static let renewEvery: Duration = .seconds(2)
    public static let writeWithin: Duration = .seconds(6)

    /// Holds the lease before a write: renews it when due, or takes it (`acquire`), reading the
    /// accounts again. False when not held and not to be taken. Runs under `writer.exclusive`.
    @discardableResult
    func holdWriterLease(acquire: Bool = true) async throws -> Bool {
        let start = ContinuousClock.now
        if let renewed = await writer.leaseRenewedAt, start - renewed < leaseRenewal.within {
            if start - renewed >= leaseRenewal.every {
                try await registerWriter(released: false)
                await writer.setLeaseRenewed(start)
            }
            return true
        }
        guard acquire else { return false }
        await writer.setLeaseRenewed(nil)
        try await registerWriter(released: false)
        if let other = try await liveWriters().first(where: { $0.slot.overlaps(slot) }) {
            try? await registerWriter(released: true)
            throw UsageBoxError.unavailable(
                "another process writes accounts of this ClickHouse store: \(other.describe); "
                    + "send writes through it (--server), give each serve its place with --peers and --node, "
                    + "or stop it (one killed without stopping holds its accounts for \(Self.leaseSeconds) s)")
        }
        await writer.setLeaseRenewed(start)
        await writer.setLeaseTaken(start)
        await writer.forgetAccounts()
        try await recoverOwnedAccounts()
        return true
    }

    /// Just before a statement that stores: the lease is still held (renewed if due), or the write
    /// stops with a 503. Checked only at a write's start, a write that took long (reading ids,
    /// settling) went on after another process had taken the lease.
    func confirmWriterLease() async throws {
        let now = ContinuousClock.now
        guard let renewed = await writer.leaseRenewedAt, now - renewed < leaseRenewal.within else {
            await writer.setLeaseRenewed(nil)
            throw UsageBoxError.unavailable("this process's writer lease lapsed during the write (ClickHouse answered slowly); retry")
        }
        if now - renewed >= leaseRenewal.every {
            try await registerWriter(released: false)
            await writer.setLeaseRenewed(now)
        }
    }

    /// Gives the lease up (a process that stops): another may write at once.
    public func releaseWriterLease() async throws {
        try await writer.exclusive { await self.giveUpWriterLease() }
    }

    /// `releaseWriterLease`, under the writer.
    func giveUpWriterLease() async {
        guard await writer.leaseRenewedAt != nil else { return }
        await writer.setLeaseRenewed(nil)
        try? await registerWriter(released: true)
    }

    private func registerWriter(released: Bool) async throws {
        let host = ProcessInfo.processInfo.hostName
        do {
            try await client.command(
                """
                INSERT INTO \(t("writers")) SELECT \(ClickHouseClient.quote(writerInstance)), \(slot.of), \(slot.node), \
                \(ClickHouseClient.quote(String(host.prefix(200)))), \(ProcessInfo.processInfo.processIdentifier), now(), \(released ? 1 : 0), \
                \(await nextVersion())
                """, settings: insertSettings)
        } catch let e as ClickHouseError {
            throw Self.storeError(e) ?? UsageBoxError(.internal, "ClickHouse: \(e.message)")
        }
    }

    struct LiveWriter {
        var slot: WriterSlot
        var host: String
        var pid: Int64
        var describe: String { "pid \(pid) on \(host)" + (slot.of > 1 ? ", node \(slot.node) of \(slot.of)" : "") }
    }

    /// Other processes' rows with a heartbeat in the last `leaseSeconds`, not released.
    private func liveWriters() async throws -> [LiveWriter] {
        try await rows(
            """
            SELECT of, node, host, pid FROM (
                SELECT instance, argMax(of, version) AS of, argMax(node, version) AS node, argMax(host, version) AS host,
                       argMax(pid, version) AS pid, argMax(heartbeat_at, version) AS beat, argMax(released, version) AS gone
                FROM \(t("writers")) GROUP BY instance)
            WHERE gone = 0 AND beat >= now() - \(Self.leaseSeconds) AND instance != \(ClickHouseClient.quote(writerInstance))
            """, shardsRead: false
        ).map {
            LiveWriter(
                slot: WriterSlot(of: Int($0[0].chInt ?? 1), node: Int($0[1].chInt ?? 0)), host: $0[2].chString ?? "?", pid: $0[3].chInt ?? 0)
        }
    }
}
