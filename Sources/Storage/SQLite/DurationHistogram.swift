/// How long each of a stage's runs took, counted by upper bound: the writer's batches and the
/// WAL fsyncs. Means hide what an operator chasing a latency spike needs (one 400 ms fsync
/// among thousands of 0.3 ms ones); these show it. Recorded under the owner's lock, once per
/// batch or fsync; the gateway renders them as Prometheus histograms.
public struct DurationHistogram: Sendable, Equatable {
    /// Upper bounds in seconds (Prometheus `le`); one more bucket, +Inf, holds the rest.
    public static let boundsSeconds: [Double] = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
    private static let boundsNanoseconds: [UInt64] = boundsSeconds.map { UInt64(($0 * 1e9).rounded()) }

    /// Runs per bucket, not cumulative: bucket i holds those longer than bound i−1 and at most
    /// bound i; the last holds those longer than every bound.
    public private(set) var counts = [UInt64](repeating: 0, count: DurationHistogram.boundsSeconds.count + 1)
    public private(set) var sumNanoseconds: UInt64 = 0

    public init() {}

    public var count: UInt64 { counts.reduce(0, &+) }

    /// Counts at or below each bound, then the total: what Prometheus `_bucket` lines carry.
    public var cumulativeCounts: [UInt64] {
        var running: UInt64 = 0
        return counts.map { count in
            running &+= count
            return running
        }
    }

    public mutating func record(nanoseconds: UInt64) {
        var bucket = 0
        while bucket < Self.boundsNanoseconds.count && nanoseconds > Self.boundsNanoseconds[bucket] { bucket += 1 }
        counts[bucket] &+= 1
        sumNanoseconds &+= nanoseconds
    }
}
