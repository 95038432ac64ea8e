/// A batch of ingest items with everything that follows from the events alone worked out up
/// front: each event's canonical encoding and dimension text, and the batch's distinct accounts
/// and rollup groups.
///
/// A store has one writer, so work done here instead of inside the write transaction runs on
/// another core: the file ingestor builds batch N+1 while the store writes batch N, and HTTP
/// requests build theirs on their own tasks.
public struct IngestBatch: Sendable {
    public let items: [IngestItem]
    /// One entry per item, in order; nil for an invalid item.
    public let prepared: [Prepared?]
    /// Every event's canonical encoding, back to back (`Prepared.canonical` says where).
    public let canonical: [UInt8]
    /// The distinct (account, meter, model, kind, unit, dimensions) of the batch's events.
    public let groups: [Group]
    /// The distinct accounts, in first-seen order.
    public let accounts: [String]

    public struct Prepared: Sendable {
        /// Where the event's `canonicalEncoding` bytes are in `IngestBatch.canonical`.
        public var canonical: Range<Int>
        /// The SHA-256 of those bytes.
        public var contentHash: ContentHash
        /// Index into `groups`.
        public var group: Int
        /// Index into `accounts`.
        public var account: Int
    }

    /// Events that count under the same rollup row family when a meter keeps every dimension.
    public struct Group: Sendable, Hashable {
        public var account: String
        public var meter: String
        public var model: String?
        public var kind: EventKind
        public var unit: String?
        /// `UsageEvent.canonicalDimensions` of the events' dimensions.
        public var dimensionsText: String
        /// The dimensions themselves (sorted by key), for meters that keep only some.
        public var dimensions: [UsageEvent.Dimension]

        // By bytes (String+Bytes.swift): two spellings of one text are two groups, as they are two rows.
        public static func == (a: Group, b: Group) -> Bool {
            a.account == b.account && a.meter == b.meter && a.model == b.model && a.kind == b.kind && bytesEqual(a.unit, b.unit)
                && a.dimensionsText.bytesEqual(b.dimensionsText)
        }

        public func hash(into h: inout Hasher) {
            h.combine(account)
            h.combine(meter)
            h.combine(model)
            dimensionsText.hashBytes(into: &h)
        }
    }

    public init(_ items: [IngestItem]) {
        self.items = items
        var prepared: [Prepared?] = []
        prepared.reserveCapacity(items.count)
        var canonical: [UInt8] = []
        canonical.reserveCapacity(items.count * 224)
        var groups: [Group] = []
        var groupIndex: [Group: Int] = [:]
        var accounts: [String] = []
        var accountIndex: [String: Int] = [:]
        // Consecutive events often share a group; comparing with the last one skips a hash.
        var lastGroup = -1
        for item in items {
            guard case let .event(e) = item else {
                prepared.append(nil)
                continue
            }
            let start = canonical.count
            e.appendCanonical(to: &canonical)
            let text = UsageEvent.canonicalDimensions(e.dimensions)
            let g: Int
            if lastGroup >= 0, groups[lastGroup].matches(e, dimensionsText: text) {
                g = lastGroup
            } else {
                let candidate = Group(
                    account: e.accountID, meter: e.meterID, model: e.modelID, kind: e.kind, unit: e.unit,
                    dimensionsText: text, dimensions: e.dimensions)
                if let known = groupIndex[candidate] {
                    g = known
                } else {
                    g = groups.count
                    groups.append(candidate)
                    groupIndex[candidate] = g
                }
                lastGroup = g
            }
            let a: Int
            if let known = accountIndex[e.accountID] {
                a = known
            } else {
                a = accounts.count
                accounts.append(e.accountID)
                accountIndex[e.accountID] = a
            }
            let hash = canonical.withUnsafeBytes { ContentHash(canonical: UnsafeRawBufferPointer(rebasing: $0[start...])) }
            prepared.append(Prepared(canonical: start..<canonical.count, contentHash: hash, group: g, account: a))
        }
        self.prepared = prepared
        self.canonical = canonical
        self.groups = groups
        self.accounts = accounts
    }

    public var count: Int { items.count }
}

extension IngestBatch.Group {
    func matches(_ e: UsageEvent, dimensionsText text: String) -> Bool {
        account == e.accountID && meter == e.meterID && model == e.modelID && kind == e.kind && bytesEqual(unit, e.unit)
            && dimensionsText.bytesEqual(text)
    }
}
