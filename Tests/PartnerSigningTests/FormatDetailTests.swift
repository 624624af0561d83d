import Testing
@testable import PartnerSigning

/// Format details SIGNING.md fixes beyond the round trip.
@Suite struct FormatDetailTests {
    typealias H = SchemeHarness

    @Test func jl1ParametersMayComeInAnyOrderAndHeaderNamesInAnyCase() throws {
        let scheme = H.scheme(.jl1, .ed25519)
        let signed = try H.signer(scheme).sign(.request, method: "POST", pathAndQuery: "/v1/x", body: [7], timestamp: H.timestamp, nonce: H.nonce)
        let value = try #require(signed.authorization)
        let parameters = value.split(separator: " ", maxSplits: 1)[1].split(separator: ",")
        let reordered = "JL1-ED25519 " + parameters.reversed().joined(separator: ", ")
        let keyID = try H.verifier(scheme).verify(.request, method: "POST", pathAndQuery: "/v1/x", headers: [("aUTHORIZATION", reordered)], body: [7], now: H.timestamp)
        #expect(keyID == H.keyID)
        #expect(value.hasPrefix(#"JL1-ED25519 keyid="k2025",nonce="n0nceAbcdefGhijk_123",timestamp="1763700000",signature=""#))
        #expect(signed.message == Array("POST\n/v1/x\n1763700000\nn0nceAbcdefGhijk_123\n\u{7}\n".utf8))
    }

    @Test func jl1ResponseHeadersAndMessage() throws {
        let scheme = H.scheme(.jl1, .hmacSHA256)
        let signed = try H.signer(scheme).sign(.response, body: Array("{}".utf8), timestamp: H.timestamp, nonce: H.nonce)
        #expect(signed.headers.map(\.name) == ["JL-Timestamp", "JL-Nonce", "JL-Signature", "JL-Key-Id"])
        #expect(signed.message == Array("1763700000\nn0nceAbcdefGhijk_123\n{}\n".utf8))
        let lowered = signed.headers.map { ($0.name.lowercased(), $0.value) }
        #expect(try H.verifier(scheme).verify(.response, headers: lowered, body: Array("{}".utf8), now: H.timestamp) == H.keyID)
    }

    @Test func wechatpayRequiresItsMerchantIDAndSignatureType() throws {
        let scheme = H.scheme(.wechatpayV3, .rsaSHA256)
        let request = try H.exchange(scheme, .request)
        let value = try #require(request.headers.first?.value)
        #expect(value.hasPrefix(#"WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str=""#))
        H.expectError(.headerMalformed(field: "Authorization.mchid"), { try H.verify(H.verifier(scheme), .request, request.replacing("1900000109", with: "1900000110")) }, "other merchant")
        H.expectError(.headerMalformed(field: "Authorization.mchid"), { try H.verify(H.verifier(scheme), .request, request.replacing(#"mchid="1900000109","#, with: "")) }, "no merchant")

        let callback = try H.exchange(scheme, .callback)
        #expect(callback.headers.contains { $0 == ("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048") })
        H.expectError(.algorithmMismatch, { try H.verify(H.verifier(scheme), .callback, callback.replacing("WECHATPAY2-SHA256-RSA2048", with: "WECHATPAY2-SM2-WITH-SM3")) }, "type")
        var repeated = callback
        repeated.headers.append(("wechatpay-nonce", H.nonce))
        H.expectError(.headerMalformed(field: "Wechatpay-Nonce repeated"), { try H.verify(H.verifier(scheme), .callback, repeated) }, "repeated header")
    }

    @Test func rotationSignsWithTheNewKeyWhileTheOldStillVerifies() throws {
        let scheme = H.scheme(.jl1, .ed25519)
        let old = SigningKeyRing.Entry(id: "k2024", key: Fixtures.signingKey(.ed25519, other: true), validFromSeconds: 0, validUntilSeconds: H.timestamp + 1000)
        let new = SigningKeyRing.Entry(id: "k2025", key: Fixtures.signingKey(.ed25519), validFromSeconds: H.timestamp - 1000)
        let signer = try PartnerSigner(scheme: scheme, keyRing: KeyRing([old, new]))
        let signed = try signer.sign(.request, method: "GET", pathAndQuery: "/v1/x", body: [], timestamp: H.timestamp, nonce: H.nonce)
        #expect(signed.keyID == "k2025")
        let early = try signer.sign(.request, method: "GET", pathAndQuery: "/v1/x", body: [], timestamp: H.timestamp - 2000, nonce: H.nonce)
        #expect(early.keyID == "k2024")
        // The verifier (H.verifier) holds both: a message under the old key still verifies in the overlap.
        let oldSigner = try PartnerSigner(scheme: scheme, keyRing: KeyRing([SigningKeyRing.Entry(id: "k2024", key: Fixtures.signingKey(.ed25519, other: true))]))
        let late = try oldSigner.sign(.request, method: "GET", pathAndQuery: "/v1/x", body: [], timestamp: H.timestamp, nonce: H.nonce)
        #expect(try H.verifier(scheme).verify(.request, method: "GET", pathAndQuery: "/v1/x", headers: late.headers, body: [], now: H.timestamp) == "k2024")
    }

    @Test func aKeyOutsideItsWindowDoesNotVerify() throws {
        let scheme = H.scheme(.jl1, .hmacSHA256)
        let signed = try H.signer(scheme).sign(.request, method: "GET", pathAndQuery: "/v1/x", body: [], timestamp: H.timestamp, nonce: H.nonce)
        let ring = try VerifyingKeyRing([.init(id: H.keyID, key: Fixtures.signingKey(.hmacSHA256).verifyingKey, validUntilSeconds: H.timestamp)])
        let verifier = try PartnerVerifier(scheme: scheme, keyRing: ring, replayGuard: NonceReplayGuard())
        #expect(throws: SigningError.keyNotValidAtTime) {
            try verifier.verify(.request, method: "GET", pathAndQuery: "/v1/x", headers: signed.headers, body: [], now: H.timestamp)
        }
    }

    @Test func signerRejectsInputThatWouldShiftTheMessageLines() throws {
        let signer = try H.signer(H.scheme(.jl1, .hmacSHA256))
        #expect(throws: SigningError.invalidInput(field: "pathAndQuery")) {
            try signer.sign(.request, method: "GET", pathAndQuery: "/v1/x\n123", body: [], timestamp: H.timestamp, nonce: H.nonce)
        }
        #expect(throws: SigningError.invalidInput(field: "method")) {
            try signer.sign(.request, method: "GET\n", pathAndQuery: "/v1/x", body: [], timestamp: H.timestamp, nonce: H.nonce)
        }
        #expect(throws: SigningError.invalidInput(field: "nonce")) {
            try signer.sign(.request, method: "GET", pathAndQuery: "/v1/x", body: [], timestamp: H.timestamp, nonce: "has space in it 123")
        }
    }
}
