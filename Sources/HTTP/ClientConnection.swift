import CPosix
#if canImport(Glibc)
import Glibc
#endif

/// One outbound keep-alive connection. `@unchecked Sendable`: the pool hands it to exactly
/// one exchange at a time, so it is never used by two threads at once.
final class ClientConnection: @unchecked Sendable {
    private let transport: any HTTPTransport
    var lastUsedNanoseconds: UInt64 = MonotonicClock.nanoseconds()
    private var buffer: [UInt8] = []

    init(transport: any HTTPTransport) {
        self.transport = transport
    }

    /// A pooled connection that is readable has been closed by the peer (or sent junk): unusable.
    func isStale() -> Bool {
        var revents: Int16 = 0
        return CPosix_poll_one(transport.fileDescriptor, Int16(POLLIN), 0, &revents) != 0
    }

    func close() { transport.close() }

    func writeAll(_ bytes: [UInt8], deadline: UInt64) throws(HTTPClientError) {
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { raw in transport.write(UnsafeRawBufferPointer(rebasing: raw[offset...])) }
            switch result {
            case let .bytes(count): offset += count
            case let .wouldBlock(interest): try Self.wait(transport.fileDescriptor, for: interest, deadline: deadline)
            case .closed: throw .connectionClosed
            case let .failed(code): throw .connectionFailed(errno: code)
            }
        }
    }

    func readResponse(_ parser: HTTPResponseParser, deadline: UInt64) throws(HTTPClientError) -> HTTPResponseParser.Parsed {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        var peerClosed = false
        while true {
            if let (parsed, consumed) = try parser.parse(buffer, peerClosed: peerClosed) {
                buffer.removeFirst(consumed)
                // Bytes beyond the response mean the peer is out of step: never reuse then.
                return buffer.isEmpty ? parsed : HTTPResponseParser.Parsed(
                    status: parsed.status, headers: parsed.headers, body: parsed.body, reusable: false)
            }
            let result = chunk.withUnsafeMutableBytes { transport.read(into: $0) }
            switch result {
            case let .bytes(count): buffer.append(contentsOf: chunk[0..<count])
            case let .wouldBlock(interest): try Self.wait(transport.fileDescriptor, for: interest, deadline: deadline)
            case .closed:
                if buffer.isEmpty { throw .connectionClosed }
                peerClosed = true
            case let .failed(code): throw .connectionFailed(errno: code)
            }
        }
    }

    /// Waits until `fd` is ready for `interest`, or throws `.timeout` at `deadline`.
    static func wait(_ fd: Int32, for interest: TransportInterest, deadline: UInt64) throws(HTTPClientError) {
        while true {
            let now = MonotonicClock.nanoseconds()
            guard now < deadline else { throw .timeout }
            let remainingMilliseconds = Int32(min(UInt64(Int32.max), (deadline - now + 999_999) / 1_000_000))
            var revents: Int16 = 0
            let events = Int16(interest == .read ? POLLIN : POLLOUT)
            let ready = CPosix_poll_one(fd, events, remainingMilliseconds, &revents)
            if ready > 0 { return }
            if ready < 0 { throw .connectionFailed(errno: errno) }
        }
    }
}
