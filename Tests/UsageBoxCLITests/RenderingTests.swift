import Metering
import Testing
import UsageBoxApp

@Suite struct RenderingTests {
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
