import ExactJSON
import FormatReaders
import Foundation
import Metering
import Testing

@Suite struct TimestampTests {
    @Test(arguments: [
        ("2026-05-01T00:00:00Z", "2026-05-01T00:00:00Z"),
        ("2026-05-01T02:30:00+02:30", "2026-05-01T00:00:00Z"),
        ("2026-04-30T23:00:00-01:00", "2026-05-01T00:00:00Z"),
        ("2026-05-01t00:00:00.5z", "2026-05-01T00:00:00.500000Z"),
        ("2024-02-29T23:59:59.123456Z", "2024-02-29T23:59:59.123456Z"),
        ("2026-05-01T00:00:00.123456000Z", "2026-05-01T00:00:00.123456Z"),
    ])
    func parsesAndNormalizesToUTC(_ input: String, _ expected: String) {
        #expect(Timestamp(rfc3339: input)?.rfc3339 == expected)
    }

    @Test(arguments: [
        "2026-05-01", "2026-05-01T00:00:00", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2026-05-01T24:00:00Z",
        "2026-05-01T00:00:00.1234567Z", "2026-05-01T00:00:00+2", "x2026-05-01T00:00:00Z", "2026-05-01T00:00:00Z ",
        // Out of years 0000–9999 in UTC through the offset: echoed back as year 0000 and "00-1-12-31".
        "9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+00:01",
    ])
    func rejectsInvalid(_ input: String) {
        #expect(Timestamp(rfc3339: input) == nil)
    }

    @Test func bucketsAndMonths() {
        let t = Timestamp(rfc3339: "2026-12-31T23:30:00Z")!
        #expect(t.dayString == "2026-12-31" && t.monthString == "2026-12" && t.hourString == "2026-12-31T23:00:00Z")
        #expect(t.startOfNextMonth.rfc3339 == "2027-01-01T00:00:00Z")
    }
}

