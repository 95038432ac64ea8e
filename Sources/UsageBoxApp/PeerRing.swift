public import Metering

/// Which of several `usagebox serve` processes writes each account: the one at
/// `FNV-1a(account) mod n` in the peers list every process is given in the same order. One writer
/// per account is what makes ingest exactly-once on a store without transactions (ClickHouse).
public struct PeerRing: Sendable {
    public let peers: [String]
    /// This process's place in `peers`.
    public let node: Int

    public init(peers: [String], node: Int) throws {
        guard !peers.isEmpty else { throw UsageBoxError.invalidArgument("--peers names at least this server", field: "peers") }
        guard peers.indices.contains(node) else {
            throw UsageBoxError.invalidArgument("--node is this server's place in --peers, 0 to \(peers.count - 1)", field: "node")
        }
        self.peers = peers
        self.node = node
    }

    public func owner(of account: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in account.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Int(hash % UInt64(peers.count))
    }

    public func owns(_ account: String) -> Bool { owner(of: account) == node }
}
