import HTTP
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Per-request HTTP metrics with no per-request strings or hashing: counts and latency buckets
/// live in arrays indexed by route (found among the router's few patterns), then per
/// (method, status) cell. Rendered as `jointlend_http_requests_total{method,route,status}` and
/// the histogram `jointlend_http_request_duration_seconds{route}` at scrape time.
final class RequestStats: Sendable {
    struct Cell {
        var method: HTTPMethod?
        var status: Int
        var count: UInt64
    }

    struct RouteSeries {
        var cells: [Cell] = []
        var buckets: [UInt64]
        var count: UInt64 = 0
        var sumNanoseconds: UInt64 = 0
    }

    /// Bound on (method, status) cells per route; beyond it requests are counted under the
    /// route's histogram only (cardinality stays bounded whatever clients send).
    static let cellsPerRouteMax = 64

    /// Index 0 is requests that matched no route.
    let routes: [String]
    let boundsNanoseconds: [UInt64]
    let boundsSeconds: [Double]
    /// The series split in stripes, each under its own lock: a thread records into the stripe
    /// its id hashes to, so the event loops rarely wait for each other on every request; a
    /// scrape adds the stripes up.
    private let stripes: [Stripe]
    static let stripeCount = 8

    private final class Stripe: Sendable {
        let series: Mutex<[RouteSeries]>

        init(_ series: [RouteSeries]) {
            self.series = Mutex(series)
        }
    }

    init(routePatterns: [String], bucketsSeconds: [Double]) {
        routes = ["unmatched"] + routePatterns
        boundsSeconds = bucketsSeconds
        boundsNanoseconds = bucketsSeconds.map { UInt64($0 * 1e9) }
        let empty = Array(repeating: RouteSeries(buckets: Array(repeating: 0, count: bucketsSeconds.count)), count: routePatterns.count + 1)
        stripes = (0..<Self.stripeCount).map { _ in Stripe(empty) }
    }

    /// Fibonacci hashing of the thread id: thread ids are aligned addresses, whose low bits are equal.
    private static func stripeIndex() -> Int {
        Int(truncatingIfNeeded: (UInt64(UInt(pthread_self())) &* 0x9E37_79B9_7F4A_7C15) >> 61) % stripeCount
    }

    func record(_ m: RequestMetrics) {
        var route = 0
        for i in 1..<routes.count where routes[i] == m.routePattern {
            route = i
            break
        }
        let ns = m.durationNanoseconds
        var bucket = boundsNanoseconds.count
        for (i, bound) in boundsNanoseconds.enumerated() where ns <= bound {
            bucket = i
            break
        }
        stripes[Self.stripeIndex()].series.withLock { all in
            all[route].count += 1
            all[route].sumNanoseconds &+= ns
            if bucket < all[route].buckets.count { all[route].buckets[bucket] += 1 }
            for c in all[route].cells.indices where all[route].cells[c].status == m.status && all[route].cells[c].method == m.method {
                all[route].cells[c].count += 1
                return
            }
            if all[route].cells.count < Self.cellsPerRouteMax {
                all[route].cells.append(Cell(method: m.method, status: m.status, count: 1))
            }
        }
    }

    /// All stripes added up; cells beyond `cellsPerRouteMax` per route are left out, as `record` does.
    private func merged() -> [RouteSeries] {
        var total = stripes[0].series.withLock { $0 }
        for stripe in stripes.dropFirst() {
            let part = stripe.series.withLock { $0 }
            for route in part.indices {
                total[route].count += part[route].count
                total[route].sumNanoseconds &+= part[route].sumNanoseconds
                for bucket in part[route].buckets.indices { total[route].buckets[bucket] += part[route].buckets[bucket] }
                for cell in part[route].cells {
                    if let index = total[route].cells.firstIndex(where: { $0.status == cell.status && $0.method == cell.method }) {
                        total[route].cells[index].count += cell.count
                    } else if total[route].cells.count < Self.cellsPerRouteMax {
                        total[route].cells.append(cell)
                    }
                }
            }
        }
        return total
    }

    func render() -> String {
        let snapshot = merged()
        var out = "# HELP jointlend_http_requests_total HTTP requests by method, route pattern and status.\n# TYPE jointlend_http_requests_total counter\n"
        for (r, s) in snapshot.enumerated() {
            for c in s.cells.sorted(by: { ($0.status, $0.method?.rawValue ?? "") < ($1.status, $1.method?.rawValue ?? "") }) {
                out += "jointlend_http_requests_total{method=\"\(c.method?.rawValue ?? "invalid")\",route=\"\(routes[r])\",status=\"\(c.status)\"} \(c.count)\n"
            }
        }
        out += "# HELP jointlend_http_request_duration_seconds HTTP request latency by route pattern.\n# TYPE jointlend_http_request_duration_seconds histogram\n"
        for (r, s) in snapshot.enumerated() where s.count > 0 {
            var running: UInt64 = 0
            let cumulative = boundsSeconds.indices.map { i in
                running += s.buckets[i]
                return running
            }
            out += Metrics.histogramSeries("jointlend_http_request_duration_seconds", key: "route=\"\(routes[r])\"", buckets: boundsSeconds,
                                           cumulativeCounts: cumulative, count: s.count, sum: Double(s.sumNanoseconds) / 1e9)
        }
        return out
    }
}
