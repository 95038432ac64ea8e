public import ExactJSON
import Foundation

/// Why one event of a batch was not stored.
public struct EventRejection: Sendable, Hashable, Error {
    public var code: String
    public var message: String
    public var field: String?
    public var eventID: String?

    /// Each part bounded: a 1,500-character unknown field name, echoed in `message` and `field`,
    /// made a 16 MB batch's answer 31 MB, and a 15 MB invalid event id was echoed whole (tester R).
    /// An id no event may have is cut as `EventDecoder.shown` cuts values.
    public init(code: String, message: String, field: String? = nil, eventID: String? = nil) {
        self.code = code
        self.message = message.utf8.count <= 1_024 ? message : "\(message.prefix(512))… (\(message.utf8.count) bytes)"
        self.field = field.map(EventDecoder.shown)
        self.eventID = eventID.map { $0.utf8.count <= EventDecoder.maxIDLength ? $0 : EventDecoder.shown($0) }
    }
}

extension EventRejection {
    /// Why an event whose unit is not its meter's is refused. Meters are shared by every account:
    /// naming the unit the meter counts told a writer of one account what another had chosen for a
    /// meter it may not see (tester R), so the message names only what was sent.
    public static func unitMismatch(meterID: String, unit: String) -> String {
        "meter \(meterID) counts another unit than '\(EventDecoder.shown(unit))' (GET /v1/meters names it to a key that may read the meter)"
    }
}

/// One item of an ingest batch: a valid event, or the reason it could not be read.
public enum IngestItem: Sendable {
    case event(UsageEvent)
    case invalid(EventRejection)
}

/// Turns wire events (JSON objects, CSV rows) into validated `UsageEvent`s, enforcing docs/events.md.
public struct EventDecoder: Sendable {
    public static let maxDimensions = 32
    public static let maxDimensionKeyLength = 64
    public static let maxDimensionValueLength = 256
    public static let maxIDLength = 200
    /// How far in the future a timestamp may be.
    public static let futureLeeway: Int64 = 5 * 60 * 1_000_000

    public static let eventFields: Set<String> = [
        "event_id", "account_id", "meter_id", "model_id", "kind", "correction_ref", "quantity", "unit", "timestamp",
        "dimensions",
    ]

    public var now: @Sendable () -> Timestamp

    public init(now: @escaping @Sendable () -> Timestamp = Timestamp.now) {
        self.now = now
    }

    /// Decodes one JSON event.
    public func decode(_ value: JSONValue) -> IngestItem {
        guard case let .object(members) = value else {
            return .invalid(EventRejection(code: "invalid_event", message: "an event must be a JSON object, got \(value.typeName)"))
        }
        var f = RawFields()
        var eventIDHint: String?
        for (key, v) in members where key == "event_id" { eventIDHint = v.stringValue }
        for (key, v) in members {
            switch key {
            case "dimensions":
                switch v {
                case .null: break
                case let .object(dm):
                    f.dimensions.reserveCapacity(dm.count)
                    for (dk, dv) in dm {
                        guard let s = dv.stringValue else {
                            return .invalid(
                                reject("invalid_dimensions", "dimension '\(dk)' must be a string, got \(dv.typeName)", "dimensions.\(dk)", eventIDHint))
                        }
                        f.dimensions.append(UsageEvent.Dimension(dk, s))
                    }
                default:
                    return .invalid(reject("invalid_dimensions", "dimensions must be an object of strings, got \(v.typeName)", "dimensions", eventIDHint))
                }
            case "quantity":
                switch v {
                case let .number(t): f.quantity = t
                case let .string(s): f.quantity = s
                default:
                    return .invalid(reject("invalid_quantity", "quantity must be an integer, got \(v.typeName)", "quantity", eventIDHint))
                }
            default:
                guard let slot = RawFields.Slot(rawValue: key) else {
                    return .invalid(reject("unknown_field", "unknown event field '\(Self.shown(key))'", key, eventIDHint))
                }
                switch v {
                case .null: break
                case let .string(s): f[slot] = s
                default:
                    return .invalid(reject("invalid_\(key)", "\(key) must be a string, got \(v.typeName)", key, eventIDHint))
                }
            }
        }
        return build(f)
    }

