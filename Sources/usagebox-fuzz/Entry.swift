import CFuzzDriver
import Foundation

// Built two ways. `scripts/fuzz` builds it with `-sanitize=fuzzer,address -DFUZZING`: main hands
// the command line to libFuzzer's driver, which feeds inputs to the target named by
// USAGEBOX_FUZZ_TARGET. The ordinary build makes a replayer (`usagebox-fuzz TARGET FILE…`), so a
// crash input can be reproduced without the sanitizers, and the harness compiles with every build.

nonisolated(unsafe) private var selected: FuzzTarget?

#if FUZZING
// libFuzzer's runtime refers to this symbol by name, even when its driver is given the callback.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    selected?.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#endif

@main
enum FuzzMain {
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        if args.first == "--list" {
            print(FuzzTarget.all.map(\.0).joined(separator: "\n"))
            return
        }
        #if FUZZING
        let name = ProcessInfo.processInfo.environment["USAGEBOX_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget.named(name) else { fail("USAGEBOX_FUZZ_TARGET must be one of: \(FuzzTarget.all.map(\.0).joined(separator: " "))") }
        selected = target
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
        #else
        guard let name = args.first, let target = FuzzTarget.named(name), args.count > 1 else {
            fail("usage: usagebox-fuzz TARGET FILE… | --list   (scripts/fuzz builds the fuzzing binary)")
        }
        for path in args.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else { fail("\(path): cannot read") }
            target.run(Array(data))
            print("\(path): ok")
        }
        #endif
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(2)
    }
}
