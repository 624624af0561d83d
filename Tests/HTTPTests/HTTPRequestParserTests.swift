import Testing
@testable import HTTP

/// What a parse produced, in a comparable form.
private struct Outcome: Equatable, CustomStringConvertible {
    var requests: [String] = []
    var error: HTTPParseError?
    var description: String { "\(requests) error: \(String(describing: error))" }
}

private func summary(_ request: Request) -> String {
    let headers = request.headers.map { "\($0.name)=\($0.value)" }.joined(separator: ";")
    return "\(request.method.rawValue) \(request.target) \(request.version.text) ka=\(request.keepAlive) [\(headers)] body=\(request.body)"
}

/// Feeds `input` in pieces of the given sizes (the last piece takes the rest).
private func parse(_ input: [UInt8], pieces: [Int], limits: HTTPRequestParser.Limits = .init()) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var outcome = Outcome()
    var offset = 0
    var sizes = pieces[...]
    while offset < input.count {
        let size = min(input.count - offset, max(1, sizes.popFirst() ?? input.count))
        parser.append(contentsOf: input[offset..<(offset + size)])
        offset += size
        do {
            while let request = try parser.next() { outcome.requests.append(summary(request)) }
        } catch {
            outcome.error = error
            return outcome
        }
    }
    return outcome
}

private func parseWhole(_ text: String, limits: HTTPRequestParser.Limits = .init()) -> Outcome {
    parse(Array(text.utf8), pieces: [], limits: limits)
}

private func randomRequest(_ rng: inout SeededGenerator) -> String {
    let methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]
    let method = methods[Int(rng.next() % UInt64(methods.count))]
    var text = "\(method) /v1/loans/\(rng.next() % 1000)?page=\(rng.next() % 9) HTTP/1.1\r\nHost: gateway\r\n"
    for index in 0..<Int(rng.next() % 5) {
        text += "X-Field-\(index):  value \(rng.next() % 100)\t\r\n"
    }
    let bodyLength = Int(rng.next() % 40)
    if bodyLength > 0 || rng.next() % 2 == 0 {
        text += "Content-Length: \(bodyLength)\r\n\r\n"
        text += String((0..<bodyLength).map { _ in Character(Unicode.Scalar(UInt8(0x61 + rng.next() % 26))) })
    } else {
        text += "\r\n"
    }
    return text
}

