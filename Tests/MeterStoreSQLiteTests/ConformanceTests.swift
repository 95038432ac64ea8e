import Foundation
import MeterStoreSQLite
import Metering
import Testing
import UsageBoxApp
import UsageBoxTesting

/// The backend-neutral conformance suite, run over an in-memory and an on-disk SQLite store.
@Suite struct SQLiteConformanceTests {
    @Test(arguments: MeterStoreConformance.checks + ServerStoreConformance.checks)
    func inMemory(_ check: ConformanceCheck) async throws {
        let store = try SQLiteMeterStore(location: .newMemory())
        try await check.run(store)
    }

    @Test(arguments: MeterStoreConformance.checks + ServerStoreConformance.checks)
    func onDisk(_ check: ConformanceCheck) async throws {
        let dir = try TemporaryDirectory()
        let store = try SQLiteMeterStore(location: .file(dir.path("store.db")))
        try await check.run(store)
    }
}

/// A folder removed when the value goes away.
final class TemporaryDirectory: Sendable {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("usagebox-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}
