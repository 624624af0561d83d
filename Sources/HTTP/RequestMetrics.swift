/// One finished request, reported to the server's observer (for Prometheus histograms).
public struct RequestMetrics: Sendable {
    /// `nil` for a request refused before its method was known (a parse error).
    public let method: HTTPMethod?
    /// The matched route pattern, or `""` when none matched (404/405/parse errors), so label
    /// cardinality stays bounded.
    public let routePattern: String
    public let status: Int
    /// From the complete request to its response being queued for writing.
    public let durationNanoseconds: UInt64

    public init(method: HTTPMethod?, routePattern: String, status: Int, durationNanoseconds: UInt64) {
        self.method = method
        self.routePattern = routePattern
        self.status = status
        self.durationNanoseconds = durationNanoseconds
    }
}
