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
        let fields = headers.fields
        for index in fields.indices where HTTPHeaders.namesEqual(fields[index].name, "Connection") {
            if HTTPHeaders.listContains(fields[index].value, token: "close") { return true }
        }
        return false
    }

    /// Appends the wire form to `out`. `HEAD` responses keep `Content-Length` but no body.
    /// `announceKeepAlive`: an HTTP/1.0 client that asked to keep the connection is told so.
    ///
    /// The size is counted first and the head written in place through one pointer: `out`
    /// grows at most once, where appending piece by piece grew it several times per response.
    func serialize(
        into out: inout [UInt8], requestID: String?, close: Bool, omitBody: Bool = false,
        announceKeepAlive: Bool = false
    ) {
        let connectionLine: StaticString? = close ? "\r\nConnection: close" : announceKeepAlive ? "\r\nConnection: keep-alive" : nil
        var headSize = 9 + Self.decimalCount(status.code) + 1 + status.reasonPhrase.utf8.count
            + 18 + Self.decimalCount(body.count) + 4
        if let requestID { headSize += 16 + requestID.utf8.count }
        if let connectionLine { headSize += connectionLine.utf8CodeUnitCount }
        // Framing headers a handler set are rare: counted here, so the writing pass looks
        // again only when there are some.
        // By index, here and below: the strings are read in place, where iterating copied
        // (retained and released) both strings of every field.
        let fields = headers.fields
        var skippedCount = 0
        for index in fields.indices {
            if Self.isHandlerHeader(fields[index].name) {
                headSize += 4 + fields[index].name.utf8.count + fields[index].value.utf8.count
            } else {
                skippedCount += 1
            }
        }
        let needed = out.count + headSize + (omitBody ? 0 : body.count)
        // Doubling at least, as appending would: `out` may be a connection's output that
        // collects several pipelined responses.
        if out.capacity < needed { out.reserveCapacity(Swift.max(needed, 2 * out.capacity)) }
        let offset = out.count
        // Zero-filled then overwritten (Array cannot append uninitialised bytes); the head only,
        // the body is copied after it.
        out.append(contentsOf: repeatElement(0, count: headSize))
        out.withUnsafeMutableBufferPointer { buffer in
            // `buffer` ends at `offset + headSize`; `headSize` counted exactly what follows.
            var writer = ByteWriter(buffer.baseAddress.unsafelyUnwrapped + offset)
            writer.write("HTTP/1.1 ")
            writer.writeDecimal(status.code)
            writer.write(byte: 0x20)
            writer.write(status.reasonPhrase)
            writer.write("\r\nContent-Length: ")
            writer.writeDecimal(body.count)
            if let requestID {
                writer.write("\r\nX-Request-Id: ")
                writer.write(requestID)
            }
            if let connectionLine { writer.write(connectionLine) }
            for index in fields.indices where skippedCount == 0 || Self.isHandlerHeader(fields[index].name) {
                writer.write("\r\n")
                writer.writeSanitized(fields[index].name)
                writer.write(": ")
                writer.writeSanitized(fields[index].value)
            }
            writer.write("\r\n\r\n")
            assert(writer.position == buffer.baseAddress.unsafelyUnwrapped + offset + headSize)
        }
        if !omitBody { out.append(contentsOf: body) }
    }

    /// Framing belongs to the server; a handler cannot desynchronise the connection. Most names
    /// differ in length from all four, which ends the comparison at once.
    @inline(__always)
    private static func isHandlerHeader(_ name: String) -> Bool {
        switch name.utf8.count {
        case 14: !HTTPHeaders.namesEqual(name, "Content-Length")
        case 17: !HTTPHeaders.namesEqual(name, "Transfer-Encoding")
        case 10: !HTTPHeaders.namesEqual(name, "Connection")
        case 12: !HTTPHeaders.namesEqual(name, "X-Request-Id")
        default: true
        }
    }

    /// Bytes `ByteWriter.writeDecimal` writes for `value`.
    static func decimalCount(_ value: Int) -> Int {
        if value < 10 { return 1 }
        var count = 0
        var rest = value
        while rest > 0 {
            rest /= 10
            count += 1
        }
        return count
    }

    /// Writes forward from a pointer into memory already sized for everything written.
    private struct ByteWriter {
        private(set) var position: UnsafeMutablePointer<UInt8>

        init(_ start: UnsafeMutablePointer<UInt8>) { position = start }

        mutating func write(byte: UInt8) {
            position.pointee = byte
            position += 1
        }

        mutating func write(_ text: StaticString) {
            let count = text.utf8CodeUnitCount
            position.update(from: text.utf8Start, count: count)
            position += count
        }

        mutating func write(_ text: String) {
            // Borrowed, not copied: native and small strings are contiguous UTF-8.
            let written = text.utf8.withContiguousStorageIfAvailable { source in
                if let base = source.baseAddress { position.update(from: base, count: source.count) }
                return source.count
            }
            if let written {
                position += written
            } else {
                for byte in text.utf8 { write(byte: byte) }
            }
        }

        /// Header text without CR or LF, so a value built from input cannot inject a header.
        mutating func writeSanitized(_ text: String) {
            let cleanCount = text.utf8.withContiguousStorageIfAvailable { source in
                let clean = ByteScan.firstLineBreak(in: source) ?? source.count
                if let base = source.baseAddress { position.update(from: base, count: clean) }
                return clean
            } ?? 0
            position += cleanCount
            // Rare (a line break, or a string that is not contiguous): byte by byte from there.
            guard cleanCount < text.utf8.count else { return }
            for byte in text.utf8.dropFirst(cleanCount) { write(byte: byte == 0x0D || byte == 0x0A ? 0x20 : byte) }
        }

        mutating func writeDecimal(_ value: Int) {
            if value < 10 {
                write(byte: UInt8(truncatingIfNeeded: 0x30 + value))
                return
            }
            let count = Response.decimalCount(value)
            var rest = value
            for index in stride(from: count - 1, through: 0, by: -1) {
                position[index] = UInt8(0x30 + rest % 10)
                rest /= 10
            }
            position += count
        }
    }
}