@Suite struct ExactJSONTests {
    /// Duplicate keys are refused however they are written (escapes included), in small objects
    /// (scanned with fingerprints) and big ones (a set); different keys that share their first and
    /// last bytes are not taken for duplicates.
    @Test func duplicateKeysAreRefusedHoweverWritten() throws {
        for text in [
            #"{"a": 1, "a": 2}"#, #"{"a": 1, "\u0061": 2}"#, #"{"\u0061": 1, "a": 2}"#, #"{"x\ny": 1, "x\u000ay": 2}"#,
            #"{"model_long_prefix_1_suffix": 1, "b": 2, "model_long_prefix_1_suffix": 3}"#,
            "{" + (0..<20).map { #""k\#($0)": \#($0)"# }.joined(separator: ", ") + #", "k3": 0}"#,
            "{\"K\": 1, \"\u{212A}\": 2}", "{\"caf\u{E9}\": 1, \"cafe\u{301}\": 2}",  // canonically equal, written differently
        ] {
            #expect(throws: JSONParseError.self, "\(text)") { try JSONParser.parse(text) }
            #expect(throws: JSONParseError.self, "\(text)") { try JSONStream.forEachElement(bytes: Array("[\(text)]".utf8), of: nil, chunkSize: 7) { _ in } }
        }
        let distinct = #"{"model_long_prefix_1_suffix": 1, "model_long_prefix_2_suffix": 2, "ab": 3, "ba": 4, "a\u0063": 5}"#
        #expect(try JSONParser.parse(distinct).objectValue?.count == 5)
    }

    @Test func numbersKeepTheirDigits() throws {
        let v = try JSONParser.parse(#"{"a": 0.1, "b": 0.2, "c": 12345678901234567890.123, "d": -0, "e": 1E+2}"#)
        #expect(v["a"] == .number("0.1") && v["b"] == .number("0.2"))
        #expect(v["c"] == .number("12345678901234567890.123"))
        #expect(Decimal(string: "0.1")! + Decimal(string: "0.2")! == Decimal(string: "0.3")!)
        #expect(v["e"] == .number("1E+2"))
    }

    @Test func int64IsExact() {
        #expect(Int64(exactly: "9223372036854775807") == .max)
        #expect(Int64(exactly: "-9223372036854775808") == .min)
        #expect(Int64(exactly: "9223372036854775808") == nil)
        #expect(Int64(exactly: "1.0") == nil && Int64(exactly: "1e3") == nil && Int64(exactly: "+1") == nil && Int64(exactly: "") == nil)
    }

    @Test(arguments: ["{", "[1,]", #"{"a":1,"a":2}"#, "01", "1.", #""\u12""#, "tru", #"{"a" 1}"#, "[1] x", "\"a\tb\""])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test func stringsRoundTrip() throws {
        let s = "é \"q\" \\ \n \u{1F600} \u{0001}"
        let written = JSONWriter.write(.string(s))
        #expect(try JSONParser.parse(written) == .string(s))
        #expect(try JSONParser.parse(#""\ud83d\ude00""#) == .string("\u{1F600}"))
    }

    @Test func errorsNameLineAndColumn() {
        do {
            _ = try JSONParser.parse("{\n  \"a\": [1,\n  oops]}")
            Issue.record("no error")
        } catch let e as JSONParseError {
            #expect(e.line == 3 && e.column == 3)
        } catch {
            Issue.record("\(error)")
        }
    }
}

@Suite struct EventDecoderTests {
    let decoder = EventDecoder(now: { Timestamp(rfc3339: "2026-06-01T00:00:00Z")! })

    /// A refused value is quoted in part: a 5 MB quantity was echoed whole into its answer. Ids
    /// made of dots alone are refused (`/v1/accounts/../usage` is `/v1/usage` to a client).
    @Test func rejectionsQuoteALongValueInPartAndDotsAloneAreNoId() throws {
        let huge = String(repeating: "9", count: 5_000_000)
        let item = decoder.decode(
            try JSONParser.parse(#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":"x\#(huge)","timestamp":"2026-05-01T00:00:00Z"}"#))
        guard case let .invalid(r) = item else {
            Issue.record("accepted")
            return
        }
        #expect(r.code == "invalid_quantity" && r.message.utf8.count < 300 && r.message.contains("5000001 bytes"), "\(r.message.prefix(300))")
        #expect(!EventDecoder.isValidIdentifier("..") && !EventDecoder.isValidIdentifier(".") && EventDecoder.isValidIdentifier("a..b"))
    }

    @Test func canonicalEncodingIsStable() throws {
        guard
            case let .event(e) = decoder.decode(
                try JSONParser.parse(
                    #"{"event_id":"e","account_id":"a","meter_id":"m","quantity":"5","timestamp":"2026-05-01T02:00:00+02:00","dimensions":{"z":"1","a":"2"},"kind":"Usage"}"#
                ))
        else {
            Issue.record("not decoded"); return
        }
        #expect(
            e.canonicalEncoding
                == #"{"account_id":"a","dimensions":{"a":"2","z":"1"},"event_id":"e","kind":"Usage","meter_id":"m","quantity":5,"timestamp":"2026-05-01T00:00:00Z"}"#
                + "\n")
    }

    /// The canonical bytes are hashed into segment chains: the fast writer must produce exactly what
    /// writing each field through `JSONWriter` would, for strings that need escaping, long and
    /// non-ASCII ones, and timestamps with and without microseconds.
    /// The size an answer bound counts is what the writer writes, escapes and quotes included.
    @Test func encodedLengthIsWhatTheWriterWrites() {
        for text in ["", "plain", "quote\"inside\\", "tab\tnew\nline\rcr", "\u{1}\u{1f}\u{0}", "é composé — ünïcode", String(repeating: "\"", count: 1000)] {
            var out = ""
            JSONWriter.appendString(text, to: &out)
            #expect(JSONWriter.encodedLength(text) == out.utf8.count, "\(text.debugDescription)")
        }
        // The byte writer writes what the string writer does, at the size it counted.
        let value = JSONValue.object([
            ("a", .array([.null, .bool(true), .bool(false), .number("-12.50"), .string("q\"\u{1}é")])), ("", .object([])), ("e", .array([])),
        ])
        let bytes = JSONWriter.bytes(value, suffix: [0x0A])
        #expect(bytes == Array((JSONWriter.write(value) + "\n").utf8) && JSONWriter.encodedLength(value) + 1 == bytes.count)
    }

    /// Integers are written digit by digit into the canonical bytes and ClickHouse's rows: they
    /// must read as `String(n)` does, at both ends of 64 bits and between.
    @Test func integersAreWrittenAsStringSpellsThem() {
        var values: [Int64] = [0, 1, -1, 9, 10, -10, 99, 100, Int64.max, Int64.min, Int64.max - 1, Int64.min + 1]
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<1000 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            values.append(Int64(bitPattern: seed) >> (seed % 64))
        }
        for n in values {
            var out: [UInt8] = [0x41]
            JSONWriter.appendInteger(n, to: &out)
            #expect(out == [0x41] + Array(String(n).utf8), "\(n)")
            var unsigned: [UInt8] = []
            JSONWriter.appendInteger(unsigned: n.magnitude, to: &unsigned)
            #expect(unsigned == Array(String(n.magnitude).utf8), "\(n)")
        }
        var top: [UInt8] = []
        JSONWriter.appendInteger(unsigned: UInt64.max, to: &top)
        #expect(top == Array(String(UInt64.max).utf8))
    }

    /// A grouped answer was bounded by its groups (100,000) alone: groups of long dimension
    /// values built a 96 MB answer. Its bytes are bounded too, as the groups are added.
    @Test func aGroupedAnswerIsBoundedByItsBytes() throws {
        let query = UsageQuery(
            scope: .all, range: try TimeRange(from: "2026-05-01T00:00:00Z", to: "2026-06-01T00:00:00Z"),
            groupBy: [.dimension("a"), .dimension("b"), .dimension("c"), .dimension("d")])
        var accumulator = UsageAccumulator(query)
        let long = String(repeating: "x", count: 250)
        do {
            for i in 0..<UsageAccumulator.maxGroups {
                let dims = ["a": "\(i)" + long, "b": long, "c": long, "d": long]
                try accumulator.add(
                    UsageRow(
                        account: "a", meter: "m", model: nil, kind: "Usage", unit: nil, dimensions: dims, hour: nil,
                        aggregate: UsageAggregate(sum: 1, count: 1, min: 1, max: 1)))
            }
            Issue.record("100,000 groups of 1 KB keys were accepted")
        } catch let e as UsageBoxError {
            #expect(e.field == "group_by" && e.message.contains("16 MiB"), "\(e.message)")
        }
        // The estimate is near the answer's size: 55,000 groups of a 208-character value write
        // about 13 MB, and were refused as larger than 16 MiB (an outside tester's 12 MB read).
        let one = UsageQuery(
            scope: .all, range: try TimeRange(from: "2026-05-01T00:00:00Z", to: "2026-06-01T00:00:00Z"), groupBy: [.dimension("req")])
        var fits = UsageAccumulator(one)
        for i in 0..<55_000 {
            let value = "r\(100_000 + i)-" + String(repeating: "x", count: 200)
            try fits.add(
                UsageRow(
                    account: "a", meter: "m", model: nil, kind: "Usage", unit: nil, dimensions: ["req": value], hour: nil,
                    aggregate: UsageAggregate(sum: 1, count: 1, min: 1, max: 1)))
        }
        let written = JSONWriter.bytes(try fits.result(source: "raw").jsonValue).count
        #expect(written < UsageAccumulator.maxAnswerBytes, "\(written)")
    }

    /// A read's rows are added under the request's deadline: past it, the accumulator stops the
    /// read (every 1,024th row) and gives no answer, whichever store feeds it.
    @Test func rowsStopComingPastTheRequestsDeadline() throws {
        let query = UsageQuery(scope: .all, range: try TimeRange(from: "2026-05-01T00:00:00Z", to: "2026-06-01T00:00:00Z"), groupBy: [.modelID])
        let row = UsageRow(
            account: "a", meter: "m", model: "x", kind: "Usage", unit: nil, dimensions: [:], hour: nil,
            aggregate: UsageAggregate(sum: 1, count: 1, min: 1, max: 1))
        let past = WorkDeadline(seconds: 1, hint: " (hint)", now: Date().addingTimeInterval(-2))
        var accumulator = UsageAccumulator(query)
        #expect(throws: UsageBoxError.self) {
            try WorkDeadline.$current.withValue(past) { for _ in 0..<2048 { try accumulator.add(row) } }
        }
        do {
            _ = try WorkDeadline.$current.withValue(past) { try accumulator.result(source: "raw") }
            Issue.record("an answer past the deadline")
        } catch let e as UsageBoxError {
            #expect(e.code == .timeout && e.message.hasPrefix("stopped after 1 s") && e.message.hasSuffix(" (hint)"), "\(e.message)")
        }
        // A cancelled deadline (its client left) stops with CancellationError, not a timeout.
        let left = WorkDeadline(seconds: 60)
        left.cancel()
        #expect(throws: CancellationError.self) { try WorkDeadline.$current.withValue(left) { _ = try accumulator.result(source: "raw") } }
        // Without a deadline nothing is bounded.
        var free = UsageAccumulator(query)
        for _ in 0..<2048 { try free.add(row) }
        #expect(try free.result(source: "raw").groups.map(\.aggregate.sum) == [2048])
    }

    /// Rows come per kind: a group's Usage rows were summed before its Corrections, so a net that
    /// fits 64 bits was refused as an overflow on the way. Only the net is checked; a net beyond
    /// 64 bits is still an error.
    @Test func aGroupsSumIsCheckedWhenNettedNotOnTheWay() throws {
        let query = UsageQuery(scope: .all, range: try TimeRange(from: "2026-05-01T00:00:00Z", to: "2026-06-01T00:00:00Z"), groupBy: [.modelID])
        func row(_ kind: String, _ q: Int64, _ dim: String) -> UsageRow {
            UsageRow(
                account: "a", meter: "m", model: "x", kind: kind, unit: nil, dimensions: ["d": dim], hour: nil,
                aggregate: UsageAggregate(sum: q, count: 1, min: q, max: q))
        }
        var nets = UsageAccumulator(query)
        for r in [row("Usage", .max - 10, "1"), row("Usage", 20, "2"), row("Correction", -30, "1")] { try nets.add(r) }
        let groups = try nets.result(source: "raw").groups
        #expect(groups.map(\.aggregate.sum) == [.max - 20] && groups.map(\.aggregate.count) == [3])
        var beyond = UsageAccumulator(query)
        for r in [row("Usage", .max - 10, "1"), row("Usage", 20, "2")] { try beyond.add(r) }
        #expect(throws: UsageBoxError.self) { try beyond.result(source: "raw") }
    }

    @Test func canonicalEncodingEscapesLikeJSONWriter() throws {
        func json(_ s: String) -> String {
            var out = ""
            JSONWriter.appendString(s, to: &out)
            return out
        }
        let odd = ["plain", "quote\"inside", "back\\slash", "tab\tand\u{1}control", "é composé — long enough to leave the inline form", ""]
        for (i, text) in odd.enumerated() {
            for micros: Int64 in [0, 1, 999_999, 123_456] {
                let ts = Timestamp(microseconds: Timestamp(rfc3339: "2026-05-01T23:59:59Z")!.microseconds + micros)
                let e = UsageEvent(
                    eventID: "id-\(text)", accountID: text.isEmpty ? "a" : text, meterID: "m\(i)", modelID: text, kind: .correction,
                    correctionRef: text + "ref", quantity: -Int64(i) * 1_000_000_007, unit: text, timestamp: ts, dimensions: [text: text + "v", "k": text])
                var expected = "{\"account_id\":" + json(e.accountID) + ",\"correction_ref\":" + json(text + "ref") + ",\"dimensions\":{"
                expected += e.dimensions.map { json($0.key) + ":" + json($0.value) }.joined(separator: ",") + "}"
                expected += ",\"event_id\":" + json(e.eventID) + ",\"kind\":\"Correction\",\"meter_id\":" + json(e.meterID)
                expected += ",\"model_id\":" + json(text) + ",\"quantity\":\(e.quantity),\"timestamp\":\"" + ts.rfc3339 + "\""
                expected += ",\"unit\":" + json(text) + "}\n"
                #expect(e.canonicalEncoding == expected)
                var bytes: [UInt8] = []
                ts.appendRFC3339(to: &bytes)
                #expect(String(decoding: bytes, as: UTF8.self) == ts.rfc3339)
            }
        }
        // One line written out by hand (the checks above share JSONWriter's escape test and the
        // timestamp formatter with the code under test).
        let golden = UsageEvent(
            eventID: "e\\1", accountID: "a\"b", meterID: "m", quantity: 7,
            timestamp: Timestamp(microseconds: Timestamp(rfc3339: "2026-05-01T00:00:00Z")!.microseconds + 500_000),
            dimensions: ["k": "\u{E9}\u{1}\n"])
        #expect(
            golden.canonicalEncoding
                == #"{"account_id":"a\"b","dimensions":{"k":""# + "\u{E9}"
                + #"\u0001\n"},"event_id":"e\\1","kind":"Usage","meter_id":"m","quantity":7,"timestamp":"2026-05-01T00:00:00.500000Z"}"#
                + "\n")
        let base = Timestamp(rfc3339: "2026-05-01T23:59:59Z")!.microseconds
        #expect(Timestamp(microseconds: base + 123_456).rfc3339 == "2026-05-01T23:59:59.123456Z")
        #expect(Timestamp(microseconds: base + 1).rfc3339 == "2026-05-01T23:59:59.000001Z")
        #expect(Timestamp(microseconds: base + 1_000_000).rfc3339 == "2026-05-02T00:00:00Z")
    }

    /// Foundation's NFC on Linux cuts a long run of combining marks to 64: 40 × U+0344 (80 marks
    /// composed) was stored cut, and an event differing past the cut answered `duplicate` (tester R).
    /// A value is stored whole, canonically equal to what was sent, or refused; a unit alike.
    @Test(arguments: [40, 45, 200])
    func aValueIsStoredWholeOrRefusedNeverCut(marks: Int) throws {
        let value = "p" + String(repeating: "\u{344}", count: marks)
        let json = #"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-01T00:00:00Z","dimensions":{"sku":"\#(value)"}}"#
        switch decoder.decode(try JSONParser.parse(json)) {
        case let .event(e):
            #expect(e.dimensions.first?.value == value && e.dimensions[0].value.unicodeScalars.count <= EventDecoder.maxDimensionValueLength)
        case let .invalid(r):
            #expect(r.code == "invalid_dimensions", "\(r)")
        }
        let unit = #"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-01T00:00:00Z","unit":"\#(value)"}"#
        switch decoder.decode(try JSONParser.parse(unit)) {
        case let .event(e): #expect(e.unit == value)
        case let .invalid(r): #expect(r.code == "invalid_unit", "\(r)")
        }
    }

    /// A character newer than Foundation's Unicode tables is refused: it was stored as sent, two
    /// spellings Swift compares equal under two keys (tester R2). Errors are bounded: a 16.7 MB
    /// unknown member was echoed three times into one answer.
    @Test func textFoundationCannotNormalizeIsRefusedAndErrorsAreBounded() throws {
        #expect(Unicode.Scalar(0x1CC00)!.properties.age?.major == 16)
        let json = #"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-01T00:00:00Z","dimensions":{"sku":"x\#u{1CC00}"}}"#
        guard case let .invalid(r) = decoder.decode(try JSONParser.parse(json)) else {
            Issue.record("a Unicode 16 character was stored")
            return
        }
        #expect(r.code == "invalid_dimensions" && r.message.contains("newer than Unicode 15.1"), "\(r)")
        #expect(EventDecoder.faithfulNFC("caf\u{E9}") == "caf\u{E9}" && EventDecoder.faithfulNFC("cafe\u{301}") == "caf\u{E9}")
        let huge = String(repeating: "k", count: 1_000_000)
        let e = UsageBoxError.invalidArgument("unknown member '\(huge)' and '\(huge)'", field: huge)
        #expect(e.message.utf8.count < 1_200 && (e.field?.utf8.count ?? 0) < 120, "\(e.message.utf8.count) \(e.field?.utf8.count ?? 0)")
    }

    /// A leap second is RFC 3339; the refusal says that is why (it said the text was not RFC 3339).
    /// A rejection's parts are bounded: an unknown field name of 1,500 characters was echoed twice
    /// (a 16 MB batch answered 31 MB), an invalid 1 MB id whole (tester R).
    @Test func refusalsSayWhatAndStaySmall() throws {
        let leap = decoder.decode(try JSONParser.parse(#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2016-12-31T23:59:60Z"}"#))
        guard case let .invalid(r) = leap else {
            Issue.record("a leap second was accepted")
            return
        }
        #expect(r.code == "invalid_timestamp" && r.message.contains("leap second"), "\(r.message)")
        let name = String(repeating: "f", count: 1_500), id = String(repeating: "i", count: 1_000_000)
        let unknown = decoder.decode(try JSONParser.parse(#"{"event_id":"\#(id)","\#(name)":1}"#))
        guard case let .invalid(u) = unknown else {
            Issue.record("accepted")
            return
        }
        #expect(
            u.code == "unknown_field" && u.message.utf8.count < 200 && (u.field?.utf8.count ?? 0) < 120, "\(u.message.utf8.count) \(u.field?.utf8.count ?? 0)")
        #expect((u.eventID?.utf8.count ?? 0) < 120, "\(u.eventID?.utf8.count ?? 0)")
    }

    @Test func futureIsMeasuredFromNow() throws {
        let ok = decoder.decode(try JSONParser.parse(#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-06-01T00:04:59Z"}"#))
        let late = decoder.decode(try JSONParser.parse(#"{"event_id":"e","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-06-01T00:05:01Z"}"#))
        if case .invalid = ok { Issue.record("4m59s ahead is allowed") }
        if case let .invalid(r) = late { #expect(r.code == "timestamp_in_future") } else { Issue.record("5m01s ahead is rejected") }
    }

    @Test func csvRowsMapColumnsToFieldsAndDimensions() {
        let item = decoder.decode(row: [
            ("event_id", "e"), ("account_id", "a"), ("meter_id", "m"), ("quantity", "3"),
            ("timestamp", "2026-05-01T00:00:00Z"), ("token_type", "input"), ("feature", ""),
        ])
        guard case let .event(e) = item else { Issue.record("not decoded"); return }
        #expect(e.dimensions == [.init("token_type", "input")], "an empty cell is absent")
        #expect(e.modelID == nil)
        // A row rejected for its dimensions still names its event id (it read null).
        let twice = decoder.decode(row: [
            ("event_id", "c3"), ("account_id", "a"), ("meter_id", "m"), ("quantity", "3"), ("timestamp", "2026-05-01T00:00:00Z"),
            ("team", "red"), ("dimensions", #"{"team":"blue"}"#),
        ])
        guard case let .invalid(r) = twice else { Issue.record("a dimension given twice was accepted"); return }
        #expect(r.eventID == "c3" && r.field == "dimensions.team", "\(r)")
    }
}

@Suite struct UsageQueryParsingTests {
    @Test func parametersBecomeGroupsAndFilters() throws {
        let q = try UsageQuery.fromParameters(
            [
                ("from", "2026-05-01T00:00:00Z"), ("to", "2026-06-01T00:00:00Z"), ("group_by", "model_id,token_type,dim.source"),
                ("model_id", "a"), ("model_id", "b"), ("dim.kind", "x"), ("source", "raw"),
            ], scope: .all)
        #expect(q.groupBy == [.modelID, .dimension("token_type"), .dimension("source")])
        #expect(q.filters == [UsageFilter(field: .modelID, op: .in, values: ["a", "b"]), UsageFilter(field: .dimension("kind"), op: .eq, values: ["x"])])
        #expect(q.source == .raw)
    }

    static let badParameters: [([(String, String)], String)] = [
        ([("to", "2026-06-01T00:00:00Z")], "from"),
        ([("from", "2026-05-01T00:00:00Z"), ("to", "2026-05-01T00:00:00Z")], "from"),
        ([("from", "2026-05-01T00:00:00Z"), ("to", "June")], "to"),
        ([("from", "2026-05-01T00:00:00Z"), ("to", "2026-06-01T00:00:00Z"), ("source", "cache")], "source"),
        ([("from", "2026-05-01T00:00:00Z"), ("to", "2026-06-01T00:00:00Z"), ("group_by", "model_id,,day")], "group_by"),
        ([("from", "2026-05-01T00:00:00Z"), ("to", "2026-06-01T00:00:00Z"), ("group_by", "event_id")], "group_by"),
        ([("from", "2026-05-01T00:00:00Z"), ("to", "2026-06-01T00:00:00Z"), ("group_by", "dim.")], "group_by"),
        ([("from", "2026-05-01T00:00:00Z"), ("to", "2026-06-01T00:00:00Z"), ("event_id", "e1")], "event_id"),
        // An empty id (an unset shell variable) or one no event can carry matched nothing, silently.
        ([("from", "2026-05-01T00:00:00Z"), ("to", "2026-06-01T00:00:00Z"), ("model_id", "")], "model_id"),
        ([("from", "2026-05-01T00:00:00Z"), ("to", "2026-06-01T00:00:00Z"), ("model_id", "a"), ("model_id", "claude sonnet")], "model_id"),
        ([("from", "2026-05-01T00:00:00Z"), ("to", "2026-06-01T00:00:00Z"), ("meter_id", "")], "meter_id"),
    ]

    @Test(arguments: badParameters)
    func badParametersNameTheField(_ params: [(String, String)], _ field: String) {
        do {
            _ = try UsageQuery.fromParameters(params, scope: .all)
            Issue.record("accepted \(params)")
        } catch let e as UsageBoxError {
            #expect(e.field == field && e.code == .invalidArgument)
        } catch {
            Issue.record("\(error)")
        }
    }
}

@Suite struct CSVReaderTests {
    @Test func quotesNewlinesCRLFAndBOM() throws {
        let records = try CSVReader.parse("\u{FEFF}a,b\r\n\"x, y\",\"multi\nline\"\r\n\r\n\"q\"\"q\",last")
        #expect(records.map(\.fields) == [["a", "b"], ["x, y", "multi\nline"], ["q\"q", "last"]])
        #expect(records.map(\.line) == [1, 2, 5])
    }

    @Test func unterminatedQuoteNamesItsLine() {
        #expect(throws: CSVError.self) { try CSVReader.parse("a,b\n1,\"open\n2,3\n") }
    }

    @Test func libxml2IsLinked() {
        #expect(XMLStreamReader.libraryVersion.hasPrefix("2."))
    }
}

/// Every answer shape reads back what it wrote: the server encodes and the HTTP client decodes the
/// same `Codable` types, with 64-bit integers exact.
@Suite struct WireShapeTests {
    static let t = Timestamp(rfc3339: "2026-05-31T23:59:59Z")!

    func roundTrip<T: WireShape & Equatable>(_ value: T, userInfo: [CodingUserInfoKey: any Sendable] = [:]) throws {
        let text = JSONWriter.write(value.jsonValue)
        #expect(try T.decode(try JSONParser.parse(text), userInfo: userInfo) == value, "\(T.self): \(text)")
    }

    @Test func answersReadBackWhatTheyWrote() throws {
        var ingest = IngestResponse()
        ingest.accepted = 2
        ingest.rejected = 1
        ingest.errors = [.init(index: 1, eventID: nil, status: .rejected, code: "invalid_quantity", message: "m", field: "quantity")]
        try roundTrip(ingest)
        var verify = VerifyReport(
            ok: false, mode: .incremental, rollupSum: .max, rawSum: .min, drift: 9, segmentsChecked: 3, segmentsCorrupt: 1,
            mismatches: [
                .init(
                    meterID: "m", modelID: nil, kind: .correction, dimensions: #"{"a":"1","b":"2"}"#, hour: Self.t,
                    rollupSum: 1, rawSum: 2, rollupCount: 3, rawCount: 4, rollup: .day)
            ],
            days: [.init(day: "2026-05-01", rollupSum: 1, rawSum: 1, drift: 0)])
        verify.corruptSegments = [.init(segmentID: "s1", reason: "SHA-256")]
        try roundTrip(verify)
        var totals = ExplainReport.Breakdown()
        totals.usage = 10
        totals.corrections = -3
        totals.count = 2
        var model = totals
        model.modelID = "gpt-4o"
        var explain = ExplainReport(
            accountID: "acct_42", range: try TimeRange(from: Timestamp(microseconds: 0), to: Self.t), totals: totals,
            breakdown: [model],
            segments: [
                .init(
                    segmentID: "1", firstTimestamp: Self.t, lastTimestamp: nil, events: 1,
                    sum: 5, sha256: nil, sealedAt: nil)
            ],
            chainHead: "abc",
            corrections: [
                .init(
                    event: UsageEvent(
                        eventID: "c", accountID: "acct_42", meterID: "m",
                        kind: .correction, correctionRef: "r", quantity: -3,
                        timestamp: Self.t, dimensions: ["token_type": "input"]),
                    postClose: true)
            ])
        explain.integrity = ScrubProgress()
        try roundTrip(explain)
        try roundTrip(PeriodRecord(accountID: "a", period: "2026-05", closedAt: Self.t))
        try roundTrip(MeterInfo(meterID: "m", unit: nil, rollupDimensions: ["token_type"]))
        try roundTrip(SQLResult(columns: ["a", "b"], rows: [[.int(Int64.max), .null], [.string("x"), .number("1.5")]], truncated: true))
        let query = UsageQuery(
            scope: .all, range: try TimeRange(from: Timestamp(microseconds: 0), to: Self.t), groupBy: [.modelID, .dimension("token_type")],
            metrics: [.sum, .count, .min, .avg])
        try roundTrip(
            UsageResult(
                source: "rollup", groupBy: query.groupBy, metrics: query.metrics,
                groups: [UsageGroup(keys: [nil, "input"], aggregate: UsageAggregate(sum: 7, count: 2, min: 3, max: .min))]),
            userInfo: [UsageResult.queryKey: query])
    }

    @Test func aRequestBodyWithAnUnknownMemberIsRefusedNamingIt() throws {
        #expect(throws: JSONValueDecoder.Failure.self) { try SQLQueryBody.decode(try JSONParser.parse(#"{"sql": "SELECT 1", "limit": 5}"#)) }
        do {
            _ = try UsageQuery.fromJSON(
                try JSONParser.parse(#"{"from": "2026-05-01T00:00:00Z", "to": "2026-06-01T00:00:00Z", "filters": [{"field": "a", "value": 1}]}"#), scope: .all)
            Issue.record("a filter value of 1 was accepted")
        } catch let e as UsageBoxError {
            #expect(e.field == "filters[0].value", "\(e)")
        }
    }

    /// A JSON query's `group_by` is read as the URL's is: spaces around a name ignored (" day"
    /// grouped by a dimension named " day", all in one empty group), each name once, and an error
    /// names the member it was given in, not the value.
    @Test func aJSONGroupByReadsAsTheURLsAndErrorsNameTheMember() throws {
        func query(_ member: String) throws -> UsageQuery {
            try UsageQuery.fromJSON(try JSONParser.parse(#"{"from": "2026-05-01T00:00:00Z", "to": "2026-06-01T00:00:00Z", \#(member)}"#), scope: .all)
        }
        #expect(try query(#""group_by": "model_id, day""#).groupBy == [.modelID, .day])
        #expect(try query(#""group_by": [" model_id", "dim.region "]"#).groupBy == [.modelID, .dimension("region")])
        for (member, field) in [
            (#""group_by": "day,day""#, "group_by"), (#""group_by": ["event_id"]"#, "group_by"), (#""group_by": "model_id,""#, "group_by"),
            (#""filters": [{"field": "event_id", "value": "e1"}]"#, "filters[0].field"),
            // A bad value names its filter (it said `filters`, or `kind`, whichever of several it was).
            (#""filters": [{"field": "token_type", "value": "input"}, {"field": "model_id", "op": "in", "value": ["ok", "bad id"]}]"#, "filters[1].value"),
            (#""filters": [{"field": "kind", "value": "usage"}]"#, "filters[0].value"),
        ] {
            do {
                _ = try query(member)
                Issue.record("accepted \(member)")
            } catch let e as UsageBoxError {
                #expect(e.field == field && e.code == .invalidArgument, "\(member): \(e)")
            }
        }
    }

    /// The byte writer of JSON strings (canonical encodings, ClickHouse rows) escapes exactly as the
    /// String one: every control character, quotes, backslashes, and non-ASCII text unchanged.
    @Test func jsonStringBytesEscapeLikeTheStringWriter() {
        var samples = (0..<0x20).map { String(UnicodeScalar(UInt8($0))) } + ["\"", "\\", "\u{7F}", "é—漢🙂", "", "plain"]
        samples.append(samples.joined())
        samples.append(String(repeating: "a\"b\\c\n", count: 40))
        for s in samples {
            var text = ""
            JSONWriter.appendString(s, to: &text)
            var bytes: [UInt8] = [0x41]
            JSONWriter.appendString(s, to: &bytes)
            #expect(bytes == [0x41] + Array(text.utf8), "\(s.unicodeScalars.map(\.value))")
            #expect((try? JSONParser.parse(String(decoding: bytes.dropFirst(), as: UTF8.self)))?.stringValue == s)
        }
    }

    /// The content hash IngestBatch computes off the writer is the event's SHA-256 (a known vector),
    /// and the batch's entry for an event is the hash of its canonical bytes.
    @Test func contentHashIsTheSHA256OfTheCanonicalBytes() throws {
        let abc = Array("abc".utf8).withUnsafeBytes { ContentHash(canonical: $0) }
        #expect(abc.hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(LowercaseHex.of([0x00, 0x0F, 0xA0, 0xFF]) == "000fa0ff")
        #expect(
            LowercaseHex.of(words: (1, 0, 0xFFFF_FFFF_FFFF_FFFF, 0x0123_4567_89AB_CDEF)) == "0000000000000001" + String(repeating: "0", count: 16)
                + String(repeating: "f", count: 16) + "0123456789abcdef")
        let at = Timestamp(rfc3339: "2026-05-10T12:00:00Z")!
        let batch = IngestBatch(
            [5, 6].map { q in
                .event(
                    UsageEvent(
                        eventID: "e\(q)", accountID: "a", meterID: "tokens", modelID: "m1", kind: .usage, correctionRef: nil, quantity: q,
                        unit: nil, timestamp: at, dimensions: [:]))
            })
        for p in batch.prepared.compactMap({ $0 }) {
            let again = Array(batch.canonical[p.canonical]).withUnsafeBytes { ContentHash(canonical: $0) }
            #expect(p.contentHash == again)
        }
        #expect(batch.prepared[0]?.contentHash != batch.prepared[1]?.contentHash)
    }
}

/// The group-commit queue both stores use, with stand-in writers: batches that queue behind a
/// write go out as one group; a group that fails is written again batch by batch, unless the
/// error says the store could not be reached at all, when every batch of it gets that error.
@Suite struct IngestQueueTests {
    struct Unreachable: Error {}
    struct Broken: Error {}

    /// Counts calls; the first write (batch 0, alone) holds the queue until `open`.
    final class Writer: @unchecked Sendable {
        let lock = NSLock()
        var groups: [Int] = []
        var alone = 0
        var open = false
        func groupCall(_ n: Int) { lock.withLock { groups.append(n) } }
        func aloneCall() -> Int {
            lock.withLock {
                alone += 1; return alone
            }
        }
        var isOpen: Bool { lock.withLock { open } }
        var aloneCount: Int { lock.withLock { alone } }
    }

    /// Polls `condition` for up to ten seconds (the machine may be busy with other tests).
    static func waitFor(_ condition: () -> Bool) async {
        for _ in 0..<2000 where !condition() { try? await Task.sleep(for: .milliseconds(5)) }
    }

    static func run(failing error: any Error, retryAlone: @escaping @Sendable (any Error) -> Bool) async -> (Writer, [Int: Result<Int, any Error>]) {
        let queue = IngestQueue()
        let writer = Writer()
        @Sendable func submit(_ n: Int) async -> (Int, Result<Int, any Error>) {
            let batch = IngestBatch([
                .event(UsageEvent(eventID: "e\(n)", accountID: "a", meterID: "m", quantity: Int64(n), timestamp: Timestamp(microseconds: 0)))
            ])
            do {
                let r = try await queue.submit(
                    batch,
                    group: { batches in
                        writer.groupCall(batches.count)
                        throw error
                    },
                    alone: { b in
                        if writer.aloneCall() == 1 { await waitFor { writer.isOpen } }
                        var r = IngestResponse()
                        r.accepted = b.items.count
                        return r
                    },
                    retryAlone: retryAlone)
                return (n, .success(r.accepted))
            } catch {
                return (n, .failure(error))
            }
        }
        let results = await withTaskGroup(of: (Int, Result<Int, any Error>).self) { tasks in
            tasks.addTask { await submit(0) }
            await waitFor { writer.aloneCount == 1 }  // batch 0 is being written alone
            for n in 1..<4 { tasks.addTask { await submit(n) } }
            await waitFor { queue.waitingCount == 3 }  // 1–3 wait behind it
            writer.lock.withLock { writer.open = true }
            var all: [Int: Result<Int, any Error>] = [:]
            for await (n, r) in tasks { all[n] = r }
            return all
        }
        #expect(queue.sharedBatches == 0)
        return (writer, results)
    }
    @Test func aFailedGroupIsWrittenAgainBatchByBatch() async {
        let (writer, results) = await Self.run(failing: Broken(), retryAlone: { !($0 is Unreachable) })
        #expect(writer.groups == [3], "batches 1–3 queued behind batch 0 and were written as one group")
        #expect(writer.alone == 4, "batch 0 alone, then each of the failed group's three alone")
        #expect((0..<4).allSatisfy { (try? results[$0]?.get()) == 1 })
    }

    @Test func aGroupThatCannotReachTheStoreFailsAtOnce() async {
        let (writer, results) = await Self.run(failing: Unreachable(), retryAlone: { !($0 is Unreachable) })
        #expect(writer.groups == [3] && writer.alone == 1, "no batch of the group is written again on its own")
        #expect((try? results[0]?.get()) == 1)
        for n in 1..<4 {
            guard case .failure(let e)? = results[n] else {
                Issue.record("batch \(n) was answered")
                continue
            }
            #expect(e is Unreachable)
        }
    }
}
