public import ExactJSON

// The answers of the API as Codable shapes. Each type's members are its wire names; where a member
// is left out rather than written `null` (`field` of a problem, `days` of a verify without
// group_by=day), `encode(to:)` says so.

extension IngestResponse: WireShape {
    enum CodingKeys: String, CodingKey { case accepted, duplicates, conflicts, rejected, errors }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        accepted = try c.decode(Int.self, forKey: .accepted)
        duplicates = try c.decode(Int.self, forKey: .duplicates)
        conflicts = try c.decode(Int.self, forKey: .conflicts)
        rejected = try c.decode(Int.self, forKey: .rejected)
        errors = try c.decode([Problem].self, forKey: .errors)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(accepted, forKey: .accepted)
        try c.encode(duplicates, forKey: .duplicates)
        try c.encode(conflicts, forKey: .conflicts)
        try c.encode(rejected, forKey: .rejected)
        try c.encode(errors, forKey: .errors)
    }
}

extension IngestResponse.Problem.Status: Codable {}

extension IngestResponse.Problem: Codable {
    enum CodingKeys: String, CodingKey { case index, eventID = "event_id", status, code, message, field, file, line }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            index: try c.decode(Int.self, forKey: .index), eventID: try c.decodeIfPresent(String.self, forKey: .eventID),
            status: try c.decode(Status.self, forKey: .status), code: try c.decode(String.self, forKey: .code),
            message: try c.decode(String.self, forKey: .message), field: try c.decodeIfPresent(String.self, forKey: .field))
        file = try c.decodeIfPresent(String.self, forKey: .file)
        line = try c.decodeIfPresent(Int.self, forKey: .line)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(index, forKey: .index)
        try c.encodeIfPresent(eventID, forKey: .eventID)
        try c.encode(status, forKey: .status)
        try c.encode(code, forKey: .code)
        try c.encode(message, forKey: .message)
        // `field`, and `file` and `line` (CLI only), appear only when known.
        if let field { try c.encode(field, forKey: .field) }
        if let file { try c.encode(file, forKey: .file) }
        if let line { try c.encode(line, forKey: .line) }
    }
}

extension VerifyReport: WireShape {
    enum CodingKeys: String, CodingKey {
        case ok, mode, rollupSum = "rollup_sum", rawSum = "raw_sum", drift, segmentsChecked = "segments_checked"
        case segmentsCorrupt = "segments_corrupt", mismatches, corruptSegments = "corrupt_segments", days
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            ok: try c.decode(Bool.self, forKey: .ok), mode: try c.decode(VerifyMode.self, forKey: .mode),
            rollupSum: try c.decode(Int64.self, forKey: .rollupSum), rawSum: try c.decode(Int64.self, forKey: .rawSum),
            drift: try c.decode(Int64.self, forKey: .drift), segmentsChecked: try c.decode(Int.self, forKey: .segmentsChecked),
            segmentsCorrupt: try c.decode(Int.self, forKey: .segmentsCorrupt), mismatches: try c.decode([Mismatch].self, forKey: .mismatches),
            days: try c.decodeIfPresent([Day].self, forKey: .days))
        corruptSegments = try c.decodeIfPresent([CorruptSegment].self, forKey: .corruptSegments) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ok, forKey: .ok)
        try c.encode(mode, forKey: .mode)
        try c.encode(rollupSum, forKey: .rollupSum)
        try c.encode(rawSum, forKey: .rawSum)
        try c.encode(drift, forKey: .drift)
        try c.encode(segmentsChecked, forKey: .segmentsChecked)
        try c.encode(segmentsCorrupt, forKey: .segmentsCorrupt)
        try c.encode(mismatches, forKey: .mismatches)
        if !corruptSegments.isEmpty { try c.encode(corruptSegments, forKey: .corruptSegments) }
        if let days { try c.encode(days, forKey: .days) }
    }
}

