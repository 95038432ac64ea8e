import Foundation
import MeterStoreSQLite
import Metering
import Testing
import UsageBoxApp

/// A batch read from a file is bounded by its events' bytes as well as their count, so a file of
/// large events (32 long dimensions each) is never held and written thousands at a time.
struct EventFileReaderTests {
    let dir: TemporaryDirectory
    init() throws { dir = try TemporaryDirectory() }

    /// Ten events of about 1 KB each (four dimensions of 250 characters).
    func largeEvents() -> [String] {
        (0..<10).map { i in
            let long = String(repeating: "x", count: 250)
            return
                #"{"event_id":"e\#(i)","account_id":"acct_1","meter_id":"tokens","quantity":1,"timestamp":"2026-05-01T00:00:00Z","dimensions":{"a":"\#(long)","b":"\#(long)","c":"\#(long)","d":"\#(long)"}}"#
        }
    }

    func batchSizes(_ path: String, batchSize: Int = 20_000, batchBytes: Int) async throws -> [Int] {
        var reader = EventFileReader(decoder: EventDecoder())
        reader.batchBytes = batchBytes
        var sizes: [Int] = []
        try await reader.read(path: path, batchSize: batchSize) { sizes.append($0.count) }
        return sizes
    }

    @Test(arguments: ["ndjson", "json", "csv"])
    func largeEventsMakeSmallerBatches(format: String) async throws {
        let events = largeEvents()
        let text: String
        switch format {
        case "ndjson": text = events.joined(separator: "\n") + "\n"
        case "json": text = #"{"events":["# + events.joined(separator: ",") + "]}"
        default:
            let long = String(repeating: "x", count: 250)
            text =
                "event_id,account_id,meter_id,quantity,timestamp,a,b,c,d\n"
                + (0..<10).map { "e\($0),acct_1,tokens,1,2026-05-01T00:00:00Z,\(long),\(long),\(long),\(long)\n" }.joined()
        }
        let path = try dir.write("large.\(format)", text)
        // About three events' worth of bytes: batches of three, then the last one.
        #expect(try await batchSizes(path, batchBytes: 3_000) == [3, 3, 3, 1])
        // The count still ends a batch first when the events are small for the bound.
        #expect(try await batchSizes(path, batchSize: 4, batchBytes: 1 << 20) == [4, 4, 2])
        // Every event is read once either way, in order.
        var reader = EventFileReader(decoder: EventDecoder())
        reader.batchBytes = 3_000
        var ids: [String] = []
        try await reader.read(path: path, batchSize: 20_000) { batch in
            for case let .event(e) in batch.map(\.item) { ids.append(e.eventID) }
        }
        #expect(ids == (0..<10).map { "e\($0)" })
    }

