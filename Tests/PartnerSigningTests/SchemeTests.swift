import Testing
@testable import PartnerSigning

/// A message as it travels: what the verifier sees.
struct Exchange {
    var method: String
    var pathAndQuery: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    /// Replaces the first occurrence of `old` in the path, a header value, or the body.
    func replacing(_ old: String, with new: String) -> Exchange {
        var copy = self
        if let range = pathAndQuery.range(of: old) {
            copy.pathAndQuery.replaceSubrange(range, with: new)
            return copy
        }
        for i in headers.indices {
            if let range = headers[i].value.range(of: old) {
                copy.headers[i].value.replaceSubrange(range, with: new)
                return copy
            }
        }
        var text = String(decoding: body, as: UTF8.self)
        if let range = text.range(of: old) {
            text.replaceSubrange(range, with: new)
            copy.body = Array(text.utf8)
            return copy
        }
        Issue.record("nothing to tamper: \(old)")
        return copy
    }
}

enum SchemeHarness {
    static let timestamp: Int64 = 1_763_700_000
    static let nonce = "n0nceAbcdefGhijk_123"
    static let keyID = "k2025"
    static let otherKeyID = "k2024"

    static func scheme(_ format: MessageFormat, _ algorithm: SignatureAlgorithm, encoding: SM2.SignatureEncoding = .der) -> SigningScheme {
        SigningScheme(format: format, algorithm: algorithm, sm2: SM2Options(encoding: encoding), merchantID: "1900000109")
    }

    static func signer(_ scheme: SigningScheme) throws -> PartnerSigner {
        try PartnerSigner(scheme: scheme, keyRing: KeyRing([.init(id: keyID, key: Fixtures.signingKey(scheme.algorithm))]))
    }

    /// The verifier knows the signer's key and a second, different key of the same algorithm.
    static func verifier(_ scheme: SigningScheme, guard replayGuard: NonceReplayGuard = NonceReplayGuard()) throws -> PartnerVerifier {
        let ring = try VerifyingKeyRing([
            .init(id: keyID, key: Fixtures.signingKey(scheme.algorithm).verifyingKey),
            .init(id: otherKeyID, key: Fixtures.signingKey(scheme.algorithm, other: true).verifyingKey),
        ])
        return try PartnerVerifier(scheme: scheme, keyRing: ring, replayGuard: replayGuard)
    }

    static func exchange(_ scheme: SigningScheme, _ kind: MessageKind, json: Bool = false) throws -> Exchange {
        let path = "/v1/fundings/L-77?tranche=T1&mode=fast"
        if scheme.format == .sortedParams {
            let business = json ? #"{"loan_id":"L-77","amount":1250000,"meta":{"b":[1,2],"a":"x y"}}"# : "loan_id=L-77&amount=1250000"
            let signed = try signer(scheme).sign(kind, method: "POST", pathAndQuery: path, body: Array(business.utf8), timestamp: timestamp, nonce: nonce)
            let body: String
            if json {
                body = String(business.dropLast()) + "," + signed.parameters.map { "\"\($0.name)\":\"\($0.value)\"" }.joined(separator: ",") + "}"
            } else {
                body = business + "&" + SortedParameters.formEncode(signed.parameters)
            }
            return Exchange(method: "POST", pathAndQuery: path, headers: [], body: Array(body.utf8))
        }
        let body = Array(#"{"loan_id":"L-77","amount":1250000}"#.utf8)
        let signed = try signer(scheme).sign(kind, method: "POST", pathAndQuery: path, body: body, timestamp: timestamp, nonce: nonce)
        return Exchange(method: "POST", pathAndQuery: path, headers: signed.headers, body: body)
    }

    static func verify(_ verifier: PartnerVerifier, _ kind: MessageKind, _ e: Exchange, now: Int64 = timestamp) throws -> String {
        try verifier.verify(kind, method: e.method, pathAndQuery: e.pathAndQuery, headers: e.headers, body: e.body, now: now)
    }

    static func expectError(_ expected: SigningError, _ body: () throws -> String, _ note: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let keyID = try body()
            Issue.record("\(note): verified as \(keyID), expected \(expected.code)", sourceLocation: sourceLocation)
        } catch let error as SigningError {
            #expect(error == expected, "\(note)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(note): unexpected \(error)", sourceLocation: sourceLocation)
        }
    }
}

struct Case: CustomTestStringConvertible, Sendable {
    var format: MessageFormat
    var algorithm: SignatureAlgorithm
    var kind: MessageKind
    var encoding: SM2.SignatureEncoding = .der
    var testDescription: String { "\(format.rawValue) \(algorithm.rawValue) \(kind.rawValue)\(algorithm == .sm2SM3 ? " " + encoding.rawValue : "")" }

    static let all: [Case] = MessageFormat.allCases.flatMap { format in
        SignatureAlgorithm.allCases.flatMap { algorithm in
            MessageKind.allCases.flatMap { kind in
                algorithm == .sm2SM3
                    ? [Case(format: format, algorithm: algorithm, kind: kind, encoding: .der), Case(format: format, algorithm: algorithm, kind: kind, encoding: .raw)]
                    : [Case(format: format, algorithm: algorithm, kind: kind)]
            }
        }
    }

    var scheme: SigningScheme { SchemeHarness.scheme(format, algorithm, encoding: encoding) }
    /// Whether the signed text covers method and path (sorted-params signs parameters only).
    var coversRequestLine: Bool {
        switch (format, kind) {
        case (.jl1, .request), (.jl1, .callback), (.wechatpayV3, .request): true
        default: false
        }
    }
    /// Whether the query string is covered (request line, or sorted-params parameters).
    var coversQuery: Bool { coversRequestLine || format == .sortedParams }
}

