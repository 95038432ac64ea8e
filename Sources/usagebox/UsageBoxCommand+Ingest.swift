import ArgumentParser
import ExactJSON
import Foundation
import Metering
import UsageBoxApp

extension UsageBoxCommand {
    struct Ingest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ingest events from NDJSON, {\"events\": [...]} JSON, or CSV files ('-' reads standard input).",
            discussion: """
                CSV: a header naming event fields; every other column is a dimension (an empty cell is absent).
                Exit 0 when every input was read and answered, whatever the counts; with --strict, exit 4 when
                any event was rejected or conflicted.
                """)

        @OptionGroup var store: StoreOptions
        @Flag(help: "Print one JSON object totalled over all files (the API's batch answer).") var json = false
        @Flag(help: "Exit 4 when any event was rejected or conflicted.") var strict = false
        @Option(help: "Events per transaction (a batch also ends once its events pass \(EventFileReader.defaultBatchBytes >> 20) MiB of the file).")
        var batchSize = 20_000
        @Option(help: "auto (a bar on a terminal), bar, lines ('committed N events' on stderr after every batch), or none.")
        var progress: ProgressMode = .auto
        @Argument(help: "Files to ingest.") var files: [String]

        func validate() throws {
            guard !files.isEmpty else { throw ValidationError("name at least one file") }
            guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        }

        func run() async throws {
            let db = try await store.open(creating: true)
            let ingestor = FileIngestor(store: db, batchSize: batchSize)
            let mode: ProgressLine.Mode
            switch self.progress {
            case .lines: mode = .lines
            case .bar: mode = .bar
            case .none: mode = .none
            case .auto: mode = isatty(STDERR_FILENO) != 0 ? .bar : .none
            }
            let progress = ProgressLine(mode: mode)
            let result: IngestResponse
            do {
                result = try await ingestor.ingest(files: files) { progress.update($0) }
                progress.finish()
            } catch let error as UsageBoxError where progress.committed > 0 {
                // Say what is already stored, so that a script (or a person) reruns rather than
                // wonders: the batches before the failure were answered and are durable.
                progress.finish()
                try? await db.sealSegmentsWrittenHere()
                var told = error
                told.message +=
                    "; the first \(progress.committed) events read were answered (stored, or found duplicate, conflicting or "
                    + "rejected) before it and are kept: run the same ingest again once it is mended, and those already stored are answered duplicate"
                throw told
            } catch {
                progress.finish()
                try? await db.sealSegmentsWrittenHere()
                throw error
            }
            // Segments seal at shutdown, so each run leaves a hashed, chained record.
            try await db.sealSegmentsWrittenHere()
            if json {
                printOut(JSONWriter.write(result.jsonValue))
            } else {
                printOut(Rendering.ingest(result))
            }
            if strict, result.rejected + result.conflicts > 0 { throw ExitCode.strictRejections }
        }
    }
}

/// A one-line progress display with rate on a terminal (stderr), silent otherwise.
final class ProgressLine: @unchecked Sendable {
    // Called from the ingest loop only, one update at a time.
    enum Mode { case bar, lines, none }
    private let mode: Mode
    private var last = Date.distantPast
    private var shown = false
    /// Events read up to the last batch answered (each batch's answers are durable once given).
    private(set) var committed = 0

    init(mode: Mode) { self.mode = mode }

    func update(_ p: FileIngestor.Progress) {
        committed = p.events
        if mode == .lines {
            // Written after the batch committed: every event read so far is answered durably (stored,
            // or found a duplicate, a conflict or a rejection), not necessarily stored.
            FileHandle.standardError.write(Data("committed \(p.events) events read\n".utf8))
            return
        }
        guard mode == .bar, Date().timeIntervalSince(last) > 0.2 else { return }
        last = Date()
        let rate = p.elapsedSeconds > 0 ? Int64(Double(p.events) / p.elapsedSeconds) : 0
        let text = "\r\(p.file): \(TextTable.grouped(Int64(p.events))) events  \(TextTable.grouped(rate))/s   "
        FileHandle.standardError.write(Data(text.utf8))
        shown = true
    }

    func finish() {
        if shown { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
