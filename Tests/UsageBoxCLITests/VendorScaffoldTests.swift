import Foundation
import Metering
import Testing
import UsageBoxApp

/// `usagebox vendors scaffold` on a throwaway copy of the registry (scripts/scaffold-check builds
/// the result): names as said or refused, no shipped plugin or card replaced, the registry kept
/// in order.
@Suite struct VendorScaffoldTests {
    /// A checkout's bones: Package.swift, the real registry, RateCards/ and the plugin folders.
    func checkout() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("scaffold-\(UUID().uuidString)")
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let fm = FileManager.default
        for dir in ["Sources/ReconPlugins", "RateCards", "Plugins/OpenAI", "Plugins/FOCUS"] {
            try fm.createDirectory(at: root.appendingPathComponent(dir), withIntermediateDirectories: true)
        }
        try "// package".write(to: root.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)
        try fm.copyItem(
            at: repo.appendingPathComponent("Sources/ReconPlugins/BuiltInPlugins.swift"),
            to: root.appendingPathComponent("Sources/ReconPlugins/BuiltInPlugins.swift"))
        try "vendor: foo\n".write(to: root.appendingPathComponent("RateCards/foo.yaml"), atomically: true, encoding: .utf8)
        return root
    }

    @Test func theRegistryStaysInOrder() throws {
        let root = try checkout()
        defer { try? FileManager.default.removeItem(at: root) }
        _ = try VendorScaffold.run(name: "Acme", packageRoot: root.path)
        _ = try VendorScaffold.run(name: "Zeta", packageRoot: root.path)
        // "AI" was refused as registered: AIPlugin.self is inside OpenAIPlugin.self.
        _ = try VendorScaffold.run(name: "AI", packageRoot: root.path)
        let text = try String(contentsOf: root.appendingPathComponent("Sources/ReconPlugins/BuiltInPlugins.swift"), encoding: .utf8)
        let imports = text.split(separator: "\n").filter { $0.hasPrefix("import Vendor") }.map(String.init)
        #expect(imports == imports.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }, "\(imports)")
        #expect(imports.contains("import VendorAcme") && imports.contains("import VendorZeta") && imports.contains("import VendorAI"))
        let list = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasSuffix("Plugin.self,") }
        #expect(list.first == "AcmePlugin.self," && list.dropFirst().first == "AIPlugin.self," && list.last == "ZetaPlugin.self,", "\(list)")
        // One scaffolded a moment ago is in no binary yet: its id is read from its file.
        _ = try VendorScaffold.run(name: "Hb", packageRoot: root.path)
        _ = try VendorScaffold.run(name: "Ha", packageRoot: root.path)
        let after = try String(contentsOf: root.appendingPathComponent("Sources/ReconPlugins/BuiltInPlugins.swift"), encoding: .utf8)
        let order = after.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasSuffix("Plugin.self,") }
        #expect((order.firstIndex(of: "HaPlugin.self,") ?? 99) < (order.firstIndex(of: "HbPlugin.self,") ?? 0), "\(order)")
        // Its README has the sections every plugin's has (Plugins/README.md), and its parser keeps
        // a token row naming no model as usage (tester Z2: it was marked not usage).
        let readme = try String(contentsOf: root.appendingPathComponent("Plugins/Acme/README.md"), encoding: .utf8)
        #expect(readme.contains("## What its samples cover") && readme.contains("## What it does not read yet"))
        let parser = try String(contentsOf: root.appendingPathComponent("Plugins/Acme/AcmePlugin.swift"), encoding: .utf8)
        #expect(parser.contains(#"row.cell("model") == nil && tokenType == nil ? "not_usage:other" : nil"#))
    }

    /// A registry whose list the scaffold cannot find names the file to edit by hand, and writes nothing.
    @Test func aRegistryItCannotReadIsNamed() throws {
        let root = try checkout()
        defer { try? FileManager.default.removeItem(at: root) }
        try "// emptied\n".write(to: root.appendingPathComponent("Sources/ReconPlugins/BuiltInPlugins.swift"), atomically: true, encoding: .utf8)
        let e = #expect(throws: UsageBoxError.self) { try VendorScaffold.run(name: "Acme", packageRoot: root.path) }
        #expect(
            e?.message.contains("Sources/ReconPlugins/BuiltInPlugins.swift") == true && e?.message.contains("nothing was written") == true,
            "\(String(describing: e))")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("Plugins/Acme").path))
    }

    @Test(arguments: ["Openai", "focus", "Ubl", "Foo", "../evil", "my-vendor", "ßeta", "Acme½", "9lives", "Plugin", "vendor"])
    func aNameThatWouldReplaceOrMangleIsRefused(_ name: String) throws {
        let root = try checkout()
        defer { try? FileManager.default.removeItem(at: root) }
        let registry = root.appendingPathComponent("Sources/ReconPlugins/BuiltInPlugins.swift")
        let before = try String(contentsOf: registry, encoding: .utf8)
        #expect(throws: UsageBoxError.self) { _ = try VendorScaffold.run(name: name, packageRoot: root.path) }
        #expect(try String(contentsOf: registry, encoding: .utf8) == before)
        #expect(try String(contentsOf: root.appendingPathComponent("RateCards/foo.yaml"), encoding: .utf8) == "vendor: foo\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("Plugins").path).sorted() == ["FOCUS", "OpenAI"])
    }
}
