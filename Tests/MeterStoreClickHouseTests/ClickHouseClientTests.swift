import Foundation
import Metering
import Testing

@testable import MeterStoreClickHouse

#if canImport(Glibc)
import Glibc
#endif

/// A loopback HTTP server that closes its first connection as soon as it has read a request,
/// without answering (what a pooled keep-alive connection meets when ClickHouse closes it just as
/// a statement is sent), and answers every later one with a one-row JSONCompact result.
final class ClosingOnceServer: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var connections = 0
    var connectionCount: Int { lock.withLock { connections } }
    /// Answers every request with a body cut off after a few of its declared bytes.
    let cutsAnswers: Bool
    /// Answers nothing, holding every connection open.
    let silent: Bool

    init(cutsAnswers: Bool = false, silent: Bool = false) throws {
        self.cutsAnswers = cutsAnswers
        self.silent = silent
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw CocoaError(.fileWriteUnknown) }
        self.fd = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread.detachNewThread { [self] in serve() }
    }

    private func serve() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 { return }
            let n = lock.withLock {
                connections += 1
                return connections
            }
            Self.readRequest(client)
            if silent { continue }  // the connection stays open, unanswered
            if cutsAnswers {
                let answer = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"meta\":["
                _ = answer.withCString { send(client, $0, strlen($0), 0) }
            } else if n > 1 {
                let body = #"{"meta":[{"name":"x","type":"UInt8"}],"data":[[1]],"rows":1}"#
                let answer = "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
                _ = answer.withCString { send(client, $0, strlen($0), 0) }
            }
            close(client)
        }
    }

    /// Reads one request whole (head, then `Content-Length` bytes of body): closing a socket with
    /// unread bytes resets the connection instead of closing it.
    static func readRequest(_ fd: Int32) {
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let text = String(decoding: request, as: UTF8.self)
            if let head = text.range(of: "\r\n\r\n") {
                let length =
                    text[..<head.lowerBound].split(separator: "\r\n")
                    .first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                if text.utf8.distance(from: text.utf8.startIndex, to: head.upperBound) + length <= request.count { return }
            }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return }
            request += chunk[0..<n]
        }
    }

    func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
}

@Suite struct ClickHouseClientTests {
    /// A read whose connection is closed under it is sent once more and answered; a write is
    /// not repeated (it may have been stored) and says ClickHouse could not be reached.
    @Test func aReadMeetingAClosedConnectionIsSentAgainAWriteIsNot() async throws {
        let server = try ClosingOnceServer()
        defer { server.stop() }
        let client = ClickHouseClient(host: "127.0.0.1:\(server.port)", user: nil, password: nil, timeoutSeconds: 10)
        let answer = try await client.rows("SELECT 1")
        #expect(answer.rows.first?.first?.chInt == 1)
        #expect(server.connectionCount == 2, "the read went out a second time on a new connection")

        let other = try ClosingOnceServer()
        defer { other.stop() }
        let writer = ClickHouseClient(host: "127.0.0.1:\(other.port)", user: nil, password: nil, timeoutSeconds: 10)
        await #expect(throws: (any Error).self) { try await writer.command("INSERT INTO t VALUES (1)") }
        #expect(other.connectionCount == 1, "a write is never sent twice by the client")
    }

    /// An answer cut off on the way is "not now" (503, retry), not a 400 saying it was too large:
    /// a client told 400 drops its batch.
    /// A ClickHouse that takes connections and never answers: a read is given up after the read
    /// timeout (30 s by default; it held every request for 300 s), as unavailable.
    @Test func aReadUnansweredIsGivenUp() async throws {
        let server = try ClosingOnceServer(silent: true)
        defer { server.stop() }
        let client = ClickHouseClient(host: "127.0.0.1:\(server.port)", user: nil, password: nil, timeoutSeconds: 300, readTimeoutSeconds: 1)
        let start = ContinuousClock.now
        do {
            _ = try await client.rows("SELECT 1")
            Issue.record("answered")
        } catch let e as UsageBoxError {
            #expect(e.code == .unavailable, "\(e)")
        }
        // Far under the 300 s it held before (the request's whole timeout here too), and far over
        // the 1 s asked: a loaded machine (the full suite beside other work) took 20.4 s once
        // against a bound of 20, and 60.7 s once against a bound of 60 (the test's task waiting
        // for a thread, not the read).
        #expect(ContinuousClock.now - start < .seconds(150))
    }

    @Test func anAnswerCutOffIsUnavailable() async throws {
        let server = try ClosingOnceServer(cutsAnswers: true)
        defer { server.stop() }
        let client = ClickHouseClient(host: "127.0.0.1:\(server.port)", user: nil, password: nil, timeoutSeconds: 10)
        do {
            _ = try await client.rows("SELECT 1")
            Issue.record("answered")
        } catch let e as UsageBoxError {
            #expect(e.code == .unavailable, "\(e)")
        }
    }
}