@Suite struct HTTPRequestParserTests {
    @Test func parsesPipelinedRequestsWithBodies() {
        let outcome = parseWhole(
            "POST /v1/loans HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                + "GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        #expect(outcome.error == nil)
        #expect(outcome.requests == [
            "POST /v1/loans HTTP/1.1 ka=true [Host=a;Content-Length=5] body=[104, 101, 108, 108, 111]",
            "GET /healthz?x=1 HTTP/1.1 ka=false [Host=a;Connection=close] body=[]",
        ])
    }

    @Test func http10IsCloseUnlessKeepAliveAsked() {
        #expect(parseWhole("GET / HTTP/1.0\r\n\r\n").requests == ["GET / HTTP/1.0 ka=false [] body=[]"])
        #expect(parseWhole("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").requests.first?.contains("ka=true") == true)
    }

    @Test func wholeByteByByteAndRandomSplitsAgree() {
        let seed: UInt64 = 0x5EED_2026
        var rng = SeededGenerator(seed: seed)
        for round in 0..<200 {
            var text = (0..<Int(1 + rng.next() % 4)).map { _ in randomRequest(&rng) }.joined()
            // Every fourth round ends in a bad request, so errors must agree too.
            if round % 4 == 3 {
                let tails = ["GET / HTTP/1.1\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
                             "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
                             "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"]
                text += tails[Int(rng.next() % UInt64(tails.count))]
            }
            let input = Array(text.utf8)
            let whole = parse(input, pieces: [])
            let bytewise = parse(input, pieces: Array(repeating: 1, count: input.count))
            let pieces = (0..<input.count).map { _ in Int(1 + rng.next() % 17) }
            let split = parse(input, pieces: pieces)
            #expect(whole == bytewise, "seed \(seed) round \(round)")
            #expect(whole == split, "seed \(seed) round \(round) pieces \(pieces)")
            #expect((whole.error != nil) == (round % 4 == 3), "seed \(seed) round \(round): \(whole)")
        }
    }

    /// Near-miss input (valid heads with line-ending and limit trouble mixed in, small limits):
    /// the error and requests must not depend on how the bytes arrive.
    @Test func nearMissInputGivesTheSameOutcomeWhateverTheSplit() {
        let seed: UInt64 = 0x0D0A_0D0A
        var rng = SeededGenerator(seed: seed)
        let limits = HTTPRequestParser.Limits(requestLineBytesMax: 24, headerBytesMax: 40, headerCountMax: 4, bodyBytesMax: 8)
        let fragments: [[UInt8]] = ["\r", "\n", "\r\n", "\r\n\r\n", "GET / HTTP/1.1", "GET /aaaaaaaaaaaa HTTP/1.1", "Host: a",
                                    "X: bb", ":", " ", "a", "Content-Length: 2", "xy"].map { Array($0.utf8) }
        for round in 0..<3_000 {
            var input: [UInt8] = []
            for _ in 0..<Int(1 + rng.next() % 14) { input += fragments[Int(rng.next() % UInt64(fragments.count))] }
            let whole = parse(input, pieces: [], limits: limits)
            let bytewise = parse(input, pieces: Array(repeating: 1, count: input.count), limits: limits)
            let pieces = (0..<input.count).map { _ in Int(1 + rng.next() % 9) }
            let split = parse(input, pieces: pieces, limits: limits)
            #expect(whole == bytewise, "seed \(seed) round \(round) input \(input)")
            #expect(whole == split, "seed \(seed) round \(round) input \(input) pieces \(pieces)")
            if whole != bytewise || whole != split { return }
        }
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\nHost: a\r\n\r\n", HTTPParseError.badLineEnding),
        ("GET / HTTP/1.1\r\nHost: a\n\r\n", .badLineEnding),
        ("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", .badLineEnding),
        ("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", .badRequestLine),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .badTarget),
        ("GET /\r\nHost: a\r\n\r\n", .badRequestLine),
        ("BREW / HTTP/1.1\r\nHost: a\r\n\r\n", .badMethod),
        ("get / HTTP/1.1\r\nHost: a\r\n\r\n", .badMethod),
        ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", .badRequestLine),
        ("GET http://x/ HTTP/1.1\r\nHost: a\r\n\r\n", .badTarget),
        ("GET /a\u{7F} HTTP/1.1\r\nHost: a\r\n\r\n", .badTarget),
        ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", .badVersion),
        ("GET / http/1.1\r\nHost: a\r\n\r\n", .badVersion),
        ("GET / HTTP/1.1\r\nHo st: a\r\n\r\n", .badHeaderName),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", .badHeaderName),
        ("GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", .badHeaderName),
        ("GET / HTTP/1.1\r\nHost a\r\n\r\n", .badHeaderName),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{01}b\r\n\r\n", .badHeaderValue),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", .badHeaderValue),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", .obsoleteLineFolding),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", .duplicateContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx", .badContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", .badContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx", .badContentLength),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", .contentLengthWithTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .transferEncodingNotSupported),
        ("GET / HTTP/1.1\r\n\r\n", .badHost),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .badHost),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", .bodyTooLarge),
    ])
    func badInputIsRefusedWithItsError(input: String, expected: HTTPParseError) {
        #expect(parseWhole(input).error == expected, "input \(input.debugDescription)")
    }

    @Test func eachErrorClassMapsToItsStatus() {
        #expect(HTTPParseError.requestLineTooLong.status.code == 414)
        #expect(HTTPParseError.headerBytesTooLarge.status.code == 431)
        #expect(HTTPParseError.headerCountTooLarge.status.code == 431)
        #expect(HTTPParseError.bodyTooLarge.status.code == 413)
        #expect(HTTPParseError.transferEncodingNotSupported.status.code == 411)
        for error in [HTTPParseError.badLineEnding, .badMethod, .badVersion, .badHeaderName, .badHeaderValue,
                      .duplicateContentLength, .contentLengthWithTransferEncoding, .badHost] {
            #expect(error.status.code == 400, "\(error)")
        }
        let body = HTTPError(HTTPParseError.duplicateContentLength).jsonBody
        #expect(body == #"{"error":{"code":"duplicate_content_length","message":"Content-Length given more than once","field":"Content-Length"}}"#)
    }

    @Test func limitsAreExactBoundaries() {
        let limits = HTTPRequestParser.Limits(requestLineBytesMax: 30, headerBytesMax: 40, headerCountMax: 3, bodyBytesMax: 10)
        let line30 = "GET /" + String(repeating: "a", count: 16) + " HTTP/1.1"  // 30 bytes
        #expect(line30.utf8.count == 30)
        #expect(parseWhole(line30 + "\r\nHost: a\r\n\r\n", limits: limits).error == nil)
        let line31 = "GET /" + String(repeating: "a", count: 17) + " HTTP/1.1"
        #expect(parseWhole(line31 + "\r\nHost: a\r\n\r\n", limits: limits).error == .requestLineTooLong)
        // Refused before the line ends: an endless request line cannot hold memory.
        #expect(parseWhole("GET /" + String(repeating: "a", count: 100), limits: limits).error == .requestLineTooLong)

        #expect(parseWhole("GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\n\r\n", limits: limits).error == nil)
        #expect(parseWhole("GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\nD: 3\r\n\r\n", limits: limits).error == .headerCountTooLarge)
        // 40 bytes of header section (both final CRLFs included) pass, 41 do not.
        let header40 = "Host: " + String(repeating: "h", count: 30) + "\r\n\r\n"
        #expect(header40.utf8.count == 40)
        #expect(parseWhole("GET / HTTP/1.1\r\n" + header40, limits: limits).error == nil)
        let header41 = "Host: " + String(repeating: "h", count: 31) + "\r\n\r\n"
        #expect(parseWhole("GET / HTTP/1.1\r\n" + header41, limits: limits).error == .headerBytesTooLarge)
        #expect(parseWhole("GET / HTTP/1.1\r\nHost: " + String(repeating: "h", count: 100), limits: limits).error == .headerBytesTooLarge)

        #expect(parseWhole("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789", limits: limits).error == nil)
        // Refused on the header alone, before any body byte is buffered.
        #expect(parseWhole("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", limits: limits).error == .bodyTooLarge)
    }

    @Test func errorsAreFinal() {
        var parser = HTTPRequestParser()
        parser.append(contentsOf: Array("GET / HTTP/1.1\nHost: a\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.badLineEnding) { try parser.next() }
        parser.append(contentsOf: Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.badLineEnding) { try parser.next() }
    }

    @Test func incompleteInputWaitsAndTracksBodyState() throws {
        var parser = HTTPRequestParser()
        parser.append(contentsOf: Array("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab".utf8))
        #expect(try parser.next() == nil)
        #expect(parser.isReadingBody)
        parser.append(contentsOf: Array("cd".utf8))
        let request = try #require(try parser.next())
        #expect(request.body == Array("abcd".utf8))
        #expect(!parser.isReadingBody)
        #expect(parser.bufferedByteCount == 0)
    }
}

/// Header names compare ASCII case-insensitively and byte for byte otherwise.
@Suite struct HeaderNameTests {
    @Test func namesEqualMatchesAnASCIICaseFoldingReference() {
        let seed: UInt64 = 0x4E41_4D45
        var generator = SeededGenerator(seed: seed)
        let alphabet = Array("abcXYZ-_09é".unicodeScalars)
        func asciiFolded(_ text: String) -> [UInt8] { text.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 } }
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...24, using: &generator)
            var scalars = String.UnicodeScalarView()
            for _ in 0..<length { scalars.append(alphabet[Int.random(in: 0..<alphabet.count, using: &generator)]) }
            let a = String(scalars)
            // b: a with random case flips of ASCII letters, sometimes one byte changed or cut short.
            var b = String(String.UnicodeScalarView(a.unicodeScalars.map { scalar in
                guard scalar.isASCII, Character(scalar).isLetter, Bool.random(using: &generator) else { return scalar }
                return Character(scalar).isUppercase ? Unicode.Scalar(scalar.value | 0x20)! : Unicode.Scalar(scalar.value & ~0x20)!
            }))
            switch Int.random(in: 0..<4, using: &generator) {
            case 0 where !b.isEmpty: b.removeLast()
            case 1: b.append(alphabet[Int.random(in: 0..<alphabet.count, using: &generator)].description)
            default: break
            }
            let expected = asciiFolded(a) == asciiFolded(b)
            #expect(HTTPHeaders.namesEqual(a, b) == expected, "seed \(seed): \(a) vs \(b)")
            if HTTPHeaders.namesEqual(a, b) != expected { return }
        }
    }
}