    /// Decodes one CSV row given as header → cell; an empty cell is absent, and every column that
    /// is not an event field is a dimension.
    public func decode(row: [(String, String)]) -> IngestItem {
        var f = RawFields()
        // A rejection names the row's event id where it has one (it read null for a row with one).
        let eventIDHint = row.first { $0.0 == "event_id" && !$0.1.isEmpty }?.1
        for (key, cell) in row where !cell.isEmpty {
            if key == "quantity" {
                f.quantity = cell
            } else if key == "dimensions" {
                guard case let .object(dm)? = try? JSONParser.parse(cell) else {
                    return .invalid(reject("invalid_dimensions", "the dimensions column must hold a JSON object of strings", "dimensions", eventIDHint))
                }
                for (dk, dv) in dm {
                    guard let s = dv.stringValue else {
                        return .invalid(reject("invalid_dimensions", "dimension '\(dk)' must be a string", "dimensions.\(dk)", eventIDHint))
                    }
                    f.dimensions.append(UsageEvent.Dimension(dk, s))
                }
            } else if let slot = RawFields.Slot(rawValue: key) {
                f[slot] = cell
            } else {
                f.dimensions.append(UsageEvent.Dimension(key, cell))
            }
        }
        // A column and the dimensions column naming one key twice: which was meant is not known.
        var seen: [String: String] = [:]
        for d in f.dimensions {
            if let other = seen.updateValue(d.value, forKey: d.key), other != d.value {
                return .invalid(
                    reject(
                        "invalid_dimensions", "dimension '\(d.key)' is given twice with different values ('\(other)', '\(d.value)')", "dimensions.\(d.key)",
                        eventIDHint
                    ))
            }
        }
        return build(f)
    }

    /// Event fields as read, before validation.
    struct RawFields {
        enum Slot: String {
            case eventID = "event_id", accountID = "account_id", meterID = "meter_id", modelID = "model_id",
                kind, correctionRef = "correction_ref", unit, timestamp
        }
        var values: [String?] = Array(repeating: nil, count: 8)
        var quantity: String?
        var dimensions: [UsageEvent.Dimension] = []

        subscript(_ slot: Slot) -> String? {
            get { values[Self.index(slot)] }
            set { values[Self.index(slot)] = newValue }
        }

        static func index(_ slot: Slot) -> Int {
            switch slot {
            case .eventID: return 0
            case .accountID: return 1
            case .meterID: return 2
            case .modelID: return 3
            case .kind: return 4
            case .correctionRef: return 5
            case .unit: return 6
            case .timestamp: return 7
            }
        }
    }

    private func reject(_ code: String, _ message: String, _ field: String?, _ eventID: String?) -> EventRejection {
        EventRejection(code: code, message: message, field: field, eventID: eventID)
    }

