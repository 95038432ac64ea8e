import Foundation

/// What a finished child process printed.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs built products as a user would, for the CLI and live-server tests.
public enum ProcessRunner {
    /// A product built beside the test runner (`$USAGEBOX_BIN` overrides `usagebox`). On Linux the
    /// runner sits beside the products; on macOS it is inside an .xctest bundle, so search upward.
    public static func product(_ name: String) -> String {
        if name == "usagebox", let env = ProcessInfo.processInfo.environment["USAGEBOX_BIN"] { return env }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent(name).path
    }

    /// Runs to completion; both pipes are drained concurrently so a chatty child never blocks.
    public static func run(
        _ executable: String, _ args: [String], cwd: String? = nil, stdin: String? = nil,
        env: [String: String] = [:], unset: [String] = []
    ) throws -> ProcessOutput {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        var environment = ProcessInfo.processInfo.environment
        for name in unset { environment.removeValue(forKey: name) }
        environment.merge(env) { $1 }
        p.environment = environment
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return ProcessOutput(
            status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}
