/// Why an outbound call failed. None carries request data: messages are safe to log.
public enum HTTPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The request is unusable; `field` names what is wrong.
    case invalidRequest(field: String, reason: String)
    case unresolvableHost(String)
    case connectTimeout
    /// The total timeout passed (waiting for a connection slot, writing or reading).
    case timeout
    case connectionFailed(errno: Int32)
    /// The peer closed or reset the connection mid-exchange.
    case connectionClosed
    case badResponse(reason: String)
    case responseTooLarge(field: String)
    case shutdown

    public var description: String {
        switch self {
        case let .invalidRequest(field, reason): "invalid request \(field): \(reason)"
        case let .unresolvableHost(host): "cannot resolve host \(host)"
        case .connectTimeout: "connect timed out"
        case .timeout: "request timed out"
        case let .connectionFailed(code): "connection failed (errno \(code))"
        case .connectionClosed: "connection closed by peer"
        case let .badResponse(reason): "bad response: \(reason)"
        case let .responseTooLarge(field): "response \(field) exceeds the limit"
        case .shutdown: "client is shut down"
        }
    }
}
