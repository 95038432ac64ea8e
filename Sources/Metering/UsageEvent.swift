public import ExactJSON

public enum EventKind: String, Sendable, Hashable, CaseIterable {
    case usage = "Usage"
    case correction = "Correction"
}

/// A validated, immutable usage or correction event (CONTRACT §2).
public struct UsageEvent: Sendable, Hashable {
    public var eventID: String
    public var accountID: String
    public var meterID: String
    public var modelID: String?
    public var kind: EventKind
    public var correctionRef: String?
    public var quantity: Int64
    public var unit: String?
    public var timestamp: Timestamp
    /// Sorted by key, so equal content has one representation.
    public var dimensions: [Dimension]

    public struct Dimension: Sendable, Hashable {
        public var key: String
        public var value: String
        public init(_ key: String, _ value: String) { self.key = key; self.value = value }
    }

    public init(
        eventID: String, accountID: String, meterID: String, modelID: String? = nil, kind: EventKind = .usage,
        correctionRef: String? = nil, quantity: Int64, unit: String? = nil, timestamp: Timestamp,
        dimensions: [String: String] = [:]
    ) {
        self.eventID = eventID
        self.accountID = accountID
        self.meterID = meterID
        self.modelID = modelID
        self.kind = kind
        self.correctionRef = correctionRef
        self.quantity = quantity
        self.unit = unit
        self.timestamp = timestamp
        self.dimensions = dimensions.map { Dimension($0.key, $0.value) }.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }

    public init(
        eventID: String, accountID: String, meterID: String, modelID: String?, kind: EventKind,
        correctionRef: String?, quantity: Int64, unit: String?, timestamp: Timestamp, sortedDimensions: [Dimension]
    ) {
        self.eventID = eventID
        self.accountID = accountID
        self.meterID = meterID
        self.modelID = modelID
        self.kind = kind
        self.correctionRef = correctionRef
        self.quantity = quantity
        self.unit = unit
        self.timestamp = timestamp
        self.dimensions = sortedDimensions
    }

    public func dimension(_ key: String) -> String? {
        dimensions.first { $0.key == key }?.value
    }
}

extension UsageEvent {
    /// The canonical encoding: compact JSON, keys in byte order, absent fields omitted, timestamp in
    /// UTC (`Timestamp.rfc3339`), quantity as an integer, one trailing newline.
    ///
    /// Duplicate-vs-conflict decisions and segment hashes both use it, so two events with the same
    /// meaning always encode to the same bytes whatever JSON text they arrived as.
    public var canonicalEncoding: String {
        var out = "{\"account_id\":"
        JSONWriter.appendString(accountID, to: &out)
        if let correctionRef {
            out += ",\"correction_ref\":"
            JSONWriter.appendString(correctionRef, to: &out)
        }
        if !dimensions.isEmpty {
            out += ",\"dimensions\":"
            out += Self.canonicalDimensions(dimensions)
        }
        out += ",\"event_id\":"
        JSONWriter.appendString(eventID, to: &out)
        out += ",\"kind\":\"" + kind.rawValue + "\",\"meter_id\":"
        JSONWriter.appendString(meterID, to: &out)
        if let modelID {
            out += ",\"model_id\":"
            JSONWriter.appendString(modelID, to: &out)
        }
        out += ",\"quantity\":" + String(quantity) + ",\"timestamp\":\"" + timestamp.rfc3339 + "\""
        if let unit {
            out += ",\"unit\":"
            JSONWriter.appendString(unit, to: &out)
        }
        out += "}\n"
        return out
    }

    /// Dimensions as a compact JSON object in key byte order (empty string for none).
    public static func canonicalDimensions(_ dims: [Dimension]) -> String {
        if dims.isEmpty { return "{}" }
        var out = "{"
        for (i, d) in dims.enumerated() {
            if i > 0 { out += "," }
            JSONWriter.appendString(d.key, to: &out)
            out += ":"
            JSONWriter.appendString(d.value, to: &out)
        }
        return out + "}"
    }

    /// Decodes `canonicalDimensions` output (or any flat string→string JSON object).
    public static func decodeDimensions(_ text: String) -> [Dimension] {
        guard text != "{}", !text.isEmpty, case let .object(members)? = try? JSONParser.parse(text) else { return [] }
        return members.compactMap { k, v in v.stringValue.map { Dimension(k, $0) } }
    }

    /// The event as the API shows it.
    public var jsonValue: JSONValue {
        var m: [(String, JSONValue)] = [
            ("event_id", .string(eventID)), ("account_id", .string(accountID)), ("meter_id", .string(meterID)),
        ]
        if let modelID { m.append(("model_id", .string(modelID))) }
        m.append(("kind", .string(kind.rawValue)))
        if let correctionRef { m.append(("correction_ref", .string(correctionRef))) }
        m.append(("quantity", .int(quantity)))
        if let unit { m.append(("unit", .string(unit))) }
        m.append(("timestamp", .string(timestamp.rfc3339)))
        m.append(("dimensions", .object(dimensions.map { ($0.key, .string($0.value)) })))
        return .object(m)
    }
}
