/// The request methods the server accepts: the RFC 9110 methods and QUERY (the safe method with a body), which a route may be asked for (a
/// route-less one, e.g. TRACE, gets 405 with `Allow` from the router). Anything else is answered
/// 400 (`bad_method`): the gateway has no use for extension methods.
public enum HTTPMethod: String, Sendable, Hashable, CaseIterable {
    case GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, QUERY

    /// Parses a method from its exact, case-sensitive bytes (RFC 9110 §9.1).
    init?(bytes: ArraySlice<UInt8>) {
        switch bytes.count {
        case 3:
            if bytes.elementsEqual("GET".utf8) { self = .GET; return }
            if bytes.elementsEqual("PUT".utf8) { self = .PUT; return }
        case 4:
            if bytes.elementsEqual("POST".utf8) { self = .POST; return }
            if bytes.elementsEqual("HEAD".utf8) { self = .HEAD; return }
        case 5:
            if bytes.elementsEqual("PATCH".utf8) { self = .PATCH; return }
            if bytes.elementsEqual("QUERY".utf8) { self = .QUERY; return }
            if bytes.elementsEqual("TRACE".utf8) { self = .TRACE; return }
        case 6:
            if bytes.elementsEqual("DELETE".utf8) { self = .DELETE; return }
        case 7:
            if bytes.elementsEqual("OPTIONS".utf8) { self = .OPTIONS; return }
        default:
            break
        }
        return nil
    }
}

/// The protocol versions the server speaks.
public enum HTTPVersion: Sendable, Hashable {
    case http1_0
    case http1_1

    public var text: String { self == .http1_1 ? "HTTP/1.1" : "HTTP/1.0" }
}
