import Testing
@testable import HTTP

/// The header lines and framing decisions the parser made before it gathered framing in the
/// same pass as the lines (kept here as the reference): same errors, in the same order.
private enum ReferenceHeaders {
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: true
        default: false
        }
    }

    /// `lines`: header lines without CRLF. Returns the headers and keep-alive, or the error.
    static func parse(_ lines: [[UInt8]], version: HTTPVersion, bodyBytesMax: Int) -> Result<(HTTPHeaders, Int, Bool), HTTPParseError> {
        var headers = HTTPHeaders()
        for line in lines {
            if let first = line.first, first == 0x20 || first == 0x09 { return .failure(.obsoleteLineFolding) }
            guard let colon = line.firstIndex(of: 0x3A), colon > 0 else { return .failure(.badHeaderName) }
            guard line[..<colon].allSatisfy(isTokenByte) else { return .failure(.badHeaderName) }
            var value = line[(colon + 1)...]
            while let f = value.first, f == 0x20 || f == 0x09 { value = value.dropFirst() }
            while let l = value.last, l == 0x20 || l == 0x09 { value = value.dropLast() }
            guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else { return .failure(.badHeaderValue) }
            headers.add(name: String(decoding: line[..<colon], as: UTF8.self), value: String(decoding: value, as: UTF8.self))
        }
        var contentLength: Int?
        var hasTransferEncoding = false
        var hostCount = 0
        var connectionClose = false
        var connectionKeepAlive = false
        for field in headers {
            if HTTPHeaders.namesEqual(field.name, "Content-Length") {
                if contentLength != nil { return .failure(.duplicateContentLength) }
                let digits = field.value.utf8
                guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return .failure(.badContentLength) }
                var length = 0
                for digit in digits {
                    length = length * 10 + Int(digit - 0x30)
                    if length > bodyBytesMax { return .failure(.bodyTooLarge) }
                }
                contentLength = length
            } else if HTTPHeaders.namesEqual(field.name, "Transfer-Encoding") {
                hasTransferEncoding = true
            } else if HTTPHeaders.namesEqual(field.name, "Host") {
                hostCount += 1
            } else if HTTPHeaders.namesEqual(field.name, "Connection") {
                connectionClose = connectionClose || HTTPHeaders.listContains(field.value, token: "close")
                connectionKeepAlive = connectionKeepAlive || HTTPHeaders.listContains(field.value, token: "keep-alive")
            }
        }
        if hasTransferEncoding { return .failure(contentLength == nil ? .transferEncodingNotSupported : .contentLengthWithTransferEncoding) }
        if version == .http1_1 && hostCount != 1 { return .failure(.badHost) }
        if hostCount > 1 { return .failure(.badHost) }
        let keepAlive = version == .http1_1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        return .success((headers, contentLength ?? 0, keepAlive))
    }
}

@Suite struct HeaderFramingTests {
    @Test func tokenByteBitmapIsTheRFCList() {
        for byte in 0...255 {
            #expect(HTTPRequestParser.isTokenByte(UInt8(byte)) == ReferenceHeaders.isTokenByte(UInt8(byte)), "byte \(byte)")
        }
    }

    /// The word-at-a-time check against the byte rule: every byte value at every position of
    /// values of every length up to three words, on a clean background of both kinds.
    @Test func fieldValueWordCheckMatchesTheByteRule() {
        for background: UInt8 in [0x61, 0x09, 0xFF] {
            for count in 0...24 {
                for position in 0..<max(count, 1) {
                    for byte in 0...255 {
                        var value = [UInt8](repeating: background, count: count)
                        if count > 0 { value[position] = UInt8(byte) }
                        let expected = value.allSatisfy(HTTPRequestParser.isFieldValueByte)
                        let actual = value.withUnsafeBufferPointer { HTTPRequestParser.isFieldValue($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, count: count) }
                        if actual != expected {
                            Issue.record("background \(background) count \(count) position \(position) byte \(byte)")
                            return
                        }
                    }
                }
            }
        }
    }

    @Test func aBadLineAfterAFramingErrorIsTheErrorReported() throws {
        var parser = HTTPRequestParser()
        parser.append(contentsOf: Array("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\nX y: z\r\n\r\nx".utf8))
        #expect(throws: HTTPParseError.badHeaderName) { try parser.next() }
    }

