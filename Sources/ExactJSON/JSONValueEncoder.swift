/// Encodes `Encodable` values into a `JSONValue`, exactly: integers keep every digit, members keep
/// their declaration order, an absent optional is written as `null` (the wire shapes name every
/// field), and a `[String: String]` is written with sorted keys so output is deterministic.
///
/// ```swift
/// let text = JSONWriter.write(try JSONValueEncoder.encode(report))
/// ```
public enum JSONValueEncoder {
    public static func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let root = Slot()
        try Self.encode(value, into: root, path: [])
        return root.resolve()
    }

    static func encode<T: Encodable>(_ value: T, into slot: Slot, path: [any CodingKey]) throws {
        if let json = value as? JSONValue {
            slot.content = .value(json)
            return
        }
        if let map = value as? [String: String] {
            slot.content = .value(.object(map.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
            return
        }
        try value.encode(to: Encoder(slot: slot, codingPath: path))
    }

    final class Slot {
        enum Content {
            case empty
            case value(JSONValue)
            case object(ObjectStore)
            case array(ArrayStore)
        }

        var content = Content.empty

        func resolve() -> JSONValue {
            switch content {
            case .empty: return .object([])
            case let .value(v): return v
            case let .object(o): return .object(o.keys.map { ($0, o.slots[$0]!.resolve()) })
            case let .array(a): return .array(a.slots.map { $0.resolve() })
            }
        }
    }

    final class ObjectStore {
        var keys: [String] = []
        var slots: [String: Slot] = [:]

        func slot(_ key: String) -> Slot {
            if let s = slots[key] { return s }
            let s = Slot()
            keys.append(key)
            slots[key] = s
            return s
        }
    }

    final class ArrayStore {
        var slots: [Slot] = []
        func append() -> Slot {
            let s = Slot()
            slots.append(s)
            return s
        }
    }

    struct Encoder: Swift.Encoder {
        let slot: Slot
        var codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            let store: ObjectStore
            if case let .object(existing) = slot.content {
                store = existing
            } else {
                store = ObjectStore()
                slot.content = .object(store)
            }
            return KeyedEncodingContainer(Keyed<Key>(store: store, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            let store: ArrayStore
            if case let .array(existing) = slot.content {
                store = existing
            } else {
                store = ArrayStore()
                slot.content = .array(store)
            }
            return Unkeyed(store: store, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(slot: slot, codingPath: codingPath) }
    }

    static func number<T: BinaryInteger>(_ v: T) -> JSONValue { .number(String(v)) }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let store: ObjectStore
        var codingPath: [any CodingKey]

        func set(_ key: Key, _ value: JSONValue) { store.slot(key.stringValue).content = .value(value) }

        mutating func encodeNil(forKey key: Key) throws { set(key, .null) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { set(key, .bool(value)) }
        mutating func encode(_ value: String, forKey key: Key) throws { set(key, .string(value)) }
        mutating func encode(_ value: Double, forKey key: Key) throws { set(key, .number("\(value)")) }
        mutating func encode(_ value: Float, forKey key: Key) throws { set(key, .number("\(value)")) }
        mutating func encode(_ value: Int, forKey key: Key) throws { set(key, number(value)) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { set(key, number(value)) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { set(key, number(value)) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { set(key, number(value)) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { set(key, number(value)) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { set(key, number(value)) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { set(key, number(value)) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { set(key, number(value)) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { set(key, number(value)) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { set(key, number(value)) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try JSONValueEncoder.encode(value, into: store.slot(key.stringValue), path: codingPath + [key])
        }

        // An absent optional is `null`, not a missing member.
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { set(key, value.map { .bool($0) } ?? .null) }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { set(key, value.map { .string($0) } ?? .null) }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { set(key, value.map { .number("\($0)") } ?? .null) }
        mutating func encodeIfPresent(_ value: Float?, forKey key: Key) throws { set(key, value.map { .number("\($0)") } ?? .null) }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { set(key, value.map(number) ?? .null) }
        mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) throws { set(key, value.map(number) ?? .null) }
        mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) throws { set(key, value.map(number) ?? .null) }
        mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) throws { set(key, value.map(number) ?? .null) }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { set(key, value.map(number) ?? .null) }
        mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) throws { set(key, value.map(number) ?? .null) }
        mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) throws { set(key, value.map(number) ?? .null) }
        mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) throws { set(key, value.map(number) ?? .null) }
        mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) throws { set(key, value.map(number) ?? .null) }
        mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws { set(key, value.map(number) ?? .null) }
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            guard let value else { return set(key, .null) }
            try encode(value, forKey: key)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            Encoder(slot: store.slot(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            Encoder(slot: store.slot(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
        }

        mutating func superEncoder() -> any Swift.Encoder { Encoder(slot: store.slot("super"), codingPath: codingPath) }
        mutating func superEncoder(forKey key: Key) -> any Swift.Encoder { Encoder(slot: store.slot(key.stringValue), codingPath: codingPath + [key]) }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let store: ArrayStore
        var codingPath: [any CodingKey]
        var count: Int { store.slots.count }

        func add(_ value: JSONValue) { store.append().content = .value(value) }

        mutating func encodeNil() throws { add(.null) }
        mutating func encode(_ value: Bool) throws { add(.bool(value)) }
        mutating func encode(_ value: String) throws { add(.string(value)) }
        mutating func encode(_ value: Double) throws { add(.number("\(value)")) }
        mutating func encode(_ value: Float) throws { add(.number("\(value)")) }
        mutating func encode(_ value: Int) throws { add(number(value)) }
        mutating func encode(_ value: Int8) throws { add(number(value)) }
        mutating func encode(_ value: Int16) throws { add(number(value)) }
        mutating func encode(_ value: Int32) throws { add(number(value)) }
        mutating func encode(_ value: Int64) throws { add(number(value)) }
        mutating func encode(_ value: UInt) throws { add(number(value)) }
        mutating func encode(_ value: UInt8) throws { add(number(value)) }
        mutating func encode(_ value: UInt16) throws { add(number(value)) }
        mutating func encode(_ value: UInt32) throws { add(number(value)) }
        mutating func encode(_ value: UInt64) throws { add(number(value)) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            try JSONValueEncoder.encode(value, into: store.append(), path: codingPath)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            Encoder(slot: store.append(), codingPath: codingPath).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            Encoder(slot: store.append(), codingPath: codingPath).unkeyedContainer()
        }

        mutating func superEncoder() -> any Swift.Encoder { Encoder(slot: store.append(), codingPath: codingPath) }
    }

    struct Single: SingleValueEncodingContainer {
        let slot: Slot
        var codingPath: [any CodingKey]

        func set(_ value: JSONValue) { slot.content = .value(value) }

        mutating func encodeNil() throws { set(.null) }
        mutating func encode(_ value: Bool) throws { set(.bool(value)) }
        mutating func encode(_ value: String) throws { set(.string(value)) }
        mutating func encode(_ value: Double) throws { set(.number("\(value)")) }
        mutating func encode(_ value: Float) throws { set(.number("\(value)")) }
        mutating func encode(_ value: Int) throws { set(number(value)) }
        mutating func encode(_ value: Int8) throws { set(number(value)) }
        mutating func encode(_ value: Int16) throws { set(number(value)) }
        mutating func encode(_ value: Int32) throws { set(number(value)) }
        mutating func encode(_ value: Int64) throws { set(number(value)) }
        mutating func encode(_ value: UInt) throws { set(number(value)) }
        mutating func encode(_ value: UInt8) throws { set(number(value)) }
        mutating func encode(_ value: UInt16) throws { set(number(value)) }
        mutating func encode(_ value: UInt32) throws { set(number(value)) }
        mutating func encode(_ value: UInt64) throws { set(number(value)) }
        mutating func encode<T: Encodable>(_ value: T) throws { try JSONValueEncoder.encode(value, into: slot, path: codingPath) }
    }
}
