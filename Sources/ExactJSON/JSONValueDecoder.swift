/// Decodes `Decodable` values from a `JSONValue`, exactly: an `Int64` is read from the number's
/// digits (never through `Double`), a `JSONValue` member is handed over as it is, and a type that
/// lists its wire fields (`StrictWireDecodable`) refuses any other member, so a misspelt field
/// is an error rather than a silent default.
///
/// ```swift
/// let report = try JSONValueDecoder.decode(VerifyReport.self, from: try JSONParser.parse(text))
/// ```
public enum JSONValueDecoder {
    /// Why a value could not be decoded, and where (`filters[0].op`).
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var message: String
        public var description: String { path.isEmpty ? message : "\(path): \(message)" }
        public init(path: String, message: String) {
            self.path = path
            self.message = message
        }
    }

    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, userInfo: [CodingUserInfoKey: any Sendable] = [:]) throws -> T {
        try decodeValue(type, from: value, path: [], userInfo: userInfo)
    }

    static func decodeValue<T: Decodable>(
        _ type: T.Type, from value: JSONValue, path: [any CodingKey],
        userInfo: [CodingUserInfoKey: any Sendable]
    ) throws -> T {
        if T.self == JSONValue.self { return value as! T }
        if let strict = T.self as? any StrictWireDecodable.Type {
            guard case let .object(members) = value else { throw failure(path, "must be an object, got \(value.typeName)") }
            let known = strict.wireFields
            if let unknown = members.first(where: { !known.contains($0.0) }) {
                throw failure(path + [AnyKey(unknown.0)], "unknown field '\(unknown.0)'")
            }
        }
        return try T(from: Decoder(value: value, codingPath: path, userInfo: userInfo))
    }

    static func failure(_ path: [any CodingKey], _ message: String) -> Failure {
        Failure(path: pathText(path), message: message)
    }

    /// `filters[0].op`: member names joined with dots, array positions in brackets.
    public static func pathText(_ path: [any CodingKey]) -> String {
        var out = ""
        for key in path {
            if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
        }
        return out
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(_ s: String) { stringValue = s }
        init(index: Int) { stringValue = "\(index)"; intValue = index }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { self.init(index: intValue) }
    }

    struct Decoder: Swift.Decoder {
        let value: JSONValue
        var codingPath: [any CodingKey]
        let info: [CodingUserInfoKey: any Sendable]
        var userInfo: [CodingUserInfoKey: Any] { info }

        init(value: JSONValue, codingPath: [any CodingKey], userInfo: [CodingUserInfoKey: any Sendable]) {
            self.value = value
            self.codingPath = codingPath
            self.info = userInfo
        }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            guard case let .object(members) = value else { throw failure(codingPath, "must be an object, got \(value.typeName)") }
            return KeyedDecodingContainer(Keyed<Key>(members: members, codingPath: codingPath, info: info))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            guard case let .array(items) = value else { throw failure(codingPath, "must be an array, got \(value.typeName)") }
            return Unkeyed(items: items, codingPath: codingPath, info: info)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(value: value, codingPath: codingPath, info: info) }
    }

    /// The scalar readers every container shares.
    static func bool(_ v: JSONValue, _ path: [any CodingKey]) throws -> Bool {
        guard case let .bool(b) = v else { throw failure(path, "must be true or false, got \(v.typeName)") }
        return b
    }

    static func string(_ v: JSONValue, _ path: [any CodingKey]) throws -> String {
        guard case let .string(s) = v else { throw failure(path, "must be a string, got \(v.typeName)") }
        return s
    }

    static func integer<T: FixedWidthInteger>(_ v: JSONValue, _ path: [any CodingKey]) throws -> T {
        guard case let .number(text) = v else { throw failure(path, "must be an integer, got \(v.typeName)") }
        guard let wide = Int64(exactly: text), let n = T(exactly: wide) else { throw failure(path, "must be a whole number in range, got \(text)") }
        return n
    }

    static func double(_ v: JSONValue, _ path: [any CodingKey]) throws -> Double {
        guard case let .number(text) = v, let d = Double(text) else { throw failure(path, "must be a number, got \(v.typeName)") }
        return d
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let members: [(String, JSONValue)]
        var codingPath: [any CodingKey]
        let info: [CodingUserInfoKey: any Sendable]

        var allKeys: [Key] { members.compactMap { Key(stringValue: $0.0) } }
        func contains(_ key: Key) -> Bool { members.contains { $0.0 == key.stringValue } }

        func value(_ key: Key) throws -> JSONValue {
            guard let v = members.first(where: { $0.0 == key.stringValue })?.1 else {
                throw failure(codingPath + [key], "is required")
            }
            return v
        }

        func decodeNil(forKey key: Key) throws -> Bool { (try? value(key)) == .null || !contains(key) }
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try bool(try value(key), codingPath + [key]) }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { try string(try value(key), codingPath + [key]) }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try double(try value(key), codingPath + [key]) }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try double(try value(key), codingPath + [key])) }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try integer(try value(key), codingPath + [key]) }
        func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try integer(try value(key), codingPath + [key]) }
        func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try integer(try value(key), codingPath + [key]) }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try integer(try value(key), codingPath + [key]) }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try integer(try value(key), codingPath + [key]) }
        func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try integer(try value(key), codingPath + [key]) }
        func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try integer(try value(key), codingPath + [key]) }
        func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try integer(try value(key), codingPath + [key]) }
        func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try integer(try value(key), codingPath + [key]) }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try integer(try value(key), codingPath + [key]) }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try decodeValue(type, from: try value(key), path: codingPath + [key], userInfo: info)
        }

        // Absent and `null` both read as nil.
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            guard let v = members.first(where: { $0.0 == key.stringValue })?.1, v != .null else { return nil }
            return try decodeValue(type, from: v, path: codingPath + [key], userInfo: info)
        }
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try decodeIfPresent(Box<String>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try decodeIfPresent(Box<Bool>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try decodeIfPresent(Box<Int>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try decodeIfPresent(Box<Int64>.self, forKey: key)?.value }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try Decoder(value: try value(key), codingPath: codingPath + [key], userInfo: info).container(keyedBy: type)
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try Decoder(value: try value(key), codingPath: codingPath + [key], userInfo: info).unkeyedContainer()
        }
        func superDecoder() throws -> any Swift.Decoder { Decoder(value: .object(members), codingPath: codingPath, userInfo: info) }
        func superDecoder(forKey key: Key) throws -> any Swift.Decoder {
            Decoder(value: try value(key), codingPath: codingPath + [key], userInfo: info)
        }
    }

    /// Routes the optional scalar readers through the generic one (absent or null → nil).
    struct Box<T: Decodable>: Decodable {
        let value: T
        init(from decoder: any Swift.Decoder) throws { value = try decoder.singleValueContainer().decode(T.self) }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let items: [JSONValue]
        var codingPath: [any CodingKey]
        let info: [CodingUserInfoKey: any Sendable]
        var currentIndex = 0
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }

        init(items: [JSONValue], codingPath: [any CodingKey], info: [CodingUserInfoKey: any Sendable]) {
            self.items = items
            self.codingPath = codingPath
            self.info = info
        }

        mutating func next() throws -> (JSONValue, [any CodingKey]) {
            guard !isAtEnd else { throw failure(codingPath, "has too few items") }
            defer { currentIndex += 1 }
            return (items[currentIndex], codingPath + [AnyKey(index: currentIndex)])
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, items[currentIndex] == .null else { return false }
            currentIndex += 1
            return true
        }
        mutating func decode(_ type: Bool.Type) throws -> Bool { let (v, p) = try next(); return try bool(v, p) }
        mutating func decode(_ type: String.Type) throws -> String { let (v, p) = try next(); return try string(v, p) }
        mutating func decode(_ type: Double.Type) throws -> Double { let (v, p) = try next(); return try double(v, p) }
        mutating func decode(_ type: Float.Type) throws -> Float { let (v, p) = try next(); return Float(try double(v, p)) }
        mutating func decode(_ type: Int.Type) throws -> Int { let (v, p) = try next(); return try integer(v, p) }
        mutating func decode(_ type: Int8.Type) throws -> Int8 { let (v, p) = try next(); return try integer(v, p) }
        mutating func decode(_ type: Int16.Type) throws -> Int16 { let (v, p) = try next(); return try integer(v, p) }
        mutating func decode(_ type: Int32.Type) throws -> Int32 { let (v, p) = try next(); return try integer(v, p) }
        mutating func decode(_ type: Int64.Type) throws -> Int64 { let (v, p) = try next(); return try integer(v, p) }
        mutating func decode(_ type: UInt.Type) throws -> UInt { let (v, p) = try next(); return try integer(v, p) }
        mutating func decode(_ type: UInt8.Type) throws -> UInt8 { let (v, p) = try next(); return try integer(v, p) }
        mutating func decode(_ type: UInt16.Type) throws -> UInt16 { let (v, p) = try next(); return try integer(v, p) }
        mutating func decode(_ type: UInt32.Type) throws -> UInt32 { let (v, p) = try next(); return try integer(v, p) }
        mutating func decode(_ type: UInt64.Type) throws -> UInt64 { let (v, p) = try next(); return try integer(v, p) }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let (v, p) = try next()
            return try decodeValue(type, from: v, path: p, userInfo: info)
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            let (v, p) = try next()
            return try Decoder(value: v, codingPath: p, userInfo: info).container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            let (v, p) = try next()
            return try Decoder(value: v, codingPath: p, userInfo: info).unkeyedContainer()
        }
        mutating func superDecoder() throws -> any Swift.Decoder {
            let (v, p) = try next()
            return Decoder(value: v, codingPath: p, userInfo: info)
        }
    }

    struct Single: SingleValueDecodingContainer {
        let value: JSONValue
        var codingPath: [any CodingKey]
        let info: [CodingUserInfoKey: any Sendable]

        func decodeNil() -> Bool { value == .null }
        func decode(_ type: Bool.Type) throws -> Bool { try bool(value, codingPath) }
        func decode(_ type: String.Type) throws -> String { try string(value, codingPath) }
        func decode(_ type: Double.Type) throws -> Double { try double(value, codingPath) }
        func decode(_ type: Float.Type) throws -> Float { Float(try double(value, codingPath)) }
        func decode(_ type: Int.Type) throws -> Int { try integer(value, codingPath) }
        func decode(_ type: Int8.Type) throws -> Int8 { try integer(value, codingPath) }
        func decode(_ type: Int16.Type) throws -> Int16 { try integer(value, codingPath) }
        func decode(_ type: Int32.Type) throws -> Int32 { try integer(value, codingPath) }
        func decode(_ type: Int64.Type) throws -> Int64 { try integer(value, codingPath) }
        func decode(_ type: UInt.Type) throws -> UInt { try integer(value, codingPath) }
        func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(value, codingPath) }
        func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(value, codingPath) }
        func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(value, codingPath) }
        func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(value, codingPath) }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeValue(type, from: value, path: codingPath, userInfo: info) }
    }
}

