/// What the server knows about a request besides the request itself.
public struct RequestContext: Sendable {
    /// From a sane `X-Request-Id` header (1–64 of `A-Z a-z 0-9 . _ -`), else generated.
    /// Echoed in the response's `X-Request-Id`.
    public let requestID: String
    /// Values of the route's `{param}` segments, raw (still percent-encoded); `parameter(_:)`
    /// decodes and validates one.
    public let parameters: RouterResponder.Parameters
    /// The matched route pattern, e.g. `/v1/loans/{loanId}`; empty when no route matched.
    public let routePattern: String
    /// The peer's IPv4 address, when known.
    public let remoteAddress: String?
    private let baseLogger: Logger

    public init(
        requestID: String, parameters: RouterResponder.Parameters = [:], routePattern: String = "",
        remoteAddress: String? = nil, logger: Logger
    ) {
        self.requestID = requestID
        self.parameters = parameters
        self.routePattern = routePattern
        self.remoteAddress = remoteAddress
        self.baseLogger = logger
    }

    /// The server's logger with `request.id` set.
    public var logger: Logger {
        var logger = baseLogger
        logger[metadataKey: "request.id"] = requestID
        return logger
    }

    /// The percent-decoded value of route parameter `name`, or a 400 naming it when it is
    /// missing, badly encoded or not UTF-8.
    public func parameter(_ name: String) throws(HTTPError) -> String {
        guard let raw = parameters[name], !raw.isEmpty else {
            throw HTTPError(.badRequest, code: "missing_parameter", message: "path parameter is missing", field: name)
        }
        guard let decoded = Self.percentDecoded(raw), !decoded.isEmpty else {
            throw HTTPError(.badRequest, code: "bad_parameter", message: "path parameter is not valid percent-encoded UTF-8", field: name)
        }
        return decoded
    }

    /// `%XY` sequences decoded; `nil` for a malformed escape or bytes that are not UTF-8.
    static func percentDecoded(_ text: String) -> String? {
        guard text.utf8.contains(0x25) else { return text }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        func hex(_ byte: UInt8?) -> UInt8? {
            switch byte {
            case let b? where b >= 0x30 && b <= 0x39: b - 0x30
            case let b? where b >= 0x41 && b <= 0x46: b - 0x41 + 10
            case let b? where b >= 0x61 && b <= 0x66: b - 0x61 + 10
            default: nil
            }
        }
        while let byte = iterator.next() {
            if byte == 0x25 {
                guard let high = hex(iterator.next()), let low = hex(iterator.next()) else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Whether `candidate` may be used as a request id as received.
    static func isSaneRequestID(_ candidate: String) -> Bool {
        let bytes = candidate.utf8
        return !bytes.isEmpty && bytes.count <= 64 && bytes.allSatisfy { byte in
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F: true
            default: false
            }
        }
    }

    func with(parameters: RouterResponder.Parameters, routePattern: String) -> RequestContext {
        RequestContext(
            requestID: requestID, parameters: parameters, routePattern: routePattern,
            remoteAddress: remoteAddress, logger: baseLogger)
    }
}
