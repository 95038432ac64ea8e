public import Metering

/// A failed expectation inside a conformance check, naming where it was written.
public struct ConformanceFailure: Error, CustomStringConvertible {
    public var message: String
    public var file: String
    public var line: Int
    public var description: String { "\(file):\(line): \(message)" }
}

/// One named behaviour every `MeterStore` must show. Run each against a fresh, empty store.
public struct ConformanceCheck: Sendable, CustomStringConvertible {
    public var name: String
    public var run: @Sendable (any MeterStore) async throws -> Void
    public var description: String { name }

    public init(_ name: String, _ run: @escaping @Sendable (any MeterStore) async throws -> Void) {
        self.name = name
        self.run = run
    }
}

func expect(_ condition: Bool, _ message: @autoclosure () -> String, file: String = #fileID, line: Int = #line) throws {
    guard condition else { throw ConformanceFailure(message: message(), file: file, line: line) }
}

func expectEqual<T: Equatable>(_ a: T, _ b: T, _ what: String = "", file: String = #fileID, line: Int = #line) throws {
    guard a == b else { throw ConformanceFailure(message: "\(what.isEmpty ? "" : what + ": ")\(a) ≠ \(b)", file: file, line: line) }
}

func expectThrows(
    _ code: UsageBoxError.Code, field: String? = nil, file: String = #fileID, line: Int = #line,
    _ body: () async throws -> Void
) async throws {
    do {
        try await body()
    } catch let e as UsageBoxError {
        try expectEqual(e.code, code, "error code (\(e.message))", file: file, line: line)
        if let field { try expectEqual(e.field, field, "error field", file: file, line: line) }
        return
    }
    throw ConformanceFailure(message: "expected a \(code.rawValue) error", file: file, line: line)
}

/// Helpers to write events tersely in checks.
public enum Fixture {
    public static func ts(_ text: String) -> Timestamp { Timestamp(rfc3339: text)! }

    public static func event(
        _ id: String, account: String = "acct_1", meter: String = "tokens", model: String? = "m1", kind: EventKind = .usage,
        ref: String? = nil, quantity: Int64, unit: String? = "tokens", at: String = "2026-05-10T12:00:00Z",
        dims: [String: String] = [:]
    ) -> IngestItem {
        .event(
            UsageEvent(
                eventID: id, accountID: account, meterID: meter, modelID: model, kind: kind, correctionRef: ref,
                quantity: quantity, unit: unit, timestamp: ts(at), dimensions: dims))
    }

    public static let may = try! TimeRange(from: ts("2026-05-01T00:00:00Z"), to: ts("2026-06-01T00:00:00Z"))
}
