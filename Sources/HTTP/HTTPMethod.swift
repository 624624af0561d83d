/// The request methods the server accepts: the RFC 9110 methods and QUERY (the safe method with a body), which a route may be asked for (a
/// route-less one, e.g. TRACE, gets 405 with `Allow` from the router). Anything else is answered
/// 400 (`bad_method`): the gateway has no use for extension methods.
public enum HTTPMethod: String, Sendable, Hashable, CaseIterable {
    case GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, QUERY

    /// Parses a method from its exact, case-sensitive bytes (RFC 9110 §9.1).
    init?(bytes: ArraySlice<UInt8>) {
        switch bytes.count {
        case 3:
            if asciiEqual(bytes, "GET") { self = .GET; return }
            if asciiEqual(bytes, "PUT") { self = .PUT; return }
        case 4:
            if asciiEqual(bytes, "POST") { self = .POST; return }
            if asciiEqual(bytes, "HEAD") { self = .HEAD; return }
        case 5:
            if asciiEqual(bytes, "PATCH") { self = .PATCH; return }
            if asciiEqual(bytes, "QUERY") { self = .QUERY; return }
            if asciiEqual(bytes, "TRACE") { self = .TRACE; return }
        case 6:
            if asciiEqual(bytes, "DELETE") { self = .DELETE; return }
        case 7:
            if asciiEqual(bytes, "OPTIONS") { self = .OPTIONS; return }
        default:
            break
        }
        return nil
    }
}

/// Exact byte equality with a literal, through the slice's storage: the generic
/// `elementsEqual` against a `String.UTF8View` cost hundreds of instructions per request line.
@inline(__always)
private func asciiEqual(_ bytes: ArraySlice<UInt8>, _ text: StaticString) -> Bool {
    let count = text.utf8CodeUnitCount
    guard bytes.count == count else { return false }
    return bytes.withUnsafeBufferPointer { buffer in
        for index in 0..<count where buffer[index] != text.utf8Start[index] { return false }
        return true
    }
}

/// The protocol versions the server speaks.
public enum HTTPVersion: Sendable, Hashable {
    case http1_0
    case http1_1

    public var text: String { self == .http1_1 ? "HTTP/1.1" : "HTTP/1.0" }

    /// Parses a version from its exact, case-sensitive bytes (RFC 9112 §2.3).
    init?(bytes: ArraySlice<UInt8>) {
        if asciiEqual(bytes, "HTTP/1.1") {
            self = .http1_1
        } else if asciiEqual(bytes, "HTTP/1.0") {
            self = .http1_0
        } else {
            return nil
        }
    }
}
