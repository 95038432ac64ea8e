import ArgumentParser
import ExactJSON
import Foundation
import Logging
import Metering

/// How `serve` writes its log lines.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// One JSON object per log line on stderr (`serve --log-format json`): time, level, label, message
/// and every metadata value as a string, for log shippers that parse JSON.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    init(label: String, logLevel: Logger.Level) {
        self.label = label
        self.logLevel = logLevel
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        var members: [(String, JSONValue)] = [
            ("time", .string(Timestamp.now().rfc3339)), ("level", .string(level.rawValue)), ("label", .string(label)),
            ("message", .string(message.description)),
        ]
        let all = metadata.merging(extra ?? [:]) { $1 }
        for (k, v) in all.sorted(by: { $0.key < $1.key }) { members.append((k, .string(v.description))) }
        FileHandle.standardError.write(Data((JSONWriter.write(.object(members)) + "\n").utf8))
    }
}
