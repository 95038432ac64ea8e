public import ExactJSON

public enum EventKind: String, Sendable, Hashable, CaseIterable {
    case usage = "Usage"
    case correction = "Correction"
}

/// A validated, immutable usage or correction event (docs/events.md).
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
        var bytes: [UInt8] = []
        appendCanonical(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the canonical encoding as UTF-8 bytes (the hashing hot path: no intermediate String).
    public func appendCanonical(to out: inout [UInt8]) {
        out.reserveCapacity(out.count + 256)
        @inline(__always) func raw(_ s: StaticString) {
            s.withUTF8Buffer { out.append(contentsOf: $0) }
        }
        @inline(__always) func str(_ s: String) { JSONWriter.appendString(s, to: &out) }
        raw("{\"account_id\":")
        str(accountID)
        if let correctionRef {
            raw(",\"correction_ref\":")
            str(correctionRef)
        }
        if !dimensions.isEmpty {
            raw(",\"dimensions\":")
            Self.appendDimensions(dimensions, to: &out)
        }
        raw(",\"event_id\":")
        str(eventID)
        raw(",\"kind\":")
        kind == .usage ? raw("\"Usage\"") : raw("\"Correction\"")
        raw(",\"meter_id\":")
        str(meterID)
        if let modelID {
            raw(",\"model_id\":")
            str(modelID)
        }
        raw(",\"quantity\":")
        JSONWriter.appendInteger(quantity, to: &out)
        raw(",\"timestamp\":\"")
        timestamp.appendRFC3339(to: &out)
        out.append(0x22)
        if let unit {
            raw(",\"unit\":")
            str(unit)
        }
        raw("}\n")
    }

    /// Dimensions as a compact JSON object in key byte order (`{}` for none).
    public static func canonicalDimensions(_ dims: [Dimension]) -> String {
        var out: [UInt8] = []
        appendDimensions(dims, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `canonicalDimensions` as UTF-8 bytes: the canonical encoding's member and the
    /// stores' dimension text are this one writer.
    public static func appendDimensions(_ dims: [Dimension], to out: inout [UInt8]) {
        out.append(0x7B)
        for (i, d) in dims.enumerated() {
            if i > 0 { out.append(0x2C) }
            JSONWriter.appendString(d.key, to: &out)
            out.append(0x3A)
            JSONWriter.appendString(d.value, to: &out)
        }
        out.append(0x7D)
    }

    /// Decodes `canonicalDimensions` output (or any flat string→string JSON object).
    public static func decodeDimensions(_ text: String) -> [Dimension] {
        guard text != "{}", !text.isEmpty, case let .object(members)? = try? JSONParser.parse(text) else { return [] }
        return members.compactMap { k, v in v.stringValue.map { Dimension(k, $0) } }
    }

}
