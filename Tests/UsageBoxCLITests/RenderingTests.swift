import Metering
import Testing
import UsageBoxApp

@Suite struct RenderingTests {
    /// The table said "use --json for all" when --json lists only the ingest's first errors.
    @Test func moreErrorsThanListedAreCountedAndSaidSo() {
        var r = IngestResponse()
        r.rejected = 10_005
        r.errors = (0..<10_000).map { IngestResponse.Problem(index: $0, eventID: nil, status: .rejected, code: "invalid_quantity", message: "x") }
        let text = Rendering.ingest(r)
        #expect(text.contains("… 9955 more (--json lists the first 10000)"), "\(text.suffix(200))")
        r.rejected = 60
        r.errors.removeLast(10_000 - 60)
        #expect(Rendering.ingest(r).contains("… 10 more (use --json for all)"))
    }

    @Test func everyRowShowsItsOwnAverage() {
        let r = UsageResult(
            source: "rollup", groupBy: [.modelID], metrics: [.sum, .avg],
            groups: [
                UsageGroup(keys: ["a"], aggregate: UsageAggregate(sum: 10, count: 4, min: 1, max: 5)),
                UsageGroup(keys: ["b"], aggregate: UsageAggregate(sum: 9, count: 3, min: 3, max: 3)),
            ])
        let lines = Rendering.usage(r).split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("a") && $0.hasSuffix("2.5") })
        #expect(lines.contains { $0.hasPrefix("b") && $0.hasSuffix("3") }, "the second row is not the first row's average")
    }
}
