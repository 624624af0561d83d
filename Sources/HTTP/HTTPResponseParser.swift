/// Parses one response from a client connection's bytes, with limits. Framing: no body for
/// HEAD, 1xx, 204 and 304; else chunked, else `Content-Length`, else until the peer closes.
struct HTTPResponseParser {
    struct Limits {
        var headerBytesMax: Int
        var bodyBytesMax: Int
    }

    struct Parsed {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        /// Whether the connection may carry another request.
        var reusable: Bool
    }

    let limits: Limits
    let requestWasHead: Bool

    /// The response at the start of `buffer` (1xx interim responses skipped) and the bytes it
    /// used, or `nil` when more bytes are needed. `peerClosed` ends a close-delimited body.
    func parse(_ buffer: [UInt8], peerClosed: Bool) throws(HTTPClientError) -> (Parsed, consumed: Int)? {
        var start = 0
        while true {
            guard let headEnd = Self.headEnd(buffer, from: start) else {
                if buffer.count - start > limits.headerBytesMax { throw .responseTooLarge(field: "headers") }
                if peerClosed { throw .badResponse(reason: "connection closed before the response head") }
                return nil
            }
            if headEnd - start > limits.headerBytesMax { throw .responseTooLarge(field: "headers") }
            let (status, version, headers) = try Self.parseHead(buffer[start..<(headEnd - 4)])
            if (100...199).contains(status) {
                start = headEnd
                continue
            }
            let closeRequested = headers.values(for: "Connection").contains { HTTPHeaders.listContains($0, token: "close") }
            var reusable = version == "HTTP/1.1" && !closeRequested
            if requestWasHead || status == 204 || status == 304 {
                return (Parsed(status: status, headers: headers, body: [], reusable: reusable), headEnd)
            }
            if let encoding = headers["Transfer-Encoding"] {
                guard HTTPHeaders.listContains(encoding, token: "chunked") else {
                    throw .badResponse(reason: "unsupported Transfer-Encoding")
                }
                guard let (body, end) = try decodeChunked(buffer, from: headEnd) else {
                    if peerClosed { throw .badResponse(reason: "connection closed inside a chunked body") }
                    return nil
                }
                return (Parsed(status: status, headers: headers, body: body, reusable: reusable), end)
            }
            let lengths = headers.values(for: "Content-Length")
            if let text = lengths.first {
                guard lengths.allSatisfy({ $0 == text }), let length = Int(text), length >= 0 else {
                    throw .badResponse(reason: "bad Content-Length")
                }
                if length > limits.bodyBytesMax { throw .responseTooLarge(field: "body") }
                guard buffer.count - headEnd >= length else {
                    if peerClosed { throw .badResponse(reason: "connection closed inside the body") }
                    return nil
                }
                return (Parsed(status: status, headers: headers, body: Array(buffer[headEnd..<(headEnd + length)]), reusable: reusable), headEnd + length)
            }
            if buffer.count - headEnd > limits.bodyBytesMax { throw .responseTooLarge(field: "body") }
            guard peerClosed else { return nil }
            reusable = false
            return (Parsed(status: status, headers: headers, body: Array(buffer[headEnd...]), reusable: reusable), buffer.count)
        }
    }

    private static func headEnd(_ buffer: [UInt8], from start: Int) -> Int? {
        guard buffer.count - start >= 4 else { return nil }
        var index = start
        while index + 3 < buffer.count {
            if buffer[index] == 0x0D && buffer[index + 1] == 0x0A && buffer[index + 2] == 0x0D && buffer[index + 3] == 0x0A {
                return index + 4
            }
            index += 1
        }
        return nil
    }

    private static func parseHead(_ head: ArraySlice<UInt8>) throws(HTTPClientError) -> (Int, String, HTTPHeaders) {
        let lines = head.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            line.last == 0x0D ? line.dropLast() : line
        }
        guard let statusLine = lines.first else { throw .badResponse(reason: "empty head") }
        let parts = statusLine.split(separator: 0x20, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[1].count == 3, parts[1].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let status = Int(String(decoding: parts[1], as: UTF8.self))
        else { throw .badResponse(reason: "bad status line") }
        let version = String(decoding: parts[0], as: UTF8.self)
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { throw .badResponse(reason: "bad version") }
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: 0x3A), colon > line.startIndex,
                line[..<colon].allSatisfy(HTTPRequestParser.isTokenByte)
            else { throw .badResponse(reason: "bad header line") }
            var value = line[(colon + 1)...]
            while let f = value.first, f == 0x20 || f == 0x09 { value = value.dropFirst() }
            while let l = value.last, l == 0x20 || l == 0x09 { value = value.dropLast() }
            headers.add(name: String(decoding: line[..<colon], as: UTF8.self), value: String(decoding: value, as: UTF8.self))
        }
        return (status, version, headers)
    }

    /// The de-chunked body and the index after the final CRLF, or `nil` when incomplete.
    private func decodeChunked(_ buffer: [UInt8], from start: Int) throws(HTTPClientError) -> ([UInt8], Int)? {
        var body: [UInt8] = []
        var index = start
        while true {
            guard let lineEnd = Self.crlf(buffer, from: index) else { return nil }
            var sizeText = buffer[index..<lineEnd]
            if let semicolon = sizeText.firstIndex(of: 0x3B) { sizeText = sizeText[..<semicolon] }
            guard !sizeText.isEmpty, sizeText.count <= 8,
                let size = Int(String(decoding: sizeText, as: UTF8.self), radix: 16)
            else { throw .badResponse(reason: "bad chunk size") }
            index = lineEnd + 2
            if size == 0 {
                // Trailers, ignored, up to an empty line.
                while true {
                    guard let end = Self.crlf(buffer, from: index) else { return nil }
                    if end == index { return (body, end + 2) }
                    index = end + 2
                }
            }
            if body.count + size > limits.bodyBytesMax { throw .responseTooLarge(field: "body") }
            guard buffer.count >= index + size + 2 else { return nil }
            body.append(contentsOf: buffer[index..<(index + size)])
            guard buffer[index + size] == 0x0D, buffer[index + size + 1] == 0x0A else {
                throw .badResponse(reason: "chunk not followed by CRLF")
            }
            index += size + 2
        }
    }

    private static func crlf(_ buffer: [UInt8], from start: Int) -> Int? {
        var index = start
        while index + 1 < buffer.count {
            if buffer[index] == 0x0D && buffer[index + 1] == 0x0A { return index }
            index += 1
        }
        return nil
    }
}
