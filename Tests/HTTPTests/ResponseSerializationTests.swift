import Testing
@testable import HTTP

/// The serialiser as it was before it counted the size first and wrote through a pointer,
/// kept as the reference the current one must match byte for byte.
private func referenceSerialize(
    _ response: Response, into out: inout [UInt8], requestID: String?, close: Bool, omitBody: Bool = false,
    announceKeepAlive: Bool = false
) {
    func appendDecimal(_ value: Int) { out.append(contentsOf: String(value).utf8) }
    func appendSanitized(_ text: String) { for byte in text.utf8 { out.append(byte == 0x0D || byte == 0x0A ? 0x20 : byte) } }
    out.append(contentsOf: "HTTP/1.1 ".utf8)
    appendDecimal(response.status.code)
    out.append(0x20)
    out.append(contentsOf: response.status.reasonPhrase.utf8)
    out.append(contentsOf: "\r\nContent-Length: ".utf8)
    appendDecimal(response.body.count)
    if let requestID {
        out.append(contentsOf: "\r\nX-Request-Id: ".utf8)
        out.append(contentsOf: requestID.utf8)
    }
    if close {
        out.append(contentsOf: "\r\nConnection: close".utf8)
    } else if announceKeepAlive {
        out.append(contentsOf: "\r\nConnection: keep-alive".utf8)
    }
    for field in response.headers {
        if HTTPHeaders.namesEqual(field.name, "Content-Length") || HTTPHeaders.namesEqual(field.name, "Transfer-Encoding")
            || HTTPHeaders.namesEqual(field.name, "Connection") || HTTPHeaders.namesEqual(field.name, "X-Request-Id")
        {
            continue
        }
        out.append(contentsOf: "\r\n".utf8)
        appendSanitized(field.name)
        out.append(contentsOf: ": ".utf8)
        appendSanitized(field.value)
    }
    out.append(contentsOf: "\r\n\r\n".utf8)
    if !omitBody { out.append(contentsOf: response.body) }
}

private func wire(_ response: Response, requestID: String?, close: Bool, omitBody: Bool = false, announceKeepAlive: Bool = false) -> String {
    var out: [UInt8] = []
    response.serialize(into: &out, requestID: requestID, close: close, omitBody: omitBody, announceKeepAlive: announceKeepAlive)
    return String(decoding: out, as: UTF8.self)
}

@Suite struct ResponseSerializationTests {
    @Test func signedConfirmationAckHasItsExactBytes() {
        let body = Array(#"{"serial":"s-1","trancheId":7}"#.utf8)
        let response = Response.json(bytes: body, adding: [("JL-Timestamp", "1763700000"), ("JL-Nonce", "n0"), ("JL-Signature", "c2ln")])
        #expect(wire(response, requestID: "req-1", close: false)
            == "HTTP/1.1 200 OK\r\nContent-Length: 30\r\nX-Request-Id: req-1\r\nContent-Type: application/json\r\nJL-Timestamp: 1763700000\r\nJL-Nonce: n0\r\nJL-Signature: c2ln\r\n\r\n" + #"{"serial":"s-1","trancheId":7}"#)
    }

    @Test func closeKeepAliveHeadAndNoRequestIDAreExact() {
        let text = Response.text("gone", status: .notFound)
        #expect(wire(text, requestID: "r", close: true)
            == "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nX-Request-Id: r\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ngone")
        #expect(wire(text, requestID: "r", close: false, announceKeepAlive: true)
            == "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nX-Request-Id: r\r\nConnection: keep-alive\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ngone")
        #expect(wire(text, requestID: "r", close: false, omitBody: true)
            == "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nX-Request-Id: r\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
        #expect(wire(HTTPError.overloaded.response, requestID: nil, close: true).hasPrefix("HTTP/1.1 503 Service Unavailable\r\nContent-Length: "))
        #expect(wire(Response(status: .noContent), requestID: nil, close: false) == "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func handlerCannotSetFramingOrInjectHeaders() {
        var response = Response(status: .ok, body: Array("abc".utf8))
        response.headers.add(name: "content-length", value: "99")
        response.headers.add(name: "Transfer-Encoding", value: "chunked")
        response.headers.add(name: "CONNECTION", value: "keep-alive")
        response.headers.add(name: "x-request-id", value: "forged")
        response.headers.add(name: "X-Note", value: "a\r\nSet-Cookie: b")
        #expect(wire(response, requestID: "r", close: false)
            == "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Request-Id: r\r\nX-Note: a  Set-Cookie: b\r\n\r\nabc")
    }

    /// Random statuses, headers (framing names in any case, CR/LF, non-ASCII), bodies and flags,
    /// appended after bytes already in the buffer: the same bytes as the reference, and a
    /// `Content-Length` equal to the body's size.
    @Test func matchesTheReferenceSerialiser() {
        let seed: UInt64 = 0x5E71_A115
        var rng = SeededGenerator(seed: seed)
        let statuses: [HTTPStatus] = [.ok, .created, .noContent, .badRequest, .unauthorized, .notFound, .conflict,
                                      .tooManyRequests, .serviceUnavailable, HTTPStatus(code: 599), HTTPStatus(code: 7), HTTPStatus(code: 1000)]
        let names = ["Content-Type", "content-length", "Transfer-encoding", "Connection", "X-REQUEST-ID", "JL-Signature", "Retry-After", "X-\r\nEvil", "Ö"]
        let values = ["application/json", "", "a\rb\nc", "借款", String(repeating: "s", count: 300), "close", "0"]
        for round in 0..<3_000 {
            var response = Response(status: statuses[Int(rng.next() % UInt64(statuses.count))])
            for _ in 0..<Int(rng.next() % 6) {
                response.headers.add(name: names[Int(rng.next() % UInt64(names.count))], value: values[Int(rng.next() % UInt64(values.count))])
            }
            let bodyCount = [0, 1, 9, 10, 99, 100, 1234, 20_000][Int(rng.next() % 8)]
            response.body = (0..<bodyCount).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let requestID: String? = rng.next() % 4 == 0 ? nil : String(repeating: "r", count: Int(rng.next() % 40))
            let close = rng.next() % 2 == 0
            let omitBody = rng.next() % 3 == 0
            let announce = rng.next() % 2 == 0
            let prefix = (0..<Int(rng.next() % 50)).map { UInt8(truncatingIfNeeded: $0) }
            var expected = prefix
            referenceSerialize(response, into: &expected, requestID: requestID, close: close, omitBody: omitBody, announceKeepAlive: announce)
            var actual = prefix
            response.serialize(into: &actual, requestID: requestID, close: close, omitBody: omitBody, announceKeepAlive: announce)
            #expect(actual == expected, "seed \(seed) round \(round)")
            let lengthLine = Array("\r\nContent-Length: \(bodyCount)\r\n".utf8)
            let hasLength = actual.count >= lengthLine.count
                && (0...(actual.count - lengthLine.count)).contains { actual[$0..<($0 + lengthLine.count)].elementsEqual(lengthLine) }
            #expect(hasLength, "seed \(seed) round \(round)")
            if actual != expected { return }
        }
    }
}
