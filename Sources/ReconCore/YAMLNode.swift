import Foundation
import Yams

/// A thin, line-aware reader over Yams nodes, so every config error names its file and line.
struct YAMLNode {
    let node: Node
    let file: String

    static func parse(_ text: String, file: String) throws -> YAMLNode {
        // Yams hashes every mapping key while composing (its duplicate check), an alias's whole
        // tree included: one alias of nested aliases used as a key spun a CPU for minutes before
        // the count below could run. Config keys are plain names; with anchors in the file, a key
        // that is an alias or a collection is refused unread.
        if let line = Self.complexKeyWithAnchors(text) {
            throw ConfigError(file: file, line: line, "a key here is an alias or a collection; keys are plain names")
        }
        do {
            guard let node = try Yams.compose(yaml: text) else { throw ConfigError(file: file, line: 1, "the file is empty") }
            guard Self.expandedSize(node, upTo: maxNodes) <= maxNodes else {
                throw ConfigError(
                    file: file, line: 1,
                    "the file expands to more than \(maxNodes) YAML nodes (an alias repeats all it points to): write it out, or shorten it")
            }
            return YAMLNode(node: node, file: file)
        } catch let e as YamlError {
            throw ConfigError(file: file, line: Self.line(of: e), "YAML syntax: \(Self.problem(of: e))")
        }
    }

    /// Every config is read node by node, an alias as often as it is used: 48 KB of aliases of
    /// aliases made 6,000,000 rule examples and took a server past a gigabyte. The shipped cards
    /// and rules are a few thousand nodes.
    static let maxNodes = 100_000

    /// How many nodes reading `node` visits, aliases expanded; stops counting past `limit`.
    static func expandedSize(_ node: Node, upTo limit: Int) -> Int {
        var count = 0
        var stack = [node]
        while let n = stack.popLast(), count <= limit {
            count += 1
            switch n {
            case let .mapping(m):
                for (k, v) in m {
                    stack.append(k)
                    stack.append(v)
                }
            case let .sequence(s): stack.append(contentsOf: s)
            case .scalar, .alias: break
            }
        }
        return count
    }

    /// The line of a mapping key that is an alias, an explicit `?` key or a flow collection, when
    /// the text defines anchors; nil otherwise.
    static func complexKeyWithAnchors(_ text: String) -> Int? {
        let anchors = try! NSRegularExpression(pattern: #"(^|[\s\[{,])&[^\s,\[\]{}]+"#, options: [.anchorsMatchLines])
        let whole = NSRange(text.startIndex..., in: text)
        guard anchors.firstMatch(in: text, range: whole) != nil else { return nil }
        let keys = try! NSRegularExpression(
            pattern: #"(^[ \t]*(-[ \t]+)*|[{,][ \t]*)(\?([ \t]|$)|\*[^\s,\[\]{}]+[ \t]*:([ \t]|$)|[\[{][^\n]*[\]}][ \t]*:([ \t]|$))"#,
            options: [.anchorsMatchLines])
        guard let m = keys.firstMatch(in: text, range: whole), let r = Range(m.range, in: text) else { return nil }
        return text[..<r.lowerBound].reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
    }

    static func line(of e: YamlError) -> Int {
        switch e {
        case let .scanner(_, _, mark, _), let .parser(_, _, mark, _), let .composer(_, _, mark, _): return mark.line
        case let .duplicatedKeysInMapping(_, context): return context.mark.line  // was line 1, the text naming the line
        default: return 1
        }
    }

    static func problem(of e: YamlError) -> String {
        switch e {
        case let .scanner(_, problem, _, _), let .parser(_, problem, _, _), let .composer(_, problem, _, _): return problem
        case let .duplicatedKeysInMapping(duplicates, _): return "a key given twice in one mapping (\(duplicates.joined(separator: ", ")))"
        default: return "\(e)"
        }
    }

    var line: Int { node.mark?.line ?? 0 }

    func error(_ message: String) -> ConfigError { ConfigError(file: file, line: line, message) }

    /// Mapping members in order; an error for anything else.
    func mapping(_ what: String) throws -> [(String, YAMLNode)] {
        guard case let .mapping(m) = node else { throw error("\(what) must be a mapping") }
        return try m.map { k, v in
            guard case let .scalar(s) = k else { throw YAMLNode(node: k, file: file).error("\(what): keys must be plain names") }
            return (s.string, YAMLNode(node: v, file: file))
        }
    }

    func sequence(_ what: String) throws -> [YAMLNode] {
        guard case let .sequence(s) = node else { throw error("\(what) must be a list") }
        return s.map { YAMLNode(node: $0, file: file) }
    }

    func string(_ what: String) throws -> String {
        guard case let .scalar(s) = node else { throw error("\(what) must be a string") }
        return s.string
    }

    var isNull: Bool {
        if case let .scalar(s) = node { return s.style == .plain && (s.string == "null" || s.string == "~" || s.string.isEmpty) }
        return false
    }

    /// An exact decimal written as a quoted string; a bare YAML number is refused so no value is
    /// ever read through a float.
    func decimalString(_ what: String) throws -> String {
        guard case let .scalar(s) = node else { throw error("\(what) must be a quoted decimal string") }
        if s.style == .plain, Double(s.string) != nil {
            throw error("\(what) is written as a number (\(s.string)); write it as a quoted decimal string, e.g. \"\(s.string)\"")
        }
        guard ExactDecimal.parse(s.string) != nil else { throw error("\(what) is not a decimal: '\(s.string)'") }
        return s.string
    }

    /// A price or a factor: a quoted decimal more than zero. A zero rate turned an invoice's
    /// dollars into unbounded tokens and a negative one crashed the run (and the server with it).
    func positiveDecimal(_ what: String) throws -> Decimal {
        let text = try decimalString(what)
        guard let value = ExactDecimal.parse(text), value > 0 else { throw error("\(what) must be more than 0, got \"\(text)\"") }
        return value
    }

    func bool(_ what: String) throws -> Bool {
        let s = try string(what)
        switch s {
        case "true": return true
        case "false": return false
        default: throw error("\(what) must be true or false, got '\(s)'")
        }
    }

    /// A string or a list of strings.
    func strings(_ what: String) throws -> [String] {
        if case .sequence = node { return try sequence(what).map { try $0.string(what) } }
        return [try string(what)]
    }
}

/// An error in a configuration file (rate card, rules, account map), naming file and line.
public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int
    public var message: String
    public init(file: String, line: Int, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }
    public var description: String { "\(file):\(line): \(message)" }
}
