#if canImport(Glibc)
import Glibc
#endif

extension HTTPServer {
    /// Every limit and timeout of the server, with defaults. Timeouts are in milliseconds.
    public struct Configuration: Sendable, Equatable {
        /// IPv4 address to listen on.
        public var host: String = "127.0.0.1"
        /// TCP port; 0 picks a free one (read it back from `HTTPServer.port`).
        public var port: Int = 8080
        /// Event loop threads, each with its own `SO_REUSEPORT` listener. Default: one per core.
        public var eventLoopCount: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        public var listenBacklog: Int = 1024

        /// Request line bytes, CRLF excluded (414).
        public var requestLineBytesMax: Int = 8 * 1024
        /// Header section bytes (431).
        public var headerBytesMax: Int = 16 * 1024
        /// Header fields per request (431).
        public var headerCountMax: Int = 100
        /// Request body bytes (413).
        public var bodyBytesMax: Int = 1024 * 1024
        /// Open connections across all loops; above it a connection gets a 503 and is closed.
        public var connectionsMax: Int = 20_000
        /// Requests read ahead on one connection while earlier responses are pending.
        public var pipelinedRequestsMax: Int = 16
        /// Unsent response bytes on one connection above which reading pauses.
        public var writeBufferBytesMax: Int = 4 * 1024 * 1024
        /// Unsent response bytes across all connections above which every connection that holds
        /// some stops reading until its own drain: slow readers cannot add up to more memory
        /// than this (plus one response each). A connection whose client reads its answers is
        /// never held back by others.
        public var outputBacklogBytesMax: Int = 64 * 1024 * 1024

        /// From a request's first byte to the end of its head: a slowloris bound. Also bounds a
        /// new connection that sends nothing.
        public var headerReadTimeoutMilliseconds: Int = 10_000
        /// From the end of the head to the end of the body.
        public var bodyReadTimeoutMilliseconds: Int = 30_000
        /// A keep-alive connection with nothing in flight is closed after this.
        public var idleTimeoutMilliseconds: Int = 60_000
        /// A connection whose pending output makes no progress for this long is closed.
        public var writeTimeoutMilliseconds: Int = 30_000
        /// An async handler that has not answered after this long has its connection closed.
        public var handlerTimeoutMilliseconds: Int = 30_000
        /// After a final response, how long unread client bytes are drained before closing
        /// (so the client sees the response instead of a reset).
        public var closeLingerMilliseconds: Int = 1_000
        /// How long `shutdown()` lets in-flight requests finish before closing everything.
        public var shutdownGraceMilliseconds: Int = 10_000

        public init() {}

        var parserLimits: HTTPRequestParser.Limits {
            HTTPRequestParser.Limits(
                requestLineBytesMax: requestLineBytesMax, headerBytesMax: headerBytesMax,
                headerCountMax: headerCountMax, bodyBytesMax: bodyBytesMax)
        }

        /// How often loops look for expired deadlines: a quarter of the shortest timeout.
        var tickMilliseconds: Int {
            let shortest = [
                headerReadTimeoutMilliseconds, bodyReadTimeoutMilliseconds, idleTimeoutMilliseconds,
                writeTimeoutMilliseconds, closeLingerMilliseconds, handlerTimeoutMilliseconds,
            ].min() ?? 1_000
            return min(250, max(5, shortest / 4))
        }

        /// The first invalid field, named.
        func validate() throws(HTTPServerError) {
            let positive: [(String, Int)] = [
                ("eventLoopCount", eventLoopCount), ("listenBacklog", listenBacklog),
                ("requestLineBytesMax", requestLineBytesMax), ("headerBytesMax", headerBytesMax),
                ("headerCountMax", headerCountMax), ("connectionsMax", connectionsMax),
                ("pipelinedRequestsMax", pipelinedRequestsMax), ("writeBufferBytesMax", writeBufferBytesMax),
                ("outputBacklogBytesMax", outputBacklogBytesMax),
                ("headerReadTimeoutMilliseconds", headerReadTimeoutMilliseconds),
                ("bodyReadTimeoutMilliseconds", bodyReadTimeoutMilliseconds),
                ("idleTimeoutMilliseconds", idleTimeoutMilliseconds),
                ("writeTimeoutMilliseconds", writeTimeoutMilliseconds),
                ("closeLingerMilliseconds", closeLingerMilliseconds),
                ("handlerTimeoutMilliseconds", handlerTimeoutMilliseconds),
            ]
            for (name, value) in positive where value <= 0 {
                throw .invalidConfiguration(field: name, reason: "must be positive")
            }
            if bodyBytesMax < 0 { throw .invalidConfiguration(field: "bodyBytesMax", reason: "must not be negative") }
            if shutdownGraceMilliseconds < 0 {
                throw .invalidConfiguration(field: "shutdownGraceMilliseconds", reason: "must not be negative")
            }
            if !(0...65535).contains(port) { throw .invalidConfiguration(field: "port", reason: "must be 0...65535") }
        }
    }
}

/// Why the server could not start.
public enum HTTPServerError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidConfiguration(field: String, reason: String)
    /// A system call failed: its name and errno.
    case system(call: String, errno: Int32)
    case alreadyStarted

    public var description: String {
        switch self {
        case let .invalidConfiguration(field, reason): "configuration \(field): \(reason)"
        case let .system(call, code): "\(call) failed: \(String(cString: strerror(code)))"
        case .alreadyStarted: "server already started"
        }
    }
}
