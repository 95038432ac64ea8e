import Foundation
import Yams

/// A thin, line-aware reader over Yams nodes, so every config error names its file and line.
struct YAMLNode {
    let node: Node
    let file: String
    /// The line of the key this node is the value of, when `mapping` gave it: a misspelt key is
    /// reported there, not on its value's first line (`rule:` on line 2 was named on line 3: tester T).
    var keyLine: Int?

    static func parse(_ text: String, file: String) throws -> YAMLNode {
        // A byte-order mark, as Windows editors write one, is no YAML: it failed as "did not find
        // expected <document start>".
        let text = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        // A 17 MB file took 25 s and 380 MB to refuse by its node count; no card, map or rules
        // file comes near this.
        guard text.utf8.count <= maxBytes else {
            throw ConfigError(file: file, line: 1, "the file is \(text.utf8.count) bytes; a configuration file is at most \(maxBytes >> 20) MiB")
        }
        // Yams hashes every mapping key while composing (its duplicate check), an alias's whole
        // tree included: one alias of nested aliases used as a key spun a CPU for minutes before
        // the count below could run. Telling such a key from a value before libyaml reads the
        // text failed twice (an apostrophe in plain text hid it; then `{*a}`, a flow key with no
        // colon: a reader's 514 bytes froze a server for 20 s, tester S2). No config needs
        // anchors: a file defining one is refused unread.
        if let line = Self.anchorLine(text) {
            throw ConfigError(
                file: file, line: line, "YAML anchors (&name) and aliases (*name) are not read in this file: write the values out")
        }
        do {
            guard let node = try Yams.compose(yaml: text) else { throw ConfigError(file: file, line: 1, "the file is empty") }
            guard Self.expandedSize(node, upTo: maxNodes) <= maxNodes else {
                throw ConfigError(
                    file: file, line: 1,
                    "the file has more than \(maxNodes) YAML nodes, aliases expanded (an alias repeats all it points to): shorten it")
            }
            return YAMLNode(node: node, file: file)
        } catch let e as YamlError {
            var line = Self.line(of: e)
            if case let .duplicatedKeysInMapping(duplicates, _) = e, let key = duplicates.first {
                line = Self.secondBlockKey(key, in: text, from: line) ?? line
            }
            throw ConfigError(file: file, line: line, "YAML syntax: \(Self.problem(of: e))")
        }
    }

    /// The line of a block mapping's key given a second time, at the column the first stands at,
    /// from `line` (the mapping's own, which Yams names) on; nil when it cannot be told (flow style).
    static func secondBlockKey(_ key: String, in text: String, from line: Int) -> Int? {
        // libyaml's line breaks: a CRLF (one Character in Swift), CR, LF, NEL, LS, PS. Split on
        // "\n" alone, a CRLF file was one line and the range below trapped.
        let breaks: Set<Character> = ["\n", "\r\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"]
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: breaks.contains)
        guard line - 1 < lines.count else { return nil }
        var column: Int?
        for n in max(line - 1, 0)..<lines.count {
            let l = lines[n]
            let body = l.drop { $0 == " " || $0 == "-" }
            let col = l.count - body.count
            guard ["\(key):", "\"\(key)\":", "'\(key)':"].contains(where: { body.hasPrefix($0) }) else { continue }
            if let column {
                if col == column { return n + 1 }
            } else {
                column = col
            }
        }
        return nil
    }

    /// Every config is read node by node, an alias as often as it is used: 48 KB of aliases of
    /// aliases made 6,000,000 rule examples and took a server past a gigabyte. The shipped cards
    /// and rules are a few thousand nodes.
    static let maxNodes = 100_000
    static let maxBytes = 4 << 20

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

    /// The line of the first anchor (`&name` where a node may start), nil when there is none.
    /// It reads every character, quoted text and comments included (`"see &x"` counts), and
    /// libyaml's every line break (CR, NEL, LS and PS too): it may refuse what libyaml would read
    /// as text, never the other way. Without an anchor no alias resolves (libyaml refuses it).
    static func anchorLine(_ text: String) -> Int? {
        let s = Array(text.unicodeScalars)
        func isBlank(_ c: Unicode.Scalar) -> Bool { [" ", "\t", "\u{FEFF}", "\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"].contains(c) }
        func startsNode(_ i: Int) -> Bool {
            i == 0 || isBlank(s[i - 1]) || ["[", "]", "{", "}", ",", ":", "?", "-", "!"].contains(s[i - 1])
        }
        var line = 1
        for (i, c) in s.enumerated() {
            if c == "\n" { line += 1 }
            // libyaml's anchor names: any character but blanks and flow indicators.
            if c == "&", startsNode(i), i + 1 < s.count, !isBlank(s[i + 1]), !["[", "]", "{", "}", ","].contains(s[i + 1]) { return line }
        }
        return nil
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
        // Its description quotes the whole text: a binary file given as rules printed 3 KB of
        // raw bytes to the terminal.
        case let .reader(problem, offset, _, _): return problem + (offset.map { " (at byte \($0))" } ?? "")
        default: return "\(e)"
        }
    }

    var line: Int { node.mark?.line ?? 0 }

    func error(_ message: String) -> ConfigError { ConfigError(file: file, line: line, message) }

    /// An error about the key of this value (an unknown field), on the key's line.
    func keyError(_ message: String) -> ConfigError { ConfigError(file: file, line: keyLine ?? line, message) }

    /// Mapping members in order; an error for anything else.
    func mapping(_ what: String) throws -> [(String, YAMLNode)] {
        guard case let .mapping(m) = node else { throw error("\(what) must be a mapping") }
        return try m.map { k, v in
            guard case let .scalar(s) = k else { throw YAMLNode(node: k, file: file).error("\(what): keys must be plain names") }
            return (s.string, YAMLNode(node: v, file: file, keyLine: k.mark?.line))
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
        if case let .scalar(s) = node { return s.style == .plain && (["null", "Null", "NULL", "~"].contains(s.string) || s.string.isEmpty) }
        return false
    }

    /// An exact decimal written as a quoted string; a bare YAML number is refused so no value is
    /// ever read through a float.
    func decimalString(_ what: String) throws -> String {
        guard case let .scalar(s) = node else { throw error("\(what) must be a quoted decimal string") }
        if s.style == .plain, Double(s.string) != nil {
            throw error("\(what) is written as a number (\(s.string)); write it as a quoted decimal string, e.g. \"\(s.string)\"")
        }
        guard ExactDecimal.parse(s.string) != nil else {
            let digits = s.string.filter(\.isNumber).count
            let shaped = digits > 0 && s.string.allSatisfy { $0.isNumber || $0 == "." || $0 == "-" }
            throw error(shaped && digits > 38 ? "\(what) has \(digits) digits; a decimal here holds 38 at most" : "\(what) is not a decimal: '\(s.string)'")
        }
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