    /// Spaces around an unquoted CSV cell are the value's, as RFC 4180 and the same event sent as
    /// JSON have it: ` x ` was stored as `x`, and the JSON event answered a conflict; a padded
    /// quantity passed in CSV and was refused in JSON. A padded header name is still the name,
    /// and a line of spaces still no row.
    @Test func csvCellsKeepTheirSpaces() async throws {
        let path = try dir.write(
            "spaces.csv",
            "event_id, account_id ,meter_id,quantity,timestamp,feature\ne1,acct_1,tokens,7,2026-05-01T00:00:00Z, x \n   \ne2,acct_1,tokens, 7 ,2026-05-01T00:00:00Z,y\n"
        )
        var items: [SourcedItem] = []
        try await EventFileReader(decoder: EventDecoder()).read(path: path, batchSize: 100) { items += $0 }
        #expect(items.count == 2)
        guard case let .event(e)? = items.first?.item else { Issue.record("\(String(describing: items.first))"); return }
        #expect(e.accountID == "acct_1" && e.dimensions == [UsageEvent.Dimension("feature", " x ")], "\(e.dimensions)")
        guard case let .invalid(r)? = items.last?.item else { Issue.record("a padded quantity was read: \(String(describing: items.last))"); return }
        #expect(r.code == "invalid_quantity" && items.last?.line == 4, "\(r)")
        // A quote beside a kept space is malformed: refused naming the line, not stored with its
        // quotes (` "input"`) nor read on past its row (`"e1" ,`).
        for (name, row) in [("before", #"e3,acct_1,tokens,7,2026-05-01T00:00:00Z, "input""#), ("after", #""e3" ,acct_1,tokens,7,2026-05-01T00:00:00Z,input"#)] {
            let bad = try dir.write(
                "quote-\(name).csv",
                "event_id,account_id,meter_id,quantity,timestamp,token_type\ne2,acct_1,tokens,7,2026-05-01T00:00:00Z,x\n\(row)\ne4,acct_1,tokens,7,2026-05-01T00:00:00Z,y\n"
            )
            do {
                try await EventFileReader(decoder: EventDecoder()).read(path: bad, batchSize: 100) { _ in }
                Issue.record("a quote beside a space was read (\(name))")
            } catch let e as UsageBoxError {
                #expect(e.message.hasPrefix("\(bad):3:"), "\(name): \(e.message)")
            }
        }
    }

    /// A line longer than any event may be is rejected naming its line, without being read into
    /// memory whole (a 300 MiB line held 963 MB); the lines after it are read as usual.
    @Test func aLineLongerThanAnyEventIsRejectedAndSkipped() async throws {
        let event = { (id: String) in #"{"event_id":"\#(id)","account_id":"a","meter_id":"m","quantity":1,"timestamp":"2026-05-01T00:00:00Z"}"# }
        var bytes = Data((event("first") + "\n").utf8)
        bytes.append(Data(repeating: UInt8(ascii: "x"), count: EventFileReader.maxLineBytes + 5_000_000))
        bytes.append(Data(("\n" + event("after") + "\n").utf8))
        let path = dir.path("long.ndjson")
        try bytes.write(to: URL(fileURLWithPath: path))
        var reader = EventFileReader(decoder: EventDecoder())
        reader.chunkSize = 1 << 20
        var seen: [String] = []
        try await reader.read(path: path, batchSize: 20_000) { batch in
            for item in batch {
                switch item.item {
                case let .event(e): seen.append("\(item.line ?? 0) \(e.eventID)")
                case let .invalid(r): seen.append("\(item.line ?? 0) \(r.code)")
                }
            }
        }
        #expect(seen == ["1 first", "2 line_too_long", "3 after"])
        // A line past the limit whose newline comes in the read that takes it past (17 MiB read in
        // 4 MiB chunks: 16 MiB held, then the rest with its newline) was decoded as an event.
        var near = Data((event("first") + "\n").utf8)
        near.append(Data(repeating: UInt8(ascii: "x"), count: EventFileReader.maxLineBytes + (1 << 20)))
        near.append(Data(("\n" + event("after") + "\n").utf8))
        try near.write(to: URL(fileURLWithPath: path))
        reader.chunkSize = 4 << 20
        seen = []
        try await reader.read(path: path, batchSize: 20_000) { batch in
            for item in batch {
                if case let .invalid(r) = item.item { seen.append("\(item.line ?? 0) \(r.code)") }
            }
        }
        #expect(seen == ["2 line_too_long"], "\(seen)")
    }

    /// A store that refuses a whole batch for one event, as a server does a writer key's batch
    /// holding another account's event (403, `events[N].account_id`).
    struct RefusingStore: ForwardingStore {
        let inner: any MeterStore
        func ingest(_ batch: IngestBatch) async throws -> IngestResponse {
            guard let i = batch.items.firstIndex(where: { if case let .event(e) = $0 { e.accountID == "acct_42" } else { false } }) else {
                return try await inner.ingest(batch)
            }
            throw UsageBoxError(.permissionDenied, "this key may not see account acct_42", field: "events[\(i)].account_id")
        }
    }

    /// `ingest --server` said only "this key may not see account acct_42": now the file and line.
    @Test func aBatchRefusedForOneEventNamesItsFileAndLine() async throws {
        let line = { (id: String, account: String) in
            #"{"event_id":"\#(id)","account_id":"\#(account)","meter_id":"m","quantity":1,"timestamp":"2026-05-01T00:00:00Z"}"#
        }
        let path = dir.path("foreign.ndjson")
        try Data([line("a", "acct_7"), line("b", "acct_7"), line("c", "acct_42")].joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path))
        let ingestor = FileIngestor(store: RefusingStore(inner: try SQLiteMeterStore(location: .newMemory())))
        await #expect {
            _ = try await ingestor.ingest(files: [path])
        } throws: { e in
            guard let e = e as? UsageBoxError else { return false }
            return e.message.hasPrefix("\(path):3: ") && e.field == "events[2].account_id"
        }
    }
}