    private func build(_ raw: RawFields) -> IngestItem {
        let eventIDValue = raw[.eventID]
        let quantityText = raw.quantity
        func fail(_ code: String, _ message: String, _ field: String) -> IngestItem {
            .invalid(reject(code, message, field, eventIDValue))
        }
        func identifier(_ name: String, required: Bool) -> (String?, IngestItem?) {
            guard let value = raw[RawFields.Slot(rawValue: name)!] else {
                return (nil, required ? fail("missing_\(name)", "\(name) is required", name) : nil)
            }
            guard Self.isValidIdentifier(value) else {
                return (nil, fail("invalid_\(name)", "\(name) must be \(EventDecoder.identifierRule)", name))
            }
            return (value, nil)
        }
        let (eventID, e1) = identifier("event_id", required: true)
        if let e1 { return e1 }
        let (accountID, e2) = identifier("account_id", required: true)
        if let e2 { return e2 }
        let (meterID, e3) = identifier("meter_id", required: true)
        if let e3 { return e3 }
        let (modelID, e4) = identifier("model_id", required: false)
        if let e4 { return e4 }

        var kind = EventKind.usage
        if let k = raw[.kind] {
            guard let parsed = EventKind(rawValue: k) else {
                return fail("invalid_kind", "kind must be 'Usage' or 'Correction', got '\(Self.shown(k))'", "kind")
            }
            kind = parsed
        }
        let correctionRef = raw[.correctionRef]
        switch kind {
        case .usage:
            if correctionRef != nil {
                return fail("invalid_correction_ref", "correction_ref is only allowed on Correction events", "correction_ref")
            }
        case .correction:
            guard let ref = correctionRef else {
                return fail("missing_correction_ref", "a Correction needs a correction_ref", "correction_ref")
            }
            guard Self.isValidIdentifier(ref) else {
                return fail("invalid_correction_ref", "correction_ref must be \(EventDecoder.identifierRule)", "correction_ref")
            }
        }
        guard let qText = quantityText else { return fail("missing_quantity", "quantity is required", "quantity") }
        guard let quantity = Int64(exactly: qText) else {
            if qText.contains(".") || qText.contains("e") || qText.contains("E") {
                return fail(
                    "invalid_quantity", "quantity must be a whole number; '\(Self.shown(qText))' is a fraction or exponent and is never rounded", "quantity")
            }
            return fail("invalid_quantity", "quantity must be a 64-bit integer, got '\(Self.shown(qText))'", "quantity")
        }
        if kind == .usage, quantity < 0 {
            return fail("invalid_quantity", "a Usage quantity must be ≥ 0", "quantity")
        }
        if kind == .correction, quantity == 0 {
            return fail("invalid_quantity", "a Correction quantity must not be 0", "quantity")
        }
        var unit: String?
        if let text = raw[.unit] {
            guard let composed = Self.faithfulNFC(text) else {
                return fail(
                    "invalid_unit", "unit cannot be put in Unicode NFC here (a run of combining marks too long, or a character newer than Unicode 15.1)", "unit"
                )
            }
            if let problem = Self.unitProblem(composed) { return fail("invalid_unit", problem, "unit") }
            unit = composed
        }
        guard let tsText = raw[.timestamp] else {
            return fail("missing_timestamp", "timestamp is required", "timestamp")
        }
        guard let timestamp = Timestamp(rfc3339: tsText) else {
            // RFC 3339 allows a leap second; the meter's time has none (refused as not RFC 3339, it misled: tester R).
            if tsText.utf8.count >= 19, Array(tsText.utf8)[16...18].elementsEqual(":60".utf8), Timestamp(rfc3339: Self.secondBefore(tsText)) != nil {
                return fail("invalid_timestamp", "a leap second (:60) is not accepted: send it as :59, got '\(Self.shown(tsText))'", "timestamp")
            }
            return fail("invalid_timestamp", "timestamp must be RFC 3339 with an offset (e.g. 2026-05-01T12:00:00Z), got '\(Self.shown(tsText))'", "timestamp")
        }
        guard timestamp.microseconds >= 0 else {
            return fail("invalid_timestamp", "timestamp must not be before 1970-01-01", "timestamp")
        }
        if timestamp.microseconds > now().microseconds + Self.futureLeeway {
            return fail("timestamp_in_future", "timestamp \(tsText) is more than 5 minutes in the future", "timestamp")
        }
        // A later value of the same key wins, as in a JSON object read into a map; sorted by key bytes.
        // Text is kept in Unicode NFC: Swift compares strings by canonical equivalence and SQL by
        // bytes, so `café` sent precomposed and decomposed must be one spelling, or one batch
        // stored both under the first one's bytes (its hashes then failed verify).
        var dims = raw.dimensions
        if dims.contains(where: { !Self.isASCII($0.key) || !Self.isASCII($0.value) }) {
            var composed: [UsageEvent.Dimension] = []
            composed.reserveCapacity(dims.count)
            for d in dims {
                guard let k = Self.faithfulNFC(d.key), let v = Self.faithfulNFC(d.value) else {
                    return fail(
                        "invalid_dimensions",
                        "a dimension's key or value cannot be put in Unicode NFC here (a run of combining marks too long, or a character newer than Unicode 15.1)",
                        "dimensions")
                }
                composed.append(UsageEvent.Dimension(k, v))
            }
            dims = composed
        }
        if dims.count > 1 {
            dims.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            var unique: [UsageEvent.Dimension] = []
            unique.reserveCapacity(dims.count)
            for d in dims { if unique.last?.key == d.key { unique[unique.count - 1] = d } else { unique.append(d) } }
            dims = unique
        }
        guard dims.count <= Self.maxDimensions else {
            return fail("invalid_dimensions", "at most \(Self.maxDimensions) dimensions, got \(dims.count)", "dimensions")
        }
        for d in dims {
            let (k, v) = (d.key, d.value)
            guard !k.isEmpty, k.unicodeScalars.count <= Self.maxDimensionKeyLength else {
                return fail("invalid_dimensions", "dimension keys must be 1–\(Self.maxDimensionKeyLength) characters", "dimensions")
            }
            // A key is named in group_by and filters: control characters (NUL among them) could never be.
            guard !k.unicodeScalars.contains(where: Self.isControl) else {
                return fail("invalid_dimensions", "dimension keys must not contain control characters", "dimensions")
            }
            if let problem = Self.dimensionValueProblem(v) {
                return fail("invalid_dimensions", "dimension '\(k.filter { !$0.isASCII || $0.asciiValue! >= 0x20 })' \(problem)", "dimensions.\(k)")
            }
        }
        return .event(
            UsageEvent(
                eventID: eventID!, accountID: accountID!, meterID: meterID!, modelID: modelID, kind: kind,
                correctionRef: correctionRef, quantity: quantity, unit: unit, timestamp: timestamp, sortedDimensions: dims
            ))
    }

