import Foundation
import Metering

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An advisory lock on `<store>.lock`: shared while a process has the store open, exclusive
/// while `restore` replaces it. Released when the process exits, however it exits.
final class OpenStoreLock: Sendable {
    private let descriptor: Int32

    init(store path: String, exclusive: Bool) throws {
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw UsageBoxError(.internal, "cannot open \(lockPath): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 else {
            close(fd)
            throw
                exclusive
                ? UsageBoxError(
                    .conflict, "\(path) is open in another process (a running usagebox serve?): stop it first; nothing was restored", field: "db")
                : UsageBoxError(.conflict, "\(path) is being restored by another process: try again when it is done", field: "db")
        }
        descriptor = fd
    }

    deinit { close(descriptor) }
}