extension VerifyReport.Mismatch: Codable {
    enum CodingKeys: String, CodingKey {
        case meterID = "meter_id", modelID = "model_id", kind, dimensions, hour, rollupSum = "rollup_sum", rawSum = "raw_sum"
        case rollupCount = "rollup_count", rawCount = "raw_count", rollup
        case rollupMin = "rollup_min", rawMin = "raw_min", rollupMax = "rollup_max", rawMax = "raw_max"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let dims = try c.decode([String: String].self, forKey: .dimensions)
        self.init(
            meterID: try c.decode(String.self, forKey: .meterID), modelID: try c.decodeIfPresent(String.self, forKey: .modelID),
            kind: try c.decode(EventKind.self, forKey: .kind),
            dimensions: UsageEvent.canonicalDimensions(
                dims.map { UsageEvent.Dimension($0.key, $0.value) }
                    .sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }),
            hour: try c.decode(Timestamp.self, forKey: .hour), rollupSum: try c.decode(Int64.self, forKey: .rollupSum),
            rawSum: try c.decode(Int64.self, forKey: .rawSum), rollupCount: try c.decode(Int64.self, forKey: .rollupCount),
            rawCount: try c.decode(Int64.self, forKey: .rawCount), rollup: try c.decodeIfPresent(Rollup.self, forKey: .rollup) ?? .hour)
        if let rollupMin = try c.decodeIfPresent(Int64.self, forKey: .rollupMin) {
            extrema = Extrema(
                rollupMin: rollupMin, rawMin: try c.decode(Int64.self, forKey: .rawMin), rollupMax: try c.decode(Int64.self, forKey: .rollupMax),
                rawMax: try c.decode(Int64.self, forKey: .rawMax))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(meterID, forKey: .meterID)
        try c.encodeIfPresent(modelID, forKey: .modelID)
        try c.encode(kind, forKey: .kind)
        try c.encode(JSONValue.object(UsageEvent.decodeDimensions(dimensions).map { ($0.key, .string($0.value)) }), forKey: .dimensions)
        try c.encode(hour, forKey: .hour)
        try c.encode(rollupSum, forKey: .rollupSum)
        try c.encode(rawSum, forKey: .rawSum)
        try c.encode(rollupCount, forKey: .rollupCount)
        try c.encode(rawCount, forKey: .rawCount)
        try c.encode(rollup, forKey: .rollup)
        if let extrema {
            try c.encode(extrema.rollupMin, forKey: .rollupMin)
            try c.encode(extrema.rawMin, forKey: .rawMin)
            try c.encode(extrema.rollupMax, forKey: .rollupMax)
            try c.encode(extrema.rawMax, forKey: .rawMax)
        }
    }
}

extension ExplainReport: WireShape {
    enum CodingKeys: String, CodingKey {
        case accountID = "account_id", from, to, totals, breakdown, segments, chainHead = "chain_head", integrity, corrections
        case segmentsOmitted = "segments_omitted", correctionsOmitted = "corrections_omitted", postClose = "post_close"
    }

    /// The totals row: a breakdown without its model.
    struct Totals: Codable {
        var usage, corrections, net, count: Int64
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let totals = try c.decode(Totals.self, forKey: .totals)
        var t = Breakdown()
        t.usage = totals.usage
        t.corrections = totals.corrections
        t.count = totals.count
        self.init(
            accountID: try c.decode(String.self, forKey: .accountID),
            range: try TimeRange(from: try c.decode(Timestamp.self, forKey: .from), to: try c.decode(Timestamp.self, forKey: .to)),
            totals: t, breakdown: try c.decode([Breakdown].self, forKey: .breakdown),
            segments: try c.decode([SegmentInfo].self, forKey: .segments), chainHead: try c.decodeIfPresent(String.self, forKey: .chainHead),
            corrections: try c.decode([CorrectionInfo].self, forKey: .corrections))
        integrity = try c.decodeIfPresent(ScrubProgress.self, forKey: .integrity)
        segmentsOmitted = try c.decodeIfPresent(Int.self, forKey: .segmentsOmitted) ?? 0
        correctionsOmitted = try c.decodeIfPresent(Int.self, forKey: .correctionsOmitted) ?? 0
        postClose = try c.decodeIfPresent(PostClose.self, forKey: .postClose) ?? PostClose()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(accountID, forKey: .accountID)
        try c.encode(range.from, forKey: .from)
        try c.encode(range.to, forKey: .to)
        try c.encode(Totals(usage: totals.usage, corrections: totals.corrections, net: totals.net, count: totals.count), forKey: .totals)
        try c.encode(breakdown, forKey: .breakdown)
        try c.encode(segments, forKey: .segments)
        try c.encode(segmentsOmitted, forKey: .segmentsOmitted)
        try c.encodeIfPresent(chainHead, forKey: .chainHead)
        try c.encodeIfPresent(integrity, forKey: .integrity)
        try c.encode(corrections, forKey: .corrections)
        try c.encode(correctionsOmitted, forKey: .correctionsOmitted)
        try c.encode(postClose, forKey: .postClose)
    }
}

extension ExplainReport.Breakdown: Codable {
    enum CodingKeys: String, CodingKey { case modelID = "model_id", unit, usage, corrections, net, count }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(modelID: try c.decodeIfPresent(String.self, forKey: .modelID))
        unit = try c.decodeIfPresent(String.self, forKey: .unit)
        usage = try c.decode(Int64.self, forKey: .usage)
        corrections = try c.decode(Int64.self, forKey: .corrections)
        count = try c.decode(Int64.self, forKey: .count)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(modelID, forKey: .modelID)
        try c.encodeIfPresent(unit, forKey: .unit)
        try c.encode(usage, forKey: .usage)
        try c.encode(corrections, forKey: .corrections)
        try c.encode(net, forKey: .net)
        try c.encode(count, forKey: .count)
    }
}

