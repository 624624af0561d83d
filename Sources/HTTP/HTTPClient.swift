import CPosix
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A client for outbound partner calls: pooled keep-alive connections per host, bounded
/// concurrency per host, millisecond connect and total timeouts.
///
/// Each exchange runs blocking-with-`poll()` on a dispatch queue, every wait bounded by the
/// request's deadline, so nothing can hang: waiting for a free connection slot, connecting,
/// writing and reading all count against `timeoutMilliseconds`. (Name resolution of non-numeric
/// hosts goes through getaddrinfo and is not bounded; configure partners by IP or keep DNS local.)
public final class HTTPClient: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Bound on establishing one TCP connection.
        public var connectTimeoutMilliseconds: Int = 1_000
        /// Exchanges in flight per host:port; more callers wait (within their timeout).
        public var connectionsPerHostMax: Int = 8
        /// Keep-alive connections kept per host:port.
        public var idleConnectionsPerHostMax: Int = 8
        /// A pooled connection unused for this long is closed instead of reused.
        public var idleTimeoutMilliseconds: Int = 30_000
        public var responseHeaderBytesMax: Int = 64 * 1024
        public var responseBodyBytesMax: Int = 4 * 1024 * 1024
        /// Callers waiting for a slot per host:port; beyond it calls fail at once with `timeout`.
        public var waitersPerHostMax: Int = 1_024
        /// Threads that run blocking exchanges (started on demand): the bound on exchanges in
        /// progress across all hosts.
        public var exchangeThreadsMax: Int = 64

        public init() {}
    }

    public struct Request: Sendable {
        public var method: HTTPMethod
        /// IPv4 address or host name.
        public var host: String
        public var port: Int
        /// Origin-form target: path and optional query.
        public var target: String
        /// `Host` and `Content-Length` are set by the client.
        public var headers: HTTPHeaders
        public var body: [UInt8]

        public init(method: HTTPMethod, host: String, port: Int, target: String, headers: HTTPHeaders = [:], body: [UInt8] = []) {
            self.method = method
            self.host = host
            self.port = port
            self.target = target
            self.headers = headers
            self.body = body
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: [UInt8]
    }

    public let configuration: Configuration
    private let transportFactory: any HTTPTransportFactory
    private let pools = Mutex<[String: HostPool]>([:])
    private let isShutDown = Atomic<Bool>(false)
    private let exchangeThreads: ExchangeThreads

    public init(configuration: Configuration = Configuration(), transport: any HTTPTransportFactory = PlainTCPTransportFactory()) {
        self.configuration = configuration
        self.transportFactory = transport
        exchangeThreads = ExchangeThreads(threadsMax: configuration.exchangeThreadsMax, name: "http-client")
    }

    deinit { exchangeThreads.stop() }

    /// Connections opened so far (pool reuse shows as a count that stops growing).
    public var connectionsOpened: Int { opened.load(ordering: .relaxed) }
    private let opened = Atomic<Int>(0)

    /// Sends `request` and returns the whole response, or throws within `timeoutMilliseconds`.
    public func execute(_ request: Request, timeoutMilliseconds: Int) async throws(HTTPClientError) -> Response {
        try Self.validate(request, timeoutMilliseconds: timeoutMilliseconds)
        if isShutDown.load(ordering: .relaxed) { throw .shutdown }
        let deadline = MonotonicClock.nanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        let pool = pool(for: request.host, port: request.port)
        let leased = try await pool.acquire(deadline: deadline).get()
        let result: Result<(Response, ClientConnection?), HTTPClientError> = await withCheckedContinuation { continuation in
            exchangeThreads.submit { [self] in
                continuation.resume(returning: Result { () throws(HTTPClientError) in
                    try exchange(request, on: leased, deadline: deadline)
                })
            }
        }
        switch result {
        case let .success((response, reusable)):
            pool.release(reusable)
            return response
        case let .failure(error):
            pool.release(nil)
            throw error
        }
    }

    /// Closes pooled connections; later calls fail with `.shutdown`.
    public func shutdown() {
        isShutDown.store(true, ordering: .relaxed)
        let all = pools.withLock { pools in
            let all = Array(pools.values)
            pools.removeAll()
            return all
        }
        for pool in all { pool.closeIdle() }
    }

    private func pool(for host: String, port: Int) -> HostPool {
        pools.withLock { pools in
            let key = "\(host):\(port)"
            if let pool = pools[key] { return pool }
            let pool = HostPool(configuration: configuration)
            pools[key] = pool
            return pool
        }
    }

    private static func validate(_ request: Request, timeoutMilliseconds: Int) throws(HTTPClientError) {
        func clean(_ text: String) -> Bool { !text.utf8.contains { $0 < 0x20 || $0 == 0x7F } }
        guard timeoutMilliseconds > 0 else { throw .invalidRequest(field: "timeoutMilliseconds", reason: "must be positive") }
        guard !request.host.isEmpty, clean(request.host), !request.host.contains(" ") else {
            throw .invalidRequest(field: "host", reason: "empty or contains control characters")
        }
        guard (1...65535).contains(request.port) else { throw .invalidRequest(field: "port", reason: "must be 1...65535") }
        guard request.target.hasPrefix("/"), clean(request.target), !request.target.contains(" ") else {
            throw .invalidRequest(field: "target", reason: "must be an origin-form path without spaces")
        }
        for field in request.headers {
            guard !field.name.isEmpty, field.name.utf8.allSatisfy(HTTPRequestParser.isTokenByte) else {
                throw .invalidRequest(field: "headers", reason: "bad header name")
            }
            guard field.value.utf8.allSatisfy(HTTPRequestParser.isFieldValueByte) else {
                throw .invalidRequest(field: field.name, reason: "header value contains a control character")
            }
        }
    }

    // MARK: Blocking exchange (on `queue`)

    private func exchange(
        _ request: Request, on leased: ClientConnection?, deadline: UInt64
    ) throws(HTTPClientError) -> (Response, ClientConnection?) {
        var connection = leased
        if let existing = connection, existing.isStale() {
            existing.close()
            connection = nil
        }
        if connection == nil { connection = try connect(request.host, port: request.port, deadline: deadline) }
        guard let connection else { throw .connectionClosed }
        do {
            try connection.writeAll(Self.serialize(request), deadline: deadline)
            let parser = HTTPResponseParser(
                limits: .init(headerBytesMax: configuration.responseHeaderBytesMax, bodyBytesMax: configuration.responseBodyBytesMax),
                requestWasHead: request.method == .HEAD)
            let parsed = try connection.readResponse(parser, deadline: deadline)
            let response = Response(status: parsed.status, headers: parsed.headers, body: parsed.body)
            if parsed.reusable {
                connection.lastUsedNanoseconds = MonotonicClock.nanoseconds()
                return (response, connection)
            }
            connection.close()
            return (response, nil)
        } catch {
            connection.close()
            throw error
        }
    }

    private func connect(_ host: String, port: Int, deadline: UInt64) throws(HTTPClientError) -> ClientConnection {
        var address = [CChar](repeating: 0, count: 16)
        guard CPosix_resolve_ipv4(host, &address, 16) == 0 else { throw .unresolvableHost(host) }
        let fd = CPosix_tcp_connect_start(address, UInt16(port))
        guard fd >= 0 else { throw .connectionFailed(errno: errno) }
        let connectDeadline = min(deadline, MonotonicClock.nanoseconds() + UInt64(configuration.connectTimeoutMilliseconds) * 1_000_000)
        do {
            try ClientConnection.wait(fd, for: .write, deadline: connectDeadline)
        } catch {
            Glibc.close(fd)
            throw connectDeadline < deadline ? .connectTimeout : .timeout
        }
        let failure = CPosix_socket_error(fd)
        guard failure == 0 else {
            Glibc.close(fd)
            throw .connectionFailed(errno: failure)
        }
        _ = CPosix_set_nodelay(fd)
        let transport: any HTTPTransport
        do {
            transport = try transportFactory.clientTransport(connectedSocket: fd, host: host)
        } catch {
            Glibc.close(fd)
            throw .connectionFailed(errno: 0)
        }
        opened.add(1, ordering: .relaxed)
        return ClientConnection(transport: transport)
    }

    static func serialize(_ request: Request) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + request.body.count)
        out.append(contentsOf: "\(request.method.rawValue) \(request.target) HTTP/1.1\r\nHost: \(request.host):\(request.port)\r\n".utf8)
        if !request.body.isEmpty || request.method == .POST || request.method == .PUT || request.method == .PATCH {
            out.append(contentsOf: "Content-Length: \(request.body.count)\r\n".utf8)
        }
        for field in request.headers {
            if HTTPHeaders.namesEqual(field.name, "Host") || HTTPHeaders.namesEqual(field.name, "Content-Length")
                || HTTPHeaders.namesEqual(field.name, "Transfer-Encoding")
            {
                continue
            }
            out.append(contentsOf: "\(field.name): \(field.value)\r\n".utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
        out.append(contentsOf: request.body)
        return out
    }
}
