import Metering

/// What applying a run answers: the batch answer of the corrections it posted, and how many of
/// the run's held corrections are still not posted. Without the count, an apply that posted
/// nothing because everything was held read as `accepted: 0`, as if the run had nothing to correct.
@dynamicMemberLookup
public struct ApplyAnswer: WireShape, Equatable {
    public var batch: IngestResponse
    /// Held corrections (`needs_review` and the like) this run has not posted: `confirm_large` posts them.
    public var heldNotPosted: Int

    public init(batch: IngestResponse, heldNotPosted: Int) {
        self.batch = batch
        self.heldNotPosted = heldNotPosted
    }

    public subscript<T>(dynamicMember path: KeyPath<IngestResponse, T>) -> T { batch[keyPath: path] }

    enum CodingKeys: String, CodingKey { case heldNotPosted = "held_not_posted" }

    public init(from decoder: any Decoder) throws {
        batch = try IngestResponse(from: decoder)
        // A server from before the count answers without it.
        heldNotPosted = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(Int.self, forKey: .heldNotPosted) ?? 0
    }

    /// The batch answer's members, then `held_not_posted`.
    public func encode(to encoder: any Encoder) throws {
        try batch.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(heldNotPosted, forKey: .heldNotPosted)
    }
}

extension ReconciliationReport {
    /// Held corrections of this run that are not on its record of posted ids.
    public var heldNotPosted: Int {
        let posted = Set(appliedEventIDs)
        return held.filter { !posted.contains($0.correction.eventID) }.count
    }
}
