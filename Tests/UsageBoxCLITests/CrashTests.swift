import ExactJSON
import Foundation
import Testing

/// An ingesting process killed with SIGKILL loses nothing it acknowledged and stores nothing twice.
@Suite(.serialized) struct CrashTests {
    @Test func killedIngestKeepsEveryAcknowledgedEventExactlyOnce() throws {
        let dir = try TemporaryDirectory()
        let db = dir.path("crash.db")
        let count = 60_000
        var text = ""
        text.reserveCapacity(count * 150)
        for i in 0..<count {
            text +=
                #"{"event_id":"k\#(i)","account_id":"acct_\#(i % 3)","meter_id":"m","model_id":"x","quantity":\#(i % 97 + 1),"timestamp":"2026-05-\#(String(format: "%02d", i % 28 + 1))T10:00:00Z"}"#
                + "\n"
        }
        let file = try dir.write("events.ndjson", text)
        var generator = SystemRandomNumberGenerator()
        var killedMidway = 0
        for round in 0..<4 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = ["ingest", "--db", db, "--batch-size", "2000", "--progress", "lines", file]
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let delay = UInt32.random(in: 50_000...600_000, using: &generator)
            usleep(delay)
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let acknowledged =
                log.split(separator: "\n").compactMap { line -> Int? in
                    guard line.hasPrefix("committed ") else { return nil }
                    return Int(line.dropFirst(10).split(separator: " ").first ?? "")
                }.max() ?? 0
            if acknowledged < count { killedMidway += 1 }
            // Events are read in file order, so the first `acknowledged` events must all be stored, once.
            let r = try CLI.run(["query", "sql", "--db", db, "--json", "SELECT COUNT(*), COUNT(DISTINCT account_id || '/' || event_id) FROM usage_events"])
            #expect(r.status == 0, "round \(round): \(r.stderr)")
            let row = try JSONParser.parse(r.stdout)["rows"]?.arrayValue?.first?.arrayValue ?? []
            let stored = row.first?.exactInt64 ?? -1
            #expect(stored >= Int64(acknowledged), "round \(round): \(stored) stored, \(acknowledged) acknowledged")
            #expect(row.first == row.last, "no event stored twice")
            if acknowledged > 0 {
                let firsts = try CLI.run([
                    "query", "sql", "--db", db, "--json",
                    "SELECT COUNT(*) FROM usage_events WHERE CAST(substr(event_id, 2) AS INTEGER) < \(acknowledged)",
                ])
                #expect(try JSONParser.parse(firsts.stdout)["rows"] == .array([.array([.int(acknowledged)])]), "round \(round)")
            }
        }
        #expect(killedMidway > 0, "at least one round was killed before it finished")
        // Finish the job: every event ends up stored exactly once, and the books verify.
        let finish = try CLI.run(["ingest", "--db", db, "--json", file])
        let j = try JSONParser.parse(finish.stdout)
        #expect((j["accepted"]?.exactInt64 ?? 0) + (j["duplicates"]?.exactInt64 ?? 0) == Int64(count))
        let total = try CLI.run(["query", "sql", "--db", db, "--json", "SELECT COUNT(*), SUM(quantity) FROM usage_events"])
        let expectedSum = (0..<count).reduce(Int64(0)) { $0 + Int64($1 % 97 + 1) }
        #expect(try JSONParser.parse(total.stdout)["rows"] == .array([.array([.int(count), .int(expectedSum)])]))
        for account in ["acct_0", "acct_1", "acct_2"] {
            let v = try CLI.run(["verify", "--db", db, "--account", account, "--json", "--from", "2026-05-01T00:00:00Z", "--to", "2026-06-01T00:00:00Z"])
            let report = try JSONParser.parse(v.stdout)
            #expect(report["ok"] == .bool(true), "\(account): \(v.stdout)")
        }
    }
}
