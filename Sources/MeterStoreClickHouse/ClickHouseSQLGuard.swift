import Metering

/// What the SQL endpoint runs on a ClickHouse store: one SELECT of `usage_events`, as on SQLite
/// (docs/api.md). ClickHouse 18.16 grants a user whole servers, not tables, and `readonly=1` still
/// answers SHOW, DESCRIBE, EXISTS and KILL QUERY: an admin key read other databases on the same
/// server, the key table's hashes and `system.processes` (other sessions' statements), and
/// cancelled other sessions' queries. So the query is read as tokens (strings, quoted names and
/// comments apart) and refused, never edited, unless:
/// - it begins with SELECT or WITH;
/// - every FROM and JOIN (but ARRAY JOIN, which reads no table) is followed by `usage_events` or a
///   subquery, and a FROM lists one table (no `, other`);
/// - no IN reads a table (`x IN other`), and no function reads one (`joinGet`, `dictGet…`,
///   `hasColumnInTable`); table functions (`url`, `file`, `remote`, `numbers`…) can only follow
///   FROM or JOIN, so they are refused there.
/// A FROM directly inside `extract(…)` or `substring(…)` (`extract(DAY FROM t)`) reads no table
/// and passes; any other FROM inside an expression is refused. `;` is refused outside strings
/// (one statement); inside a string literal it is text.
enum ClickHouseSQLGuard {
    enum Token: Equatable {
        case word(String)  // an identifier or keyword, as written
        case quoted(String)  // a "quoted" or `quoted` name
        case string
        case number
        case symbol(Character)
    }

    static func check(_ sql: String) throws {
        let tokens = try tokenize(sql)
        func refuse(_ why: String) -> UsageBoxError {
            UsageBoxError.invalidArgument("\(why); the SQL endpoint answers one SELECT of usage_events", field: "sql")
        }
        func upper(_ i: Int) -> String? {
            guard i >= 0, i < tokens.count, case let .word(w) = tokens[i] else { return nil }
            return w.uppercased()
        }
        func name(_ i: Int) -> String? {
            guard i < tokens.count else { return nil }
            switch tokens[i] {
            case let .word(w), let .quoted(w): return w
            default: return nil
            }
        }
        /// Whether the token at `i` can end an expression (so an IN after it is the operator).
        func endsExpression(_ i: Int) -> Bool {
            guard i >= 0, i < tokens.count else { return false }
            if let u = upper(i), u == "NOT" || u == "GLOBAL" { return endsExpression(i - 1) }  // x NOT IN, x GLOBAL IN
            switch tokens[i] {
            case .quoted, .string, .number, .symbol(")"), .symbol("]"): return true
            case let .word(w):
                return !["SELECT", "WHERE", "AND", "OR", "NOT", "ON", "HAVING", "PREWHERE", "WHEN", "THEN", "ELSE", "BY"].contains(w.uppercased())
            default: return false
            }
        }
        guard let first = upper(0), first == "SELECT" || first == "WITH" else {
            throw refuse("only a SELECT is answered")
        }
        let clauseEnd: Set<String> = [
            "WHERE", "PREWHERE", "GROUP", "ORDER", "LIMIT", "HAVING", "SAMPLE", "FINAL", "UNION", "SETTINGS", "FORMAT", "JOIN", "ARRAY",
            "ANY", "ALL", "LEFT", "RIGHT", "INNER", "FULL", "CROSS", "GLOBAL", "ASOF", "USING", "ON", "WITH", "INTO", "OFFSET",
        ]
        var depth = 0
        var inFrom: Set<Int> = []  // depths inside a FROM clause: a comma there lists a second table
        // For each open parenthesis, whether it opened `extract(` or `substring(`, whose FROM is
        // SQL's spelling of an argument (`extract(DAY FROM t)`), not a table.
        var opensPartCall: [Bool] = []
        for (i, token) in tokens.enumerated() {
            switch token {
            case .symbol("("):
                depth += 1
                opensPartCall.append(upper(i - 1).map { $0 == "EXTRACT" || $0 == "SUBSTRING" } ?? false)
            case .symbol(")"):
                depth -= 1
                _ = opensPartCall.popLast()
                inFrom = inFrom.filter { $0 <= depth }
            case .symbol(";"):
                throw refuse("one statement, without ';'")
            case .symbol(","):
                if inFrom.contains(depth) { throw refuse("a FROM lists one table") }
            case let .word(w):
                let u = w.uppercased()
                // A keyword after AS is an alias (`FROM usage_events AS ALL, api_keys`), not a clause.
                if clauseEnd.contains(u), i == 0 || upper(i - 1) != "AS" { inFrom.remove(depth) }
                if u == "FROM", opensPartCall.last == true { continue }
                if u == "FROM" || (u == "JOIN" && (i == 0 || upper(i - 1) != "ARRAY")) {
                    inFrom.insert(depth)
                    if i + 1 < tokens.count, tokens[i + 1] == .symbol("(") { continue }  // a subquery
                    guard name(i + 1)?.lowercased() == "usage_events", i + 2 >= tokens.count || tokens[i + 2] != .symbol("."),
                        i + 2 >= tokens.count || tokens[i + 2] != .symbol("(")
                    else {
                        throw refuse(
                            "\(u) names '\(name(i + 1).map { String($0.prefix(80)) } ?? "?")' (for a date part, use toDayOfMonth(…), toHour(…) and the like)")
                    }
                } else if u == "IN", i + 1 < tokens.count,
                    tokens[i + 1] != .symbol("(") || (name(i + 2) != nil && i + 3 < tokens.count && tokens[i + 3] == .symbol(")"))
                {
                    // `x IN t` and `x IN (t)` read table t.
                    throw refuse("IN reads a table; list the values or use a subquery of usage_events")
                } else if i + 1 < tokens.count, tokens[i + 1] == .symbol("("),
                    ["JOINGET", "HASCOLUMNINTABLE", "NOTIN", "GLOBALIN", "GLOBALNOTIN"].contains(u) || u.hasPrefix("DICT")
                        || (u == "IN" && !endsExpression(i - 1))  // in(x, t), the function, not `x IN (…)`
                {
                    throw refuse("\(w) reads another table")
                }
            default: break
            }
        }
    }

