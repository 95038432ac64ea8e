import Foundation
import UsageBoxTesting

/// Runs the built `usagebox` binary as a user would, without `$USAGEBOX_DB` leaking in.
enum CLI {
    typealias Result = ProcessOutput

    static var binary: String { ProcessRunner.product("usagebox") }

    @discardableResult
    static func run(_ args: [String], cwd: String? = nil, stdin: String? = nil, env: [String: String] = [:]) throws -> Result {
        try ProcessRunner.run(binary, args, cwd: cwd, stdin: stdin, env: env, unset: ["USAGEBOX_DB"])
    }
}

final class TemporaryDirectory: Sendable {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("usagebox-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    var path: String { url.path }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func write(_ name: String, _ text: String) throws -> String {
        let p = path(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}
