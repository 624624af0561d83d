import Synchronization

/// A small Prometheus registry: counters, gauges and histograms with bounded label sets,
/// rendered in the text exposition format (0.0.4). Shaped after swift-metrics' `Counter`,
/// `Recorder` and `Timer`, so the real package could replace it without touching callers.
///
/// Label values come from closed sets (route patterns, status codes, outcome codes, partner ids
/// from configuration), never from request data, so cardinality stays bounded; as a backstop a
/// metric holds at most `seriesMax` series and drops new ones beyond it.
public final class Metrics: Sendable {
    public static let seriesMax = 2_000
    /// Latency buckets in seconds.
    public static let latencyBucketsSeconds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    public static let sizeBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

    private struct Histogram {
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0
    }

    private struct Family {
        var kind: String
        var help: String
        var buckets: [Double] = []
        var values: [String: Double] = [:]
        var histograms: [String: Histogram] = [:]
        /// Series resolved once by `counter(_:_:)`; rendered merged with `values` by key.
        var counters: [String: Counter] = [:]

        // One hash of the key per call; a full family ignores new series (bounded cardinality).
        mutating func add(_ key: String, _ amount: Double) {
            if let i = values.index(forKey: key) { values.values[i] += amount } else if values.count < Metrics.seriesMax { values[key] = amount }
        }

        mutating func assign(_ key: String, _ value: Double) {
            if let i = values.index(forKey: key) { values.values[i] = value } else if values.count < Metrics.seriesMax { values[key] = value }
        }

        mutating func record(_ key: String, _ value: Double) {
            if let i = histograms.index(forKey: key) {
                Self.add(&histograms.values[i], value, buckets)
            } else if histograms.count < Metrics.seriesMax {
                var h = Histogram(counts: Array(repeating: 0, count: buckets.count))
                Self.add(&h, value, buckets)
                histograms[key] = h
            }
        }

        static func add(_ h: inout Histogram, _ value: Double, _ buckets: [Double]) {
            for (i, upper) in buckets.enumerated() where value <= upper { h.counts[i] += 1 }
            h.sum += value
            h.count += 1
        }
    }

    private let families = Mutex<[String: Family]>([:])
    /// Gauges computed at scrape time (outbox depth, queue depth, connections).
    private let collectors = Mutex<[@Sendable () -> [(name: String, help: String, labels: String, value: Double)]]>([])
    /// Families that render themselves (e.g. the HTTP request statistics).
    private let textCollectors = Mutex<[@Sendable () -> String]>([])

    public init() {}

    public func describe(counter name: String, help: String) { define(name, "counter", help, []) }
    public func describe(gauge name: String, help: String) { define(name, "gauge", help, []) }
    public func describe(histogram name: String, help: String, buckets: [Double]) { define(name, "histogram", help, buckets) }

    private func define(_ name: String, _ kind: String, _ help: String, _ buckets: [Double]) {
        families.withLock { f in
            if f[name] == nil { f[name] = Family(kind: kind, help: help, buckets: buckets) }
        }
    }

    /// Adds to a counter (created on first use).
    public func increment(_ name: String, _ labels: [(String, String)] = [], by amount: Double = 1) {
        let key = Self.render(labels)
        families.withLock { f in
            f[name, default: Family(kind: "counter", help: name)].add(key, amount)
        }
    }

    /// The counter series `name{labels}`, resolved once so that a hot path's increment is one
    /// atomic add with no label rendering, hashing or lock. Shares the series with
    /// `increment(_:_:by:)` (their counts add up). A family already holding `seriesMax` series
    /// hands out a counter that is never rendered, as `increment` drops new series.
    public func counter(_ name: String, _ labels: [(String, String)] = []) -> Counter {
        let key = Self.render(labels)
        return families.withLock { f in
            var family = f[name] ?? Family(kind: "counter", help: name)
            defer { f[name] = family }
            if let existing = family.counters[key] { return existing }
            let counter = Counter()
            let series = family.values.count + family.counters.keys.count(where: { family.values[$0] == nil })
            if family.values[key] != nil || series < Metrics.seriesMax { family.counters[key] = counter }
            return counter
        }
    }

    public func set(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        let key = Self.render(labels)
        families.withLock { f in
            f[name, default: Family(kind: "gauge", help: name)].assign(key, value)
        }
    }

    /// Records one observation in a histogram described with `describe(histogram:)`.
    public func observe(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        let key = Self.render(labels)
        families.withLock { f in
            guard f[name]?.kind == "histogram" else { return }
            f[name]!.record(key, value)
        }
    }

