/// What a transport operation did.
public enum TransportResult: Sendable, Equatable {
    /// This many bytes were read or written (never 0).
    case bytes(Int)
    /// Nothing now; call again when the socket is ready for `Interest` (a TLS read may need
    /// the socket writable, e.g. during renegotiation).
    case wouldBlock(TransportInterest)
    /// The peer closed the connection cleanly.
    case closed
    /// A fatal error (`errno` or a TLS library code).
    case failed(Int32)
}

public enum TransportInterest: Sendable, Equatable {
    case read
    case write
}

/// The seam for TLS: connections read and write through a transport over a connected,
/// non-blocking socket. `PlainTCPTransport` is plain TCP; an OpenSSL implementation wraps an
/// `SSL*` (handshake driven lazily inside `read`/`write`, which return `.wouldBlock` until it
/// completes) and may require client certificates.
public protocol HTTPTransport: AnyObject {
    var fileDescriptor: Int32 { get }
    func read(into buffer: UnsafeMutableRawBufferPointer) -> TransportResult
    func write(_ bytes: UnsafeRawBufferPointer) -> TransportResult
    /// Sends the end of the stream (TCP FIN, or a TLS close_notify then FIN); reads go on.
    func shutdownWrite()
    /// Releases the socket. Idempotent.
    func close()
}

/// Makes transports for accepted (server) and connected (client) sockets. It owns any shared
/// state such as a TLS context with certificates.
public protocol HTTPTransportFactory: Sendable {
    func serverTransport(acceptedSocket fileDescriptor: Int32) throws -> any HTTPTransport
    func clientTransport(connectedSocket fileDescriptor: Int32, host: String) throws -> any HTTPTransport
    /// Whether bytes written straight to the socket reach the peer as HTTP (the server writes a
    /// canned 503 when over its connection limit only then).
    var isPlaintext: Bool { get }
}