@Suite struct SchemeTests {
    typealias H = SchemeHarness

    @Test(arguments: Case.all)
    func roundTripVerifiesAndNamesTheKey(_ c: Case) throws {
        let verifier = try H.verifier(c.scheme)
        #expect(try H.verify(verifier, c.kind, H.exchange(c.scheme, c.kind)) == H.keyID)
        if c.format == .sortedParams {
            #expect(try H.verify(try H.verifier(c.scheme), c.kind, H.exchange(c.scheme, c.kind, json: true)) == H.keyID)
        }
    }

    @Test(arguments: Case.all)
    func everyTamperedPartIsRejected(_ c: Case) throws {
        let e = try H.exchange(c.scheme, c.kind)
        let v = { try H.verifier(c.scheme) }
        if c.coversRequestLine {
            H.expectError(.signatureInvalid, { try H.verify(v(), c.kind, Exchange(method: "PUT", pathAndQuery: e.pathAndQuery, headers: e.headers, body: e.body)) }, "method")
            H.expectError(.signatureInvalid, { try H.verify(v(), c.kind, e.replacing("/v1/fundings/L-77", with: "/v1/fundings/L-78")) }, "path")
        }
        if c.coversQuery {
            H.expectError(.signatureInvalid, { try H.verify(v(), c.kind, e.replacing("tranche=T1", with: "tranche=T2")) }, "query")
        }
        H.expectError(.signatureInvalid, { try H.verify(v(), c.kind, e.replacing("1250000", with: "1250001")) }, "body")
        H.expectError(.signatureInvalid, { try H.verify(v(), c.kind, e.replacing(String(H.timestamp), with: String(H.timestamp + 1))) }, "timestamp")
        H.expectError(.signatureInvalid, { try H.verify(v(), c.kind, e.replacing(H.nonce, with: "n0nceAbcdefGhijk_124")) }, "nonce")
        H.expectError(.signatureInvalid, { try H.verify(v(), c.kind, e.replacing(H.keyID, with: H.otherKeyID)) }, "key id to another key")
        H.expectError(.keyUnknown, { try H.verify(v(), c.kind, e.replacing(H.keyID, with: "k1999")) }, "key id unknown")
        // The untampered message still verifies, so each rejection above is the tampering's doing.
        #expect(try H.verify(v(), c.kind, e) == H.keyID)
    }

    @Test(arguments: Case.all)
    func staleFutureAndReplayedMessagesAreRejected(_ c: Case) throws {
        let e = try H.exchange(c.scheme, c.kind)
        H.expectError(.timestampOutOfWindow, { try H.verify(H.verifier(c.scheme), c.kind, e, now: H.timestamp + 301) }, "expired")
        H.expectError(.timestampOutOfWindow, { try H.verify(H.verifier(c.scheme), c.kind, e, now: H.timestamp - 301) }, "future")
        #expect(try H.verify(H.verifier(c.scheme), c.kind, e, now: H.timestamp + 300) == H.keyID)
        #expect(try H.verify(H.verifier(c.scheme), c.kind, e, now: H.timestamp - 300) == H.keyID)
        let shared = try H.verifier(c.scheme)
        #expect(try H.verify(shared, c.kind, e) == H.keyID)
        H.expectError(.nonceReplayed, { try H.verify(shared, c.kind, e, now: H.timestamp + 10) }, "replay")
    }

    @Test(arguments: Case.all)
    func aSignatureByTheWrongKeyIsRejected(_ c: Case) throws {
        let e = try H.exchange(c.scheme, c.kind)
        let ring = try VerifyingKeyRing([.init(id: H.keyID, key: Fixtures.signingKey(c.algorithm, other: true).verifyingKey)])
        let verifier = try PartnerVerifier(scheme: c.scheme, keyRing: ring, replayGuard: NonceReplayGuard())
        H.expectError(.signatureInvalid, { try H.verify(verifier, c.kind, e) }, "wrong key")
    }

    @Test(arguments: Case.all)
    func aBadSignatureIsMalformedOrMissing(_ c: Case) throws {
        let e = try H.exchange(c.scheme, c.kind)
        let signature: String
        if c.format == .sortedParams {
            let text = String(decoding: e.body, as: UTF8.self)
            let start = try #require(text.range(of: "&sign="))
            signature = String(text[start.upperBound...].prefix(while: { $0 != "&" }))
        } else {
            signature = try #require(Self.signatureText(in: e, format: c.format, kind: c.kind))
        }
        let replacement = c.format == .sortedParams ? "%25%25%25%25" : "%%%%"
        H.expectError(.signatureMalformed, { try H.verify(H.verifier(c.scheme), c.kind, e.replacing(signature, with: replacement)) }, "bad base64")
        H.expectError(.signatureMalformed, { try H.verify(H.verifier(c.scheme), c.kind, e.replacing(signature, with: "QUJD")) }, "wrong length")
        H.expectError(.signatureMissing, { try H.verify(H.verifier(c.scheme), c.kind, e.replacing(signature, with: "")) }, "empty")
    }

    static func signatureText(in e: Exchange, format: MessageFormat, kind: MessageKind) -> String? {
        for header in e.headers {
            if header.name == "Authorization", let start = header.value.range(of: "signature=\"") {
                return String(header.value[start.upperBound...].prefix(while: { $0 != "\"" }))
            }
            if header.name.hasSuffix("-Signature") { return header.value }
        }
        return nil
    }
}