    @Test func framingNamesMatchInAnyCase() throws {
        var parser = HTTPRequestParser()
        parser.append(contentsOf: Array("POST / HTTP/1.0\r\nhOST: a\r\ncontent-LENGTH: 2\r\nCONNECTION: Keep-Alive\r\n\r\nxy".utf8))
        let request = try #require(try parser.next())
        #expect(request.body == Array("xy".utf8))
        #expect(request.keepAlive)
        var expecting = HTTPRequestParser()
        expecting.append(contentsOf: Array("POST / HTTP/1.1\r\nHost: a\r\nEXPECT: 100-Continue\r\nContent-Length: 2\r\n\r\n".utf8))
        #expect(try expecting.next() == nil)
        #expect(expecting.isAwaitingContinue)
        var notExpecting = HTTPRequestParser()
        notExpecting.append(contentsOf: Array("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continued\r\nContent-Length: 2\r\n\r\n".utf8))
        #expect(try notExpecting.next() == nil)
        #expect(!notExpecting.isAwaitingContinue)
    }

    /// Random header sections from lines that matter to framing (any case, duplicated, malformed):
    /// the parser's error, headers, body length and keep-alive match the reference.
    @Test func headersAndFramingMatchTheReference() {
        let seed: UInt64 = 0x4845_4144
        var rng = SeededGenerator(seed: seed)
        let names = ["Host", "host", "HOST", "Content-Length", "content-length", "CONTENT-length", "Transfer-Encoding",
                     "transfer-encoding", "Connection", "connection", "Expect", "X-Request-Id", "Hos", "Content-Lengths", "X y", "", " Host"]
        let values = ["a", " 3 ", "0", "12", "1, 1", "-1", "99999999999999999999", "close", "keep-alive", "Keep-Alive, Upgrade",
                      "upgrade,  close ", "100-continue", "a\u{01}b", "a\u{7F}", "\t", "é", "chunked", ""]
        let bodyBytesMax = 20
        for round in 0..<4_000 {
            let version: HTTPVersion = rng.next() % 3 == 0 ? .http1_0 : .http1_1
            var lines: [[UInt8]] = []
            for _ in 0..<Int(rng.next() % 6) {
                let name = names[Int(rng.next() % UInt64(names.count))]
                let value = values[Int(rng.next() % UInt64(values.count))]
                let separator = rng.next() % 8 == 0 ? "" : ":"
                let line = Array("\(name)\(separator)\(value)".utf8)
                if !line.isEmpty { lines.append(line) }  // an empty line would end the head
            }
            let expected = ReferenceHeaders.parse(lines, version: version, bodyBytesMax: bodyBytesMax)
            var input = Array("POST / \(version.text)\r\n".utf8)
            for line in lines { input += line + [0x0D, 0x0A] }
            input += [0x0D, 0x0A]
            input += Array(repeating: UInt8(ascii: "b"), count: bodyBytesMax)
            var parser = HTTPRequestParser(limits: .init(bodyBytesMax: bodyBytesMax))
            parser.append(contentsOf: input)
            let actual: Result<Request?, HTTPParseError> = Result { () throws(HTTPParseError) in try parser.next() }
            switch (expected, actual) {
            case let (.failure(e), .failure(a)):
                #expect(e == a, "seed \(seed) round \(round) lines \(lines)")
                if e != a { return }
            case let (.success((headers, length, keepAlive)), .success(request?)):
                let same = request.headers == headers && request.body.count == length && request.keepAlive == keepAlive
                #expect(same, "seed \(seed) round \(round) lines \(lines)")
                if !same { return }
            default:
                Issue.record("seed \(seed) round \(round) lines \(lines): expected \(expected), got \(actual)")
                return
            }
        }
    }
}

@Suite struct RequestLineTokenTests {
    /// Each method and version parses from its exact bytes, and every one-byte change, case
    /// change, truncation or extension of them does not.
    @Test func methodsAndVersionsParseFromExactBytesOnly() {
        for method in HTTPMethod.allCases {
            let bytes = Array(method.rawValue.utf8)
            #expect(HTTPMethod(bytes: bytes[...]) == method)
            #expect(HTTPMethod(bytes: Array(method.rawValue.lowercased().utf8)[...]) == nil)
            #expect(HTTPMethod(bytes: bytes.dropLast()) == nil)
            #expect(HTTPMethod(bytes: (bytes + [0x41])[...]) == nil)
            for index in bytes.indices {
                var changed = bytes
                changed[index] &+= 1
                #expect(HTTPMethod(bytes: changed[...]) == nil, "\(changed)")
            }
        }
        for version in [HTTPVersion.http1_0, .http1_1] {
            let bytes = Array(version.text.utf8)
            #expect(HTTPVersion(bytes: bytes[...]) == version)
            // A slice that does not start at index 0, as the parser passes.
            #expect(HTTPVersion(bytes: (Array("GET / ".utf8) + bytes)[6...]) == version)
            #expect(HTTPVersion(bytes: bytes.dropLast()) == nil)
            for index in bytes.indices {
                var changed = bytes
                changed[index] &+= 2  // +1 would turn 1.0 into the other version
                #expect(HTTPVersion(bytes: changed[...]) == nil, "\(changed)")
            }
        }
    }
}
