/// A parsed HTTP request with its whole body.
///
/// `path` is the raw (still percent-encoded) path of the origin-form target and `query` the raw
/// text after `?`; route parameters are matched on raw segments.
public struct Request: Sendable {
    public var method: HTTPMethod
    public var path: String
    public var query: String?
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Whether the client allows the connection to stay open after this request.
    public var keepAlive: Bool

    public init(
        method: HTTPMethod, path: String, query: String? = nil, version: HTTPVersion = .http1_1,
        headers: HTTPHeaders = [:], body: [UInt8] = [], keepAlive: Bool = true
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }

    /// The raw request target: path and query.
    public var target: String { query.map { path + "?" + $0 } ?? path }
}
