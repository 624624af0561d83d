import CPosix
#if canImport(Glibc)
import Glibc
#endif

/// Plain TCP over a non-blocking socket. Owns the descriptor: `close()` releases it.
public final class PlainTCPTransport: HTTPTransport {
    public private(set) var fileDescriptor: Int32

    public init(fileDescriptor: Int32) {
        self.fileDescriptor = fileDescriptor
    }

    deinit {
        assert(fileDescriptor < 0, "PlainTCPTransport dropped without close()")
        if fileDescriptor >= 0 { Glibc.close(fileDescriptor) }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult {
        while true {
            let count = Glibc.read(fileDescriptor, buffer.baseAddress, buffer.count)
            if count > 0 { return .bytes(count) }
            if count == 0 { return .closed }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock(.read)
            case ECONNRESET: return .closed
            default: return .failed(errno)
            }
        }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) -> TransportResult {
        while true {
            let count = send(fileDescriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            if count > 0 { return .bytes(count) }
            if count == 0 { return .wouldBlock(.write) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock(.write)
            case EPIPE, ECONNRESET: return .closed
            default: return .failed(errno)
            }
        }
    }

    public func shutdownWrite() {
        if fileDescriptor >= 0 { _ = shutdown(fileDescriptor, Int32(SHUT_WR)) }
    }

    public func close() {
        if fileDescriptor >= 0 {
            Glibc.close(fileDescriptor)
            fileDescriptor = -1
        }
    }
}

/// Makes `PlainTCPTransport`s.
public struct PlainTCPTransportFactory: HTTPTransportFactory {
    public init() {}

    public func serverTransport(acceptedSocket fileDescriptor: Int32) throws -> any HTTPTransport {
        PlainTCPTransport(fileDescriptor: fileDescriptor)
    }

    public func clientTransport(connectedSocket fileDescriptor: Int32, host: String) throws -> any HTTPTransport {
        PlainTCPTransport(fileDescriptor: fileDescriptor)
    }

    public var isPlaintext: Bool { true }
}
