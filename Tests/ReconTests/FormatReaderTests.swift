import ExactJSON
import FormatReaders
import Foundation
import Metering
import ReconCore
import Testing

/// The shared readers: CSV against the fixtures in `Fixtures/csv` (each `NAME.csv` with the rows it
/// must give in `NAME.json`), XML and JSON against cases written here. Files written by others
/// (csv-spectrum, UBL, FOCUS) run in `OutsideCorpusTests` under `scripts/conformance`.
@Suite struct FormatReaderTests {
    /// A big export is read within the request's time (a 25 MB invoice parsed 10 s past a 5 s
    /// limit: tester S); without a deadline (the CLI) it reads whole.
    @Test func aBigExportStopsAtTheRequestsDeadline() throws {
        let text = "a,b\n" + String(repeating: "1,2\n", count: 5_000)
        let file = InvoiceFile(name: "big.csv", bytes: Array(text.utf8))
        let past = WorkDeadline(seconds: 1, now: Date().addingTimeInterval(-2))
        #expect(throws: UsageBoxError.self) { try WorkDeadline.$current.withValue(past) { _ = try CSVTable.read(file) } }
        #expect(try CSVTable.read(file).rows.count == 5_000)
    }

    static let csvDir = TestSupport.fixtures.appendingPathComponent("csv")
    static let csvNames = CSVCase.names(in: csvDir)

    @Test func fixturesArePresent() {
        #expect(Self.csvNames.count >= 11, "CSV fixtures found at \(Self.csvDir.path)")
    }

    @Test(arguments: csvNames)
    func csvFixture(_ name: String) throws {
        try CSVCase.check(name, in: Self.csvDir)
    }

