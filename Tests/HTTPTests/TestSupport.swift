import Dispatch
import Synchronization
@testable import HTTP
#if canImport(Glibc)
import Glibc
#endif

/// Deterministic random numbers for property tests (SplitMix64); the seed is printed on failure.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476C_E5E9_B7D9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Log lines collected in memory (and kept off the test output).
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])
    var logger: Logger { Logger(label: "test", sink: Logger.Sink { [self] line in lines.withLock { $0.append(line) } }) }
    var all: [String] { lines.withLock { $0 } }
}

let silentLogger = Logger(label: "test", sink: Logger.Sink { _ in })

func testConfiguration() -> HTTPServer.Configuration {
    var configuration = HTTPServer.Configuration()
    configuration.port = 0
    configuration.eventLoopCount = 2
    configuration.shutdownGraceMilliseconds = 2_000
    return configuration
}

/// Starts a server on a free loopback port; the caller shuts it down.
func startServer(
    _ configuration: HTTPServer.Configuration = testConfiguration(), logger: Logger = silentLogger,
    observer: (@Sendable (RequestMetrics) -> Void)? = nil, routes: (inout Router) -> Void
) throws -> HTTPServer {
    var router = Router()
    routes(&router)
    let server = HTTPServer(configuration: configuration, responder: try router.freeze(), logger: logger, observer: observer)
    try server.start()
    return server
}

/// Runs the blocking `shutdown` off the cooperative pool.
func shutdownAsync(_ server: HTTPServer, graceMilliseconds: Int? = nil) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        DispatchQueue.global().async {
            server.shutdown(graceMilliseconds: graceMilliseconds)
            continuation.resume()
        }
    }
}

func nowMilliseconds() -> UInt64 { MonotonicClock.nanoseconds() / 1_000_000 }

/// A blocking loopback client that writes raw bytes, for exercising the server byte for byte.
final class RawClient: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var peerClosed = false

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 {
            Glibc.close(fd)
            throw RawClientError.connectFailed(errno)
        }
    }

    deinit { Glibc.close(fd) }

    enum RawClientError: Error { case connectFailed(Int32) }

    /// Returns false when the peer has gone (EPIPE/ECONNRESET).
    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { return false }
            offset += count
        }
        return true
    }

    /// Reads whatever arrives within `milliseconds`; sets `peerClosed` on EOF or reset.
    func pump(milliseconds: Int32) {
        var pollfd = Glibc.pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pollfd, 1, milliseconds) > 0 else { return }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 {
            peerClosed = true
        } else {
            buffer.append(contentsOf: chunk[0..<count])
        }
    }

    /// Bytes received and not yet parsed.
    func peek() -> [UInt8] { buffer }

    /// The next `count` responses, reading for at most `milliseconds` in all.
    func responses(_ count: Int, requestWasHead: Bool = false, milliseconds: UInt64 = 5_000) throws -> [HTTPResponseParser.Parsed] {
        let parser = HTTPResponseParser(limits: .init(headerBytesMax: 65536, bodyBytesMax: 1 << 22), requestWasHead: requestWasHead)
        var parsed: [HTTPResponseParser.Parsed] = []
        let deadline = nowMilliseconds() + milliseconds
        while parsed.count < count && nowMilliseconds() < deadline {
            if let (response, consumed) = try parser.parse(buffer, peerClosed: false) {
                parsed.append(response)
                buffer.removeFirst(consumed)
                continue
            }
            if peerClosed { break }
            pump(milliseconds: 50)
        }
        return parsed
    }

    /// Waits up to `milliseconds` for EOF; returns whether the peer closed.
    func waitForClose(milliseconds: UInt64) -> Bool {
        let deadline = nowMilliseconds() + milliseconds
        while !peerClosed && nowMilliseconds() < deadline { pump(milliseconds: 20) }
        return peerClosed
    }
}

extension HTTPResponseParser.Parsed {
    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// Runs blocking socket code on a dispatch thread: blocking the few cooperative threads would
/// starve the async handlers the test waits for.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try body() })
        }
    }
}