    static func isASCII(_ s: String) -> Bool { s.utf8.allSatisfy { $0 < 0x80 } }

    /// `…T23:59:60Z` as `…T23:59:59Z`, to tell a leap second from text that is no time at all.
    static func secondBefore(_ leap: String) -> String {
        var bytes = Array(leap.utf8)
        bytes[17] = UInt8(ascii: "5")
        bytes[18] = UInt8(ascii: "9")
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Why `value` cannot be a dimension's value, or nil. NUL ends strings in SQL and C APIs: a
    /// value holding one could be stored but never matched.
    public static func dimensionValueProblem(_ value: String) -> String? {
        if value.utf8.contains(0) { return "has a NUL character in its value" }
        if value.unicodeScalars.count > maxDimensionValueLength { return "is longer than \(maxDimensionValueLength) characters" }
        return nil
    }

    /// C0 and C1 control characters and DEL.
    public static func isControl(_ u: Unicode.Scalar) -> Bool { u.value < 0x20 || (0x7F...0x9F).contains(u.value) }

    /// What is wrong with a unit (NFC), or nil. A unit is compared with its meter's: a control
    /// character (NUL ends it in SQL) would make one unit read as another.
    public static func unitProblem(_ unit: String) -> String? {
        if unit.isEmpty || unit.unicodeScalars.count > 64 { return "unit must be 1–64 characters" }
        if unit.unicodeScalars.contains(where: isControl) { return "unit must not contain control characters" }
        return nil
    }

    /// The string in Unicode NFC (canonical composition); ASCII as it is. Where the platform's
    /// composition is not faithful, the string as it is (see `faithfulNFC`).
    public static func nfc(_ s: String) -> String { faithfulNFC(s) ?? s }

    /// The string in NFC, or nil where Foundation's composition is not canonically equivalent to
    /// it: on Linux it cuts a long run of combining marks to 64 (40 × U+0344 was stored as 64 of
    /// its 80 marks, and an event differing past them answered `duplicate`: tester R). Swift's
    /// `==` is canonical equivalence, by the standard library's own tables.
    public static func faithfulNFC(_ s: String) -> String? {
        if isASCII(s) { return s }
        // Characters newer than Foundation's tables (Unicode 16: Kirat Rai, Tulu-Tigalari) are
        // left as sent, in either spelling, while Swift compares the two equal: one value was
        // stored twice, two groups in SQL and one in a usage read (tester R2).
        if s.unicodeScalars.contains(where: { ($0.properties.age?.major ?? 0) >= newestUnicodeMajor }) { return nil }
        let composed = s.precomposedStringWithCanonicalMapping
        return composed == s ? composed : nil
    }

    /// The first Unicode version whose characters are refused in text that is normalized.
    static let newestUnicodeMajor = 16

    /// What `isValidIdentifier` accepts, as every refusal of an id says it: "of [A-Za-z0-9_.:-]"
    /// alone left `.` and `..` refused for no reason the message gave.
    public static let identifierRule = "1–\(maxIDLength) characters of [A-Za-z0-9_.:-], not dots alone"

    /// A refused value as a rejection quotes it: at most 80 characters (a 5 MB quantity was
    /// echoed whole into its answer).
    public static func shown(_ s: String) -> String { s.utf8.count <= 80 ? s : "\(s.prefix(80))… (\(s.utf8.count) bytes)" }

    /// `identifierRule`.
    public static func isValidIdentifier(_ s: String) -> Bool {
        let u = s.utf8
        guard !u.isEmpty, u.count <= maxIDLength else { return false }
        // `.` and `..` are path segments to every HTTP client: `/v1/accounts/../usage` reached
        // `/v1/usage`, every account's total.
        guard u.contains(where: { $0 != UInt8(ascii: ".") }) else { return false }
        for b in u {
            switch b {
            case 48...57, 65...90, 97...122, UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "-"): continue
            default: return false
            }
        }
        return true
    }
}
