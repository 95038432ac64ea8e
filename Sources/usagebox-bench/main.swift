import ExactJSON
import FormatReaders
import Foundation
import Metering
import UsageBoxApp

/// Parse throughput of the shared invoice readers (CSV over libcsv, XML over libxml2, JSON), for
/// the benchmarks: `usagebox-bench csv|xml|json FILE` prints one JSON line with MB/s.
let args = CommandLine.arguments
if args.count >= 3, ["usage", "verify-deep", "verify-incremental"].contains(args[1]) {
    // In-process timings of reads on an existing store (no process start): median of 21 runs, ms.
    let ms = try StoreTimer.time(kind: args[1], path: args[2], account: args.count > 3 ? args[3] : nil)
    print(#"{"what":"\#(args[1])","account":"\#(args.count > 3 ? args[3] : "all")","median_ms":\#(String(format: "%.2f", ms))}"#)
    exit(0)
}
guard args.count == 3, ["csv", "xml", "json", "json-stream", "events"].contains(args[1]) else {
    FileHandle.standardError.write(
        Data("usage: usagebox-bench csv|xml|json|json-stream|events FILE | usage|verify-deep|verify-incremental DB [ACCOUNT]\n".utf8))
    exit(2)
}
let path = args[2]
let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
let start = ContinuousClock.now
var records = 0
do {
    switch args[1] {
    case "csv":
        try CSVReader.read(path: path) { _ in records += 1 }
    case "events":
        // Reading and validating events only (no store): the decode side of ingest.
        records = try EventCounter.count(path: path)
    case "json-stream":
        // The export's `data` array one element at a time: memory holds one element's tree.
        try JSONStream.forEachElement(path: path, of: "data") { _ in records += 1 }
    case "xml":
        try XMLStreamReader.read(path: path) { event in if case .start = event { records += 1 } }
    default:
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let value = try JSONParser.parse(bytes: data)
        records = value["data"]?.arrayValue?.count ?? value.arrayValue?.count ?? 1
    }
} catch {
    FileHandle.standardError.write(Data("usagebox-bench: \(path): \(error)\n".utf8))
    exit(1)
}
let elapsed = ContinuousClock.now - start
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print(
    #"{"format":"\#(args[1])","bytes":\#(bytes),"records":\#(records),"seconds":\#(String(format: "%.3f", seconds)),"mb_per_s":\#(String(format: "%.1f", Double(bytes) / 1_000_000 / seconds))}"#
)

/// Runs the async reader to completion from synchronous code.
enum EventCounter {
    final class Box: @unchecked Sendable {
        // Written by the one task below, read after the semaphore: no concurrent access.
        var count = 0
        var failure: (any Error)?
    }

    static func count(path: String) throws -> Int {
        let box = Box()
        let semaphore = DispatchSemaphore(value: 0)
        Task.detached {
            do {
                var n = 0
                try await EventFileReader(decoder: EventDecoder()).read(path: path, batchSize: 20_000) { n += $0.count }
                box.count = n
            } catch {
                box.failure = error
            }
            semaphore.signal()
        }
        semaphore.wait()
        if let f = box.failure { throw f }
        return box.count
    }
}

enum StoreTimer {
    final class Box: @unchecked Sendable {
        // Written by the one task below, read after the semaphore.
        var ms = 0.0
        var failure: (any Error)?
    }

    static func time(kind: String, path: String, account: String?) throws -> Double {
        let box = Box()
        let semaphore = DispatchSemaphore(value: 0)
        Task.detached {
            do {
                // A path is the embedded store; a clickhouse:// URL the ClickHouse store.
                let store: any MeterStore =
                    path.contains("://") ? try await StoreFactory.openServerStore(db: nil, store: path) : try StoreFactory.openSQLite(path: path)
                let range = try TimeRange(from: "2026-05-01T00:00:00Z", to: "2026-06-01T00:00:00Z")
                var samples: [Double] = []
                for _ in 0..<22 {
                    let start = ContinuousClock.now
                    switch kind {
                    case "usage":
                        _ = try await store.usage(UsageQuery(scope: account.map { .accounts([$0]) } ?? .all, range: range, groupBy: [.modelID]))
                    default:
                        _ = try await store.verify(
                            VerifyRequest(
                                account: account ?? "acct_7", range: range,
                                mode: kind == "verify-deep" ? .deep : .incremental))
                    }
                    let d = ContinuousClock.now - start
                    samples.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
                }
                samples.removeFirst()  // warm-up
                box.ms = samples.sorted()[samples.count / 2]
            } catch {
                box.failure = error
            }
            semaphore.signal()
        }
        semaphore.wait()
        if let f = box.failure { throw f }
        return box.ms
    }
}