    /// The query's tokens; an unterminated string, name or comment is refused.
    static func tokenize(_ sql: String) throws -> [Token] {
        let s = Array(sql.unicodeScalars)
        var out: [Token] = []
        var i = 0
        func unterminated(_ what: String) -> UsageBoxError { UsageBoxError.invalidArgument("the query has an unterminated \(what)", field: "sql") }
        func isWordStart(_ c: Unicode.Scalar) -> Bool { c == "_" || (c.isASCII && c.properties.isAlphabetic) || !c.isASCII && c.properties.isAlphabetic }
        func isWord(_ c: Unicode.Scalar) -> Bool { isWordStart(c) || ("0"..."9").contains(c) || c == "$" }
        while i < s.count {
            let c = s[i]
            if c.properties.isWhitespace {
                i += 1
            } else if c == "-", i + 1 < s.count, s[i + 1] == "-" {
                while i < s.count, s[i] != "\n" { i += 1 }
            } else if c == "/", i + 1 < s.count, s[i + 1] == "*" {
                i += 2
                while i + 1 < s.count, !(s[i] == "*" && s[i + 1] == "/") { i += 1 }
                guard i + 1 < s.count else { throw unterminated("comment") }
                i += 2
            } else if c == "'" || c == "\"" || c == "`" {
                var text = String.UnicodeScalarView()
                i += 1
                var closed = false
                while i < s.count {
                    if s[i] == "\\", i + 1 < s.count {
                        text.append(s[i + 1])
                        i += 2
                    } else if s[i] == c {
                        if i + 1 < s.count, s[i + 1] == c {  // a doubled quote is one
                            text.append(c)
                            i += 2
                        } else {
                            i += 1
                            closed = true
                            break
                        }
                    } else {
                        text.append(s[i])
                        i += 1
                    }
                }
                guard closed else { throw unterminated(c == "'" ? "string" : "quoted name") }
                out.append(c == "'" ? .string : .quoted(String(text)))
            } else if ("0"..."9").contains(c) {
                while i < s.count, isWord(s[i]) || s[i] == "." { i += 1 }
                out.append(.number)
            } else if isWordStart(c) {
                var text = String.UnicodeScalarView()
                while i < s.count, isWord(s[i]) {
                    text.append(s[i])
                    i += 1
                }
                out.append(.word(String(text)))
            } else {
                out.append(.symbol(Character(c)))
                i += 1
            }
        }
        return out
    }
}