extension ExplainReport.CorrectionInfo: Codable {
    enum CodingKeys: String, CodingKey {
        case eventID = "event_id", accountID = "account_id", correctionRef = "correction_ref", modelID = "model_id", meterID = "meter_id"
        case quantity, timestamp, dimensions, postClose = "post_close"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let event = UsageEvent(
            eventID: try c.decode(String.self, forKey: .eventID), accountID: try c.decode(String.self, forKey: .accountID),
            meterID: try c.decode(String.self, forKey: .meterID), modelID: try c.decodeIfPresent(String.self, forKey: .modelID),
            kind: .correction, correctionRef: try c.decodeIfPresent(String.self, forKey: .correctionRef),
            quantity: try c.decode(Int64.self, forKey: .quantity), unit: nil,
            timestamp: try c.decode(Timestamp.self, forKey: .timestamp),
            dimensions: try c.decode([String: String].self, forKey: .dimensions))
        self.init(event: event, postClose: try c.decode(Bool.self, forKey: .postClose))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(event.eventID, forKey: .eventID)
        try c.encode(event.accountID, forKey: .accountID)
        try c.encodeIfPresent(event.correctionRef, forKey: .correctionRef)
        try c.encodeIfPresent(event.modelID, forKey: .modelID)
        try c.encode(event.meterID, forKey: .meterID)
        try c.encode(event.quantity, forKey: .quantity)
        try c.encode(event.timestamp, forKey: .timestamp)
        try c.encode(JSONValue.object(event.dimensions.map { ($0.key, .string($0.value)) }), forKey: .dimensions)
        try c.encode(postClose, forKey: .postClose)
    }
}

extension UsageEvent: Encodable {
    enum CodingKeys: String, CodingKey {
        case eventID = "event_id", accountID = "account_id", meterID = "meter_id", modelID = "model_id", kind
        case correctionRef = "correction_ref", quantity, unit, timestamp, dimensions
    }

    /// The event as it travels: absent optional fields are left out, as a client would send them.
    /// (Reading events goes through `EventDecoder`, which validates each one.)
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(eventID, forKey: .eventID)
        try c.encode(accountID, forKey: .accountID)
        try c.encode(meterID, forKey: .meterID)
        if let modelID { try c.encode(modelID, forKey: .modelID) }
        try c.encode(kind, forKey: .kind)
        if let correctionRef { try c.encode(correctionRef, forKey: .correctionRef) }
        try c.encode(quantity, forKey: .quantity)
        if let unit { try c.encode(unit, forKey: .unit) }
        try c.encode(timestamp, forKey: .timestamp)
        try c.encode(JSONValue.object(dimensions.map { ($0.key, .string($0.value)) }), forKey: .dimensions)
    }

    public var jsonValue: JSONValue {
        do { return try JSONValueEncoder.encode(self) } catch { preconditionFailure("an event could not encode itself: \(error)") }
    }
}

extension UsageResult: WireShape {
    /// Decoding a usage answer needs the query it answers: its group names and metrics.
    public static let queryKey = CodingUserInfoKey(rawValue: "usagebox.query")!

    enum CodingKeys: String, CodingKey { case source, groups }

    struct Name: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        guard let query = decoder.userInfo[Self.queryKey] as? UsageQuery else {
            throw JSONValueDecoder.Failure(path: "", message: "a usage answer is read against the query it answers")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var groups: [UsageGroup] = []
        var list = try c.nestedUnkeyedContainer(forKey: .groups)
        while !list.isAtEnd {
            let g = try list.nestedContainer(keyedBy: Name.self)
            var agg = UsageAggregate()
            agg.sum = try g.decodeIfPresent(Int64.self, forKey: Name("sum")) ?? 0
            agg.count = try g.decodeIfPresent(Int64.self, forKey: Name("count")) ?? 0
            if let m = try g.decodeIfPresent(Int64.self, forKey: Name("min")) { agg.min = m }
            if let m = try g.decodeIfPresent(Int64.self, forKey: Name("max")) { agg.max = m }
            groups.append(UsageGroup(keys: try query.groupBy.map { try g.decodeIfPresent(String.self, forKey: Name($0.name)) }, aggregate: agg))
        }
        self.init(source: try c.decode(String.self, forKey: .source), groupBy: query.groupBy, metrics: query.metrics, groups: groups)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(source, forKey: .source)
        var list = c.nestedUnkeyedContainer(forKey: .groups)
        for g in groups {
            var o = list.nestedContainer(keyedBy: Name.self)
            for (field, key) in zip(groupBy, g.keys) { try o.encodeIfPresent(key, forKey: Name(field.name)) }
            let empty = g.aggregate.count == 0
            for metric in metrics {
                switch metric {
                case .sum: try o.encode(g.aggregate.sum, forKey: Name("sum"))
                case .count: try o.encode(g.aggregate.count, forKey: Name("count"))
                case .min: try o.encodeIfPresent(empty ? nil : g.aggregate.min, forKey: Name("min"))
                case .max: try o.encodeIfPresent(empty ? nil : g.aggregate.max, forKey: Name("max"))
                case .avg: try o.encode(empty ? JSONValue.null : .number(Self.average(g.aggregate)), forKey: Name("avg"))
                }
            }
        }
    }
}