    /// Registers a function that renders whole families (HELP, TYPE and samples) at every scrape.
    public func collectText(_ collector: @escaping @Sendable () -> String) {
        textCollectors.withLock { $0.append(collector) }
    }

    /// Registers a histogram counted elsewhere (the store's stage durations, which its own
    /// threads count under their own locks), sampled at every scrape: the counts at or below
    /// each bucket bound, the number of observations and their sum.
    public func collectHistogram(_ name: String, help: String, buckets: [Double],
                                 _ sample: @escaping @Sendable () -> (cumulativeCounts: [UInt64], count: UInt64, sum: Double)) {
        collectText {
            let s = sample()
            return "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
                + Self.histogramSeries(name, key: "", buckets: buckets, cumulativeCounts: s.cumulativeCounts, count: s.count, sum: s.sum)
        }
    }

    /// One histogram series: a `_bucket` line per bound (counts cumulative), +Inf, `_sum`, `_count`.
    static func histogramSeries(_ name: String, key: String, buckets: [Double], cumulativeCounts: [UInt64], count: UInt64, sum: Double) -> String {
        var out = ""
        let sep = key.isEmpty ? "" : ","
        for (upper, counted) in zip(buckets, cumulativeCounts) {
            out += "\(name)_bucket{\(key)\(sep)le=\"\(number(upper))\"} \(counted)\n"
        }
        out += "\(name)_bucket{\(key)\(sep)le=\"+Inf\"} \(count)\n"
        out += "\(name)_sum\(key.isEmpty ? "" : "{\(key)}") \(number(sum))\n"
        out += "\(name)_count\(key.isEmpty ? "" : "{\(key)}") \(count)\n"
        return out
    }

    /// Registers a function sampled at every scrape.
    public func collect(_ collector: @escaping @Sendable () -> [(name: String, help: String, labels: String, value: Double)]) {
        collectors.withLock { $0.append(collector) }
    }

    /// The whole registry in Prometheus text format.
    public func render() -> String {
        var out = ""
        let snapshot = families.withLock { $0 }
        for name in snapshot.keys.sorted() {
            let family = snapshot[name]!
            out += "# HELP \(name) \(family.help)\n# TYPE \(name) \(family.kind)\n"
            if family.kind == "histogram" {
                for key in family.histograms.keys.sorted() {
                    let h = family.histograms[key]!
                    out += Self.histogramSeries(name, key: key, buckets: family.buckets, cumulativeCounts: h.counts, count: h.count, sum: h.sum)
                }
            } else {
                // A resolved counter appears once it has counted, as a series made by `increment` does.
                var merged = family.values
                for (key, counter) in family.counters {
                    let count = counter.value
                    if count > 0 || merged[key] != nil { merged[key, default: 0] += Double(count) }
                }
                for key in merged.keys.sorted() {
                    out += "\(name)\(key.isEmpty ? "" : "{\(key)}") \(Self.number(merged[key]!))\n"
                }
            }
        }
        for collector in textCollectors.withLock({ $0 }) { out += collector() }
        var described = Set<String>()
        for collector in collectors.withLock({ $0 }) {
            for sample in collector() {
                if described.insert(sample.name).inserted { out += "# HELP \(sample.name) \(sample.help)\n# TYPE \(sample.name) gauge\n" }
                out += "\(sample.name)\(sample.labels.isEmpty ? "" : "{\(sample.labels)}") \(Self.number(sample.value))\n"
            }
        }
        return out
    }

    /// `a="x",b="y"` with values escaped per the exposition format.
    public static func render(_ labels: [(String, String)]) -> String {
        // Fast path: label values from closed sets rarely need escaping.
        if labels.allSatisfy({ !$0.1.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) }) {
            var out = ""
            for (i, (name, value)) in labels.enumerated() {
                if i > 0 { out += "," }
                out += name + "=\"" + value + "\""
            }
            return out
        }
        return labels.map { name, value in
            var v = ""
            for c in value.unicodeScalars {
                switch c {
                case "\\": v += "\\\\"
                case "\"": v += "\\\""
                case "\n": v += "\\n"
                default: v.unicodeScalars.append(c)
                }
            }
            return "\(name)=\"\(v)\""
        }.joined(separator: ",")
    }

    static func number(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }
}

/// One counter series of a `Metrics` registry (swift-metrics' `Counter` shape), from
/// `Metrics.counter(_:_:)`. Whole counts only: what the hot paths count are events.
public final class Counter: Sendable {
    private let count = Atomic<UInt64>(0)

    init() {}

    public func increment(by amount: UInt64 = 1) {
        count.wrappingAdd(amount, ordering: .relaxed)
    }

    /// The count so far.
    public var value: UInt64 { count.load(ordering: .relaxed) }
}
