import Testing
@testable import Gateway
import Storage

@Suite struct CollectedHistogramTests {
    /// A histogram the store counts itself renders exactly as the same durations observed
    /// through the registry would: one renderer, bucket for bucket, sum and count.
    @Test func collectedHistogramRendersLikeAnObservedOne() {
        let observed = Metrics()
        observed.describe(histogram: "d_seconds", help: "D.", buckets: DurationHistogram.boundsSeconds)
        let collected = Metrics()
        var durations = DurationHistogram()
        for nanoseconds: UInt64 in [250_000_000, 500_000_000, 3_000_000_000, 1_000_000] {
            observed.observe("d_seconds", [], Double(nanoseconds) / 1e9)
            durations.record(nanoseconds: nanoseconds)
        }
        let counted = durations
        collected.collectHistogram("d_seconds", help: "D.", buckets: DurationHistogram.boundsSeconds) {
            (counted.cumulativeCounts, counted.count, Double(counted.sumNanoseconds) / 1e9)
        }
        let text = collected.render()
        #expect(text == observed.render())
        #expect(text.contains("d_seconds_bucket{le=\"0.25\"} 2\n"))
        #expect(text.contains("d_seconds_bucket{le=\"2.5\"} 3\n"))
        #expect(text.contains("d_seconds_bucket{le=\"+Inf\"} 4\n"))
        #expect(text.contains("d_seconds_sum 3.751\n"))
    }
}
