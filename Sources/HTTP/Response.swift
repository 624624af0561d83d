/// A response to write: status, headers and the whole body.
///
/// The server adds `Content-Length`, `X-Request-Id` and, when closing, `Connection: close`;
/// handlers set everything else.
public struct Response: Sendable {
    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response from already-encoded JSON text.
    public static func json(_ json: String, status: HTTPStatus = .ok) -> Response {
        Response(status: status, headers: ["Content-Type": "application/json"], body: Array(json.utf8))
    }

    /// A JSON response from already-encoded JSON bytes.
    public static func json(bytes: [UInt8], status: HTTPStatus = .ok) -> Response {
        Response(status: status, headers: ["Content-Type": "application/json"], body: bytes)
    }

    /// A JSON response from already-encoded JSON bytes with more headers after `Content-Type`,
    /// in order (e.g. a signature's), gathered in one allocation.
    public static func json(bytes: [UInt8], status: HTTPStatus = .ok, adding extra: [(name: String, value: String)]) -> Response {
        var headers = HTTPHeaders()
        headers.reserveCapacity(1 + extra.count)
        headers.add(name: "Content-Type", value: "application/json")
        for field in extra { headers.add(name: field.name, value: field.value) }
        return Response(status: status, headers: headers, body: bytes)
    }

    /// A plain-text response.
    public static func text(_ text: String, status: HTTPStatus = .ok) -> Response {
        Response(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(text.utf8))
    }

    /// Whether the handler asked to close the connection after this response (`Connection: close`).
    var asksToClose: Bool {
        headers.values(for: "Connection").contains { HTTPHeaders.listContains($0, token: "close") }
    }

    /// Appends the wire form to `out`. `HEAD` responses keep `Content-Length` but no body.
    /// `announceKeepAlive`: an HTTP/1.0 client that asked to keep the connection is told so.
    func serialize(
        into out: inout [UInt8], requestID: String?, close: Bool, omitBody: Bool = false,
        announceKeepAlive: Bool = false
    ) {
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        Self.appendDecimal(status.code, to: &out)
        out.append(0x20)
        out.append(contentsOf: status.reasonPhrase.utf8)
        out.append(contentsOf: "\r\nContent-Length: ".utf8)
        Self.appendDecimal(body.count, to: &out)
        if let requestID {
            out.append(contentsOf: "\r\nX-Request-Id: ".utf8)
            out.append(contentsOf: requestID.utf8)
        }
        if close {
            out.append(contentsOf: "\r\nConnection: close".utf8)
        } else if announceKeepAlive {
            out.append(contentsOf: "\r\nConnection: keep-alive".utf8)
        }
        for field in headers {
            // Framing belongs to the server; a handler cannot desynchronise the connection.
            if HTTPHeaders.namesEqual(field.name, "Content-Length")
                || HTTPHeaders.namesEqual(field.name, "Transfer-Encoding")
                || HTTPHeaders.namesEqual(field.name, "Connection")
                || HTTPHeaders.namesEqual(field.name, "X-Request-Id")
            {
                continue
            }
            out.append(contentsOf: "\r\n".utf8)
            Self.appendSanitized(field.name, to: &out)
            out.append(contentsOf: ": ".utf8)
            Self.appendSanitized(field.value, to: &out)
        }
        out.append(contentsOf: "\r\n\r\n".utf8)
        if !omitBody { out.append(contentsOf: body) }
    }

    /// Header text without CR or LF, so a value built from input cannot inject a header.
    private static func appendSanitized(_ text: String, to out: inout [UInt8]) {
        var text = text
        // Through the contiguous UTF-8 (no copy for native strings): iterating `utf8` decodes
        // byte by byte, a cost paid for every header of every response.
        text.withUTF8 { bytes in
            if !bytes.contains(where: { $0 == 0x0D || $0 == 0x0A }) {
                out.append(contentsOf: bytes)
                return
            }
            for byte in bytes { out.append(byte == 0x0D || byte == 0x0A ? 0x20 : byte) }
        }
    }

    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 10 {
            out.append(UInt8(0x30 + value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { raw in
            while rest > 0 {
                raw[count] = UInt8(0x30 + rest % 10)
                rest /= 10
                count += 1
            }
            for index in stride(from: count - 1, through: 0, by: -1) { out.append(raw[index]) }
        }
    }
}
