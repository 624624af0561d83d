import Foundation
import HTTP
import Synchronization
import Testing
@testable import Gateway

/// Per-request HTTP metrics are recorded into per-thread stripes; a scrape must add them up to
/// exactly what was recorded, whichever threads recorded it.
@Suite struct RequestStatsTests {
    @Test func recordsFromManyThreadsAddUpInTheScrape() async {
        let stats = RequestStats(routePatterns: ["/a", "/b/{id}"], bucketsSeconds: [0.001, 0.01])
        let threadsCount = 12
        let perThread = 2_000
        let group = DispatchGroup()
        for thread in 0..<threadsCount {
            group.enter()
            Thread.detachNewThread {
                for i in 0..<perThread {
                    // /a: 200 in the first bucket; /b/{id}: 404 in the second; then unmatched, over every bucket.
                    switch i % 3 {
                    case 0: stats.record(RequestMetrics(method: .GET, routePattern: "/a", status: 200, durationNanoseconds: 500_000))
                    case 1: stats.record(RequestMetrics(method: .POST, routePattern: "/b/{id}", status: 404, durationNanoseconds: 5_000_000))
                    default: stats.record(RequestMetrics(method: nil, routePattern: "", status: 400 + thread % 2, durationNanoseconds: 50_000_000))
                    }
                }
                group.leave()
            }
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            group.notify(queue: .global()) { continuation.resume() }
        }
        let text = stats.render()
        #expect(text.contains("jointlend_http_requests_total{method=\"GET\",route=\"/a\",status=\"200\"} \(threadsCount * 667)\n"), "\(text)")
        #expect(text.contains("jointlend_http_requests_total{method=\"POST\",route=\"/b/{id}\",status=\"404\"} \(threadsCount * 667)\n"))
        #expect(text.contains("jointlend_http_requests_total{method=\"invalid\",route=\"unmatched\",status=\"400\"} \(threadsCount / 2 * 666)\n"))
        #expect(text.contains("jointlend_http_requests_total{method=\"invalid\",route=\"unmatched\",status=\"401\"} \(threadsCount / 2 * 666)\n"))
        #expect(text.contains("jointlend_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.001\"} \(threadsCount * 667)\n"))
        #expect(text.contains("jointlend_http_request_duration_seconds_bucket{route=\"/b/{id}\",le=\"0.001\"} 0\n"))
        #expect(text.contains("jointlend_http_request_duration_seconds_bucket{route=\"/b/{id}\",le=\"0.01\"} \(threadsCount * 667)\n"))
        #expect(text.contains("jointlend_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"0.01\"} 0\n"))
        #expect(text.contains("jointlend_http_request_duration_seconds_count{route=\"unmatched\"} \(threadsCount * 666)\n"))
        #expect(text.contains("jointlend_http_request_duration_seconds_sum{route=\"/a\"} \(Metrics.number(Double(threadsCount * 667 * 500_000) / 1e9))\n"))
    }

    @Test func cellsPerRouteStayBoundedAcrossStripes() async {
        let stats = RequestStats(routePatterns: ["/a"], bucketsSeconds: [1])
        let group = DispatchGroup()
        for thread in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                // Every thread brings 100 statuses of its own: far more cells than the bound.
                for status in 0..<100 {
                    stats.record(RequestMetrics(method: .GET, routePattern: "/a", status: 100 + thread * 100 + status, durationNanoseconds: 1))
                }
                group.leave()
            }
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            group.notify(queue: .global()) { continuation.resume() }
        }
        let text = stats.render()
        let cells = text.split(separator: "\n").filter { $0.hasPrefix("jointlend_http_requests_total{") }
        #expect(cells.count == RequestStats.cellsPerRouteMax)
        #expect(text.contains("jointlend_http_request_duration_seconds_count{route=\"/a\"} 800\n"))
    }
}