    /// Records are byte ranges over buffers the reader reuses: a record kept by the caller must not
    /// change while the reader goes on, whether the others were kept or dropped, whatever the feeds.
    @Test(arguments: [1, 5, 4096, 1 << 20])
    func keptRecordsStayWholeWhileTheReaderGoesOn(chunk: Int) throws {
        var text = "id,note,amount\r\n"
        for i in 0..<300 {
            let note = i % 7 == 0 ? "\"line one\nline \"\"two\"\"\"" : String(repeating: "é", count: i % 50 == 0 ? 70_000 : i % 13)
            text += "\(i),\(note),\(i * 3)\r\n"
        }
        let whole = try CSVReader.parse(text)
        var kept: [CSVRecord] = []
        var seen = 0
        let reader = try CSVReader()
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(start + chunk, bytes.count)
            try bytes[start..<end].withUnsafeBytes {
                try reader.feed($0) { r in
                    if seen % 3 == 0 { kept.append(r) }
                    seen += 1
                }
            }
            start = end
        }
        try reader.finish { r in
            if seen % 3 == 0 { kept.append(r) }
            seen += 1
        }
        #expect(seen == whole.count)
        #expect(kept == stride(from: 0, to: whole.count, by: 3).map { whole[$0] })
        #expect(whole[8].line == 10 && whole[9].line == 12, "a quoted line break moves the next record's line")
        #expect(whole[8][1] == "line one\nline \"two\"" && whole[8].count == 3)
    }

    /// Line feeds inside quoted fields are counted eight bytes at a time: long and short fields,
    /// several feeds in one word and across words, neighbours of 0x0A (0x0B, 0x8A, 0x09) not
    /// counted, and every record keeps the line it starts on.
    /// A short last row with no line end after it is a download cut off, and is named so; the
    /// same row ended by a line break is a short row like any.
    @Test func aShortLastRowWithNoLineEndIsNamedACutFile() throws {
        let text = "a,b,c\n1,2,3\n4,5"
        let cut = #expect(throws: InvoiceError.self) { try CSVTable.read(InvoiceFile(name: "x.csv", bytes: Array(text.utf8))) }
        #expect(
            cut?.description
                == "x.csv:3: the row has 2 fields; the header names 3 (the file's last line, with no line end after it: the file looks cut short; export it again)"
        )
        let short = #expect(throws: InvoiceError.self) { try CSVTable.read(InvoiceFile(name: "x.csv", bytes: Array((text + "\n").utf8))) }
        #expect(short?.description == "x.csv:3: the row has 2 fields; the header names 3")
    }

    /// A quote left open runs its cell into the next line up to that line's own quote; the record
    /// keeps the header's width and the next row was lost without a word (tester Z). Named, with
    /// its line and column; a cell with an address or a note over two lines still reads.
    @Test func aQuoteLeftOpenThatSwallowsARowIsNamed() throws {
        let header = "date,model,key,type,cost,status\n"
        let open = header + "2026-05-01,a,\"k1,input,1.0,ok\n2026-05-02,b,\"k2\",input,2.0,ok\n2026-05-03,c,k3,input,3.0,ok\n"
        let e = #expect(throws: InvoiceError.self) { try CSVTable.read(InvoiceFile(name: "x.csv", bytes: Array(open.utf8))) }
        #expect(e?.line == 2 && e?.field == "key" && e?.description.contains("a quote left open") == true, "\(String(describing: e))")
        // The same at the end of the file, CRLF line ends.
        let last = header.replacingOccurrences(of: "\n", with: "\r\n") + "2026-05-01,a,\"k1,input,1.0,ok\r\n2026-05-02,b,\"k2\",input,2.0,ok\r\n"
        #expect(throws: InvoiceError.self) { try CSVTable.read(InvoiceFile(name: "x.csv", bytes: Array(last.utf8))) }
        let notes =
            header + "2026-05-01,a,\"1 Main St\nSpringfield, IL\",input,1.0,ok\n2026-05-02,b,\"line one\nline two\",input,2.0,ok\n"
            + "2026-05-03,c,\"Team A\n2026-05-01, renamed\",input,3.0,ok\n"
        #expect(try CSVTable.read(InvoiceFile(name: "x.csv", bytes: Array(notes.utf8))).rows.count == 3)
        // Open in the first column, whose values differ in shape from one row to the next (50.00, 5.00).
        let first = "cost,model,type,status\n\"50.00,m,input,ok\n5.00,\"m2\",output,ok\n6.00,m3,input,ok\n"
        let e0 = #expect(throws: InvoiceError.self) { try CSVTable.read(InvoiceFile(name: "x.csv", bytes: Array(first.utf8))) }
        #expect(e0?.line == 2 && e0?.field == "cost", "\(String(describing: e0))")
    }

    @Test func lineFeedsInsideLongAndShortFieldsKeepRecordLines() throws {
        let long = "a\nbcdefgh\n\nijklmnopqrstuvw\nxyz"  // 4 line feeds, spread over words and the tail
        let odd = "\u{0B}\t\u{8A}é€ no feed in this field at all"
        let text = "id,text\n1,\"\(long)\"\n2,\"\(odd)\"\n3,\"\n\"\n4,last\n"
        let records = try CSVReader.parse(text)
        #expect(records.map(\.line) == [1, 2, 7, 8, 10])
        #expect(records[1][1] == long && records[2][1] == odd && records[3][1] == "\n")
    }

    /// A file read from its path in small chunks gives the records an in-memory parse gives; a
    /// missing file is an error naming it.
    @Test func aFileReadByPathMatchesTheInMemoryParse() throws {
        let text = "a,b\n1,\"x\ny\"\n2,\"" + String(repeating: "z", count: 100) + "\"\n3,last"
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("csv-\(UUID().uuidString).csv").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        for chunk in [1, 5, 64, 1 << 20] {
            var records: [CSVRecord] = []
            try CSVReader.read(path: path, chunkSize: chunk) { records.append($0) }
            #expect(records == (try CSVReader.parse(text)), "chunk \(chunk)")
        }
        #expect(throws: CSVError.self) { try CSVReader.read(path: path + ".missing") { _ in } }
    }

    @Test func aUBLExampleStreamsWithNamespacesByURI() throws {
        let example = TestSupport.packageRoot.appendingPathComponent("Plugins/UBL/Examples/ubl_ai_invoice.xml")
        try UBLCase.check(example)
    }

    @Test func prefixesDoNotMatterOnlyURIs() throws {
        func names(_ xml: String) throws -> [String] {
            var out: [String] = []
            try XMLStreamReader.read(bytes: Array(xml.utf8)) { if case let .start(ns, local, _, _) = $0 { out.append(ns + "|" + local) } }
            return out
        }
        let a = try names(#"<a:Invoice xmlns:a="urn:x"><a:Line>1</a:Line></a:Invoice>"#)
        let b = try names(#"<Invoice xmlns="urn:x"><Line>1</Line></Invoice>"#)
        #expect(a == b && a == ["urn:x|Invoice", "urn:x|Line"])
    }

    @Test func externalEntitiesAndEntityBombsAreRefused() {
        let xxe = #"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>"#
        var text = ""
        #expect(throws: XMLStreamReader.Failure.self) {
            try XMLStreamReader.read(bytes: Array(xxe.utf8)) { if case let .text(t) = $0 { text += t } }
        }
        #expect(!text.contains("root:"), "no file content leaks")
        let bomb =
            #"<?xml version="1.0"?><!DOCTYPE b [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><b>&c;</b>"#
        #expect(throws: XMLStreamReader.Failure.self) { try XMLStreamReader.read(bytes: Array(bomb.utf8)) { _ in } }
    }

    @Test func xmlTextAndAttributesArriveDecodedAndWhole() throws {
        let xml = "<r a=\"x &amp; y &lt;z&gt; &#38;\">\n  <t>one &amp; <![CDATA[<two>]]> three</t>\n  <e/>\n</r>"
        // A tiny chunk size splits text, names and attributes across pushes: the events must not change.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ub-xml-\(UUID().uuidString).xml").path
        try Data(xml.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var whole: [XMLStreamReader.Event] = [], chunked: [XMLStreamReader.Event] = []
        try XMLStreamReader.read(bytes: Array(xml.utf8)) { whole.append($0) }
        try XMLStreamReader.read(path: path, chunkSize: 3) { chunked.append($0) }
        #expect(whole == chunked)
        #expect(
            whole == [
                .start(namespace: "", localName: "r", attributes: [.init(namespace: "", localName: "a", value: "x & y <z> &")], line: 1),
                .start(namespace: "", localName: "t", attributes: [], line: 2),
                .text("one & <two> three"),
                .end(namespace: "", localName: "t"),
                .start(namespace: "", localName: "e", attributes: [], line: 3),
                .end(namespace: "", localName: "e"),
                .end(namespace: "", localName: "r"),
            ])
    }

    @Test func xmlEntityDeclarationsAndUndeclaredReferencesAreRefused() {
        let declared = #"<!DOCTYPE x [<!ENTITY e "hi">]><x>no reference</x>"#
        #expect(throws: XMLStreamReader.Failure.self) { try XMLStreamReader.read(bytes: Array(declared.utf8)) { _ in } }
        let undeclared = #"<!DOCTYPE x><x>a &nope; b</x>"#
        #expect(throws: XMLStreamReader.Failure.self) { try XMLStreamReader.read(bytes: Array(undeclared.utf8)) { _ in } }
    }

    @Test func anErrorThrownByTheXMLHandlerStopsTheParseAndComesBack() {
        struct Stop: Error {}
        var seen = 0
        #expect(throws: Stop.self) {
            try XMLStreamReader.read(bytes: Array("<a><b/><c/><d/></a>".utf8)) { event in
                if case .start = event { seen += 1; if seen == 2 { throw Stop() } }
            }
        }
        #expect(seen == 2)
    }

    /// libxml2 compares each attribute of a tag with every one before it: 500,000 on one element
    /// took 111 s. Past 1,000 the file is refused before the parser sees the tag, naming its
    /// line; quotes and `>` inside values, comments and CDATA do not throw the count off.
    @Test func anElementWithThousandsOfAttributesIsRefusedBeforeParsing() throws {
        func element(_ n: Int) -> String { "<a " + (0..<n).map { "x\($0)=\"1\"" }.joined(separator: " ") + "/>" }
        let prologue = "<r>\n<!-- don't > count = this -->\n<![CDATA[ a='b' > \"c\" ]]>\n<b v=\"p > q = r\" w='it\"s'/>\n"
        var events = 0
        try XMLStreamReader.read(bytes: Array((prologue + element(1_000) + "</r>").utf8)) { _ in events += 1 }
        #expect(events > 0)
        do {
            try XMLStreamReader.read(bytes: Array((prologue + element(1_001) + "</r>").utf8)) { _ in }
            Issue.record("accepted 1,001 attributes")
        } catch let e as XMLStreamReader.Failure {
            #expect(e.line == 5 && e.message.contains("more than 1000 attributes"), "\(e)")
        }
    }

    @Test func malformedXMLNamesItsLine() {
        do {
            try XMLStreamReader.read(bytes: Array("<a>\n<b>\n</a>".utf8)) { _ in }
            Issue.record("accepted malformed XML")
        } catch let e as XMLStreamReader.Failure {
            #expect(e.line == 3, "\(e)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func jsonNumbersBecomeTheSameDecimalDigits() throws {
        let v = try JSONParser.parse(#"{"a": 0.1, "b": 0.2, "big": 12345678901234567890, "long": 1234567890.1234567891}"#)
        let a = ExactDecimal.parse(v["a"]!.numberText!)!, b = ExactDecimal.parse(v["b"]!.numberText!)!
        #expect(a + b == ExactDecimal.parse("0.3")!)
        #expect(ExactDecimal.parse(v["big"]!.numberText!)!.description == "12345678901234567890")
        #expect(ExactDecimal.parse(v["long"]!.numberText!)!.description == "1234567890.1234567891")
    }

    /// The streamed export gives the same elements and members as the whole-document parse, with
    /// numbers exact, whatever the chunk size cuts (numbers, escapes, literals, multi-byte text).
    @Test(arguments: [1, 3, 7, 64, 1 << 20])
    func aStreamedExportMatchesTheWholeParse(chunk: Int) throws {
        var text = #"{"object": "page", "data": ["# + "\n"
        for i in 0..<40 {
            text += (i == 0 ? "" : ",\n") + #"{"amount": "\#(i).10", "tokens": 12345678901234567\#(i), "ok": true, "none": null, "#
            text += #""note": "caf\u00e9 – é \"q\"", "nested": {"x": [1, 2.50, -3e4]}}"#
        }
        text += #"], "has_more": false, "next_page": null}"#
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stream-\(UUID().uuidString).json").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var streamed: [JSONValue] = []
        let rest = try JSONStream.forEachElement(path: path, of: "data", chunkSize: chunk) { streamed.append($0) }
        let whole = try JSONParser.parse(text)
        #expect(streamed == whole["data"]?.arrayValue)
        #expect(rest == .object([("object", .string("page")), ("data", .array([])), ("has_more", .bool(false)), ("next_page", .null)]))
        var inMemory: [JSONValue] = []
        try JSONStream.forEachElement(bytes: Array("[1, 2.50, {\"a\": []}]".utf8), of: nil) { inMemory.append($0) }
        #expect(inMemory == [.number("1"), .number("2.50"), .object([("a", .array([]))])])
        // One element much larger than a chunk: read in growing pieces, delivered whole.
        let big = "{\"data\": [\"" + String(repeating: "x", count: 300_000) + "\", 7]}"
        var sizes: [Int] = []
        try JSONStream.forEachElement(bytes: Array(big.utf8), of: "data", chunkSize: 16) { sizes.append($0.stringValue?.count ?? 0) }
        try JSONStream.forEachElement(bytes: Array(big.utf8), of: "data") { _ in }
        #expect(sizes == [300_000, 0])
    }

    /// A paged export reads the same streamed (one page) as parsed whole (an array of pages): the
    /// same elements at the same places, each page's members with `data` emptied, a missing `data`
    /// kept missing, and a malformed page named by line.
    @Test func aPagedExportReadsTheSameStreamedOrWhole() throws {
        let page = #"{"data": [{"a": "1.10"}, {"a": 2}], "has_more": true, "next_page": "p2"}"#
        var streamed: [String] = [], whole: [String] = []
        let one = try InvoiceFile(name: "one.json", bytes: Array(page.utf8)).forEachPagedElement { streamed.append("\($0)=\(JSONWriter.write($1))") }
        let two = try InvoiceFile(name: "two.json", bytes: Array("[\(page), \(page)]".utf8)).forEachPagedElement {
            whole.append("\($0)=\(JSONWriter.write($1))")
        }
        #expect(streamed == [#"data[0]={"a":"1.10"}"#, #"data[1]={"a":2}"#])
        #expect(whole == [#"[0].data[0]={"a":"1.10"}"#, #"[0].data[1]={"a":2}"#, #"[1].data[0]={"a":"1.10"}"#, #"[1].data[1]={"a":2}"#])
        let emptied = JSONValue.object([("data", .array([])), ("has_more", .bool(true)), ("next_page", .string("p2"))])
        #expect(one.map(\.location) == ["one.json"] && one.map(\.page) == [emptied])
        #expect(two.map(\.location) == ["two.json#[0]", "two.json#[1]"] && two.map(\.page) == [emptied, emptied])
        let missing = try InvoiceFile(name: "m.json", bytes: Array(#"{"has_more": false}"#.utf8)).forEachPagedElement { _, _ in Issue.record("no data") }
        #expect(missing.first?.page["data"] == nil)
        #expect(throws: InvoiceError.self) {
            try InvoiceFile(name: "bad.json", bytes: Array("{\"data\": [\n{\"a\": 1},\n{\"a\" 2}]}".utf8)).forEachPagedElement { _, _ in }
        }
        do {
            _ = try InvoiceFile(name: "bad.json", bytes: Array("{\"data\": [\n{\"a\": 1},\n{\"a\" 2}]}".utf8)).forEachPagedElement { _, _ in }
        } catch let e as InvoiceError {
            #expect(e.description.contains("bad.json") && e.description.contains("3"), "\(e)")
        }
        // Errors in the order a whole-document read gives them: a truncated file is malformed JSON
        // even when an element before the cut is refused too; a page without `data` before the
        // elements of the pages after it.
        struct Refused: Error {}
        let truncated = InvoiceFile(name: "cut.json", bytes: Array(#"{"data": [{"bad": 1}, {"a": 2}, {"a""#.utf8))
        #expect {
            try truncated.forEachPagedElement { _, element in if element["bad"] != nil { throw Refused() } }
        } throws: { ($0 as? InvoiceError)?.description.contains("malformed JSON") == true }
        let intact = InvoiceFile(name: "ok.json", bytes: Array(#"{"data": [{"bad": 1}, {"a": 2}]}"#.utf8))
        #expect(throws: Refused.self) { try intact.forEachPagedElement { _, element in if element["bad"] != nil { throw Refused() } } }
        let noData = InvoiceFile(name: "pages.json", bytes: Array(#"[{"has_more": true}, {"data": [{"bad": 1}]}]"#.utf8))
        #expect {
            try noData.forEachPagedElement(dataRequired: "needs data") { _, _ in throw Refused() }
        } throws: { ($0 as? InvoiceError)?.description.contains("[0].data") == true }
        let single = InvoiceFile(name: "one.json", bytes: Array(#"{"data": {"not": "an array"}}"#.utf8))
        #expect {
            try single.forEachPagedElement(dataRequired: "needs data") { _, _ in }
        } throws: { ($0 as? InvoiceError)?.description.contains("needs data") == true }
    }

    @Test func aStreamedExportNamesTheLineAndColumnOfAnError() throws {
        let text = "{\"data\": [\n  {\"a\": 1},\n  {\"a\": 2,, \"b\": 3}\n]}"
        for chunk in [2, 5, 1 << 20] {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).json").path
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            defer { try? FileManager.default.removeItem(atPath: path) }
            var seen = 0
            #expect(throws: JSONParseError.self) { try JSONStream.forEachElement(path: path, of: "data", chunkSize: chunk) { _ in seen += 1 } }
            do {
                try JSONStream.forEachElement(path: path, of: "data", chunkSize: chunk) { _ in }
            } catch let e as JSONParseError {
                #expect(e.line == 3 && e.column == 11, "chunk \(chunk): \(e)")
            }
            #expect(seen == 1, "the element before the error was delivered")
        }
    }
}

extension JSONValue {
    var numberText: String? { if case let .number(n) = self { return n } else { return nil } }
}