/// A wire shape that names every member it may carry: decoding it refuses any other member.
///
/// ```swift
/// struct SQLQueryBody: Codable, StrictWireDecodable {
///     var sql: String
///     static let wireFields: Set<String> = ["sql"]
/// }
/// try JSONValueDecoder.decode(SQLQueryBody.self, from: body)   // {"sql": …, "limit": 5} → "limit: unknown field"
/// ```
public protocol StrictWireDecodable: Decodable {
    static var wireFields: Set<String> { get }
}

extension StrictWireDecodable where Self: Decodable {
    /// Members read from `CodingKeys`, when the type declares them `CaseIterable`.
    public static func fields<K: CodingKey & CaseIterable>(_ keys: K.Type) -> Set<String> { Set(K.allCases.map(\.stringValue)) }
}

/// `JSONValue` travels through both coders as itself; other coders see numbers as `Int64` or `Double`.
extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .number(String(i))
        } else if let d = try? c.decode(Double.self) {
            self = .number("\(d)")
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            let o = try c.decode([String: JSONValue].self)
            self = .object(o.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .number(text):
            if let i = Int64(exactly: text) { try c.encode(i) } else { try c.encode(Double(text) ?? 0) }
        case let .string(s): try c.encode(s)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(Dictionary(o, uniquingKeysWith: { a, _ in a }))
        }
    }
}
