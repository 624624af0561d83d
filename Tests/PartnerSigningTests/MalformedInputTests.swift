import Testing
@testable import PartnerSigning

/// Hostile or broken headers and parameters: each gets its precise code, none crashes.
@Suite struct MalformedInputTests {
    typealias H = SchemeHarness

    static func jl1Request(_ authorization: [String], body: [UInt8] = []) throws -> () throws -> String {
        let scheme = H.scheme(.jl1, .hmacSHA256)
        let verifier = try H.verifier(scheme)
        return {
            try verifier.verify(.request, method: "POST", pathAndQuery: "/v1/x", headers: authorization.map { ("Authorization", $0) }, body: body, now: H.timestamp)
        }
    }

    static let good = #"JL1-HMAC-SHA256 keyid="k2025",nonce="n0nceAbcdefGhijk_123",timestamp="1763700000",signature="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=""#

    @Test func missingAuthorizationIsSignatureMissing() throws {
        H.expectError(.signatureMissing, try Self.jl1Request([]), "no header")
        H.expectError(.signatureMissing, try Self.jl1Request(["JL1-HMAC-SHA256 "]), "no parameters")
        H.expectError(.signatureMissing, try Self.jl1Request([#"JL1-HMAC-SHA256 keyid="k2025",nonce="n0nceAbcdefGhijk_123",timestamp="1763700000""#]), "no signature param")
    }

    @Test func repeatedHeaderOrParameterIsMalformed() throws {
        H.expectError(.headerMalformed(field: "Authorization repeated"), try Self.jl1Request([Self.good, Self.good]), "header twice")
        let twice = Self.good.replacingOccurrences(of: #"keyid="k2025","#, with: #"keyid="k2025",keyid="k2024","#)
        H.expectError(.headerMalformed(field: "Authorization.keyid repeated"), try Self.jl1Request([twice]), "param twice")
    }

    @Test func missingParametersNameTheField() throws {
        let noNonce = Self.good.replacingOccurrences(of: #"nonce="n0nceAbcdefGhijk_123","#, with: "")
        H.expectError(.headerMalformed(field: "Authorization.nonce"), try Self.jl1Request([noNonce]), "no nonce")
        let noKey = Self.good.replacingOccurrences(of: #"keyid="k2025","#, with: "")
        H.expectError(.headerMalformed(field: "Authorization.keyid"), try Self.jl1Request([noKey]), "no keyid")
        let noTime = Self.good.replacingOccurrences(of: #"timestamp="1763700000","#, with: "")
        H.expectError(.headerMalformed(field: "Authorization.timestamp"), try Self.jl1Request([noTime]), "no timestamp")
        let badTime = Self.good.replacingOccurrences(of: "1763700000", with: "-1763700000")
        H.expectError(.headerMalformed(field: "Authorization.timestamp"), try Self.jl1Request([badTime]), "signed timestamp")
        let shortNonce = Self.good.replacingOccurrences(of: "n0nceAbcdefGhijk_123", with: "short")
        H.expectError(.headerMalformed(field: "Authorization.nonce"), try Self.jl1Request([shortNonce]), "short nonce")
    }

    @Test func headerNamesMatchASCIICaseInsensitivelyAndNothingElse() throws {
        typealias V = PartnerVerifier
        #expect(V.asciiCaseInsensitiveEquals("Authorization", "aUTHORIZATION"))
        #expect(V.asciiCaseInsensitiveEquals("JL-Key-Id", "jl-key-id"))
        #expect(V.asciiCaseInsensitiveEquals("", ""))
        #expect(!V.asciiCaseInsensitiveEquals("Authorization", "Authorizatio"))
        #expect(!V.asciiCaseInsensitiveEquals("Authorization", "Authorizatiom"))
        // Pairs a bare `| 0x20` would fold together: only letters have case.
        #expect(!V.asciiCaseInsensitiveEquals("[", "{"))
        #expect(!V.asciiCaseInsensitiveEquals("@", "`"))
        #expect(!V.asciiCaseInsensitiveEquals("a-b", "a\rb"))
        // A header named in another case is found (and fails like the canonical name, here on the
        // all-zero signature); one under another name is not.
        let verifier = try H.verifier(H.scheme(.jl1, .hmacSHA256))
        for name in ["Authorization", "AUTHORIZATION", "authorization"] {
            H.expectError(.signatureInvalid, {
                try verifier.verify(.request, method: "POST", pathAndQuery: "/v1/x", headers: [(name, Self.good)], body: [], now: H.timestamp)
            }, name)
        }
        H.expectError(.signatureMissing, {
            try verifier.verify(.request, method: "POST", pathAndQuery: "/v1/x", headers: [("Authorisation", Self.good)], body: [], now: H.timestamp)
        }, "other name")
    }

    @Test func printableASCIIIsExactlyTheBytesFrom0x20To0x7E() {
        for byte in 0...255 {
            let expected = byte >= 0x20 && byte <= 0x7E
            #expect(SigningSyntax.isPrintableASCII([UInt8(byte)]) == expected, "byte \(byte)")
            #expect(SigningSyntax.isPrintableASCII([0x41, UInt8(byte), 0x41]) == expected, "byte \(byte) inside")
        }
    }

    @Test func wrongSchemeTokenIsAlgorithmMismatch() throws {
        H.expectError(.algorithmMismatch, try Self.jl1Request([Self.good.replacingOccurrences(of: "JL1-HMAC-SHA256", with: "JL1-RSA-SHA256")]), "token")
    }

    @Test func syntaxErrorsAreMalformed() throws {
        for bad in [
            "JL1-HMAC-SHA256", #"JL1-HMAC-SHA256 keyid=k2025"#, #"JL1-HMAC-SHA256 keyid="k2025"#,
            #"JL1-HMAC-SHA256 keyid="k2025",,nonce="x""#, #"JL1-HMAC-SHA256 keyid="k2025" nonce="x""#, #"JL1-HMAC-SHA256 ="x""#,
            #"JL1-HMAC-SHA256 keyid="k2025","#, " JL1-HMAC-SHA256 keyid=\"k\"",
        ] {
            do {
                _ = try Self.jl1Request([bad])()
                Issue.record("accepted: \(bad)")
            } catch {
                #expect((error as? SigningError)?.code == "header_malformed", "\(bad)")
            }
        }
    }

    @Test func badBase64IsSignatureMalformed() throws {
        for bad in ["AAAA AAAA", "AAA", "AA==AA==", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "-_-_", "AB=="] {
            let header = Self.good.replacingOccurrences(of: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", with: bad)
            H.expectError(.signatureMalformed, try Self.jl1Request([header]), "base64 \(bad)")
        }
    }

    @Test func oneMegabyteValuesAreRejectedWithoutParsing() throws {
        let huge = String(repeating: "A", count: 1 << 20)
        let header = Self.good.replacingOccurrences(of: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", with: huge)
        H.expectError(.headerMalformed(field: "Authorization"), try Self.jl1Request([header]), "1 MB header")
        let scheme = H.scheme(.sortedParams, .rsaSHA256)
        let verifier = try H.verifier(scheme)
        H.expectError(.headerMalformed(field: "body"), {
            try verifier.verify(.callback, headers: [], body: Array(("sign=" + huge + huge).utf8), now: H.timestamp)
        }, "2 MB body")
        let oneMB = "sign_type=RSA2&key_id=k2025&nonce=n0nceAbcdefGhijk_123&timestamp=1763700000&sign=" + huge.dropLast(200)
        H.expectError(.signatureMalformed, { try verifier.verify(.callback, headers: [], body: Array(oneMB.utf8), now: H.timestamp) }, "1 MB sign")
    }

    @Test func nonUTF8IsMalformedNotACrash() throws {
        let repaired = String(decoding: [0x4A, 0x4C, 0x31, 0xFF, 0xFE, 0x20, 0x6B], as: UTF8.self)
        H.expectError(.headerMalformed(field: "Authorization"), try Self.jl1Request([repaired]), "U+FFFD in header")
        let scheme = H.scheme(.sortedParams, .hmacSHA256)
        let verifier = try H.verifier(scheme)
        let body: [UInt8] = Array("a=".utf8) + [0xC3, 0x28] + Array("&sign=AAAA".utf8)
        H.expectError(.headerMalformed(field: "parameters: not UTF-8"), { try verifier.verify(.callback, headers: [], body: body, now: H.timestamp) }, "form")
        let escaped = Array("a=%C3%28&sign=AAAA".utf8)
        H.expectError(.headerMalformed(field: "parameters: not UTF-8"), { try verifier.verify(.callback, headers: [], body: escaped, now: H.timestamp) }, "escaped")
    }

    @Test func sortedParamsMissingOrRepeatedParameters() throws {
        let scheme = H.scheme(.sortedParams, .hmacSHA256)
        let verifier = try H.verifier(scheme)
        func check(_ body: String, _ expected: SigningError) {
            H.expectError(expected, { try verifier.verify(.callback, headers: [], body: Array(body.utf8), now: H.timestamp) }, body)
        }
        let base = "sign_type=HMAC-SHA256&key_id=k2025&nonce=n0nceAbcdefGhijk_123&timestamp=1763700000"
        check(base, .signatureMissing)
        check(base + "&sign=", .signatureMissing)
        check(base + "&sign=AAAA&sign=AAAA", .headerMalformed(field: "parameters: a name given twice"))
        check("key_id=k2025&nonce=n0nceAbcdefGhijk_123&timestamp=1763700000&sign=AAAA", .headerMalformed(field: "sign_type"))
        check(base.replacingOccurrences(of: "HMAC-SHA256", with: "RSA2") + "&sign=AAAA", .algorithmMismatch)
        check(base.replacingOccurrences(of: "&timestamp=1763700000", with: "") + "&sign=AAAA", .headerMalformed(field: "timestamp"))
        check(base + "&sign=A%ZZ", .headerMalformed(field: "parameters: bad percent-escape"))
        check(#"{"sign":"AAAA","a":"#, .headerMalformed(field: "body: unterminated JSON value"))
        check(#"{"sign":"AAAA"} x"#, .headerMalformed(field: "body: text after the JSON object"))
        check("{" + String(repeating: #""a":{"#, count: 1) + String(repeating: "[", count: 100) + "}", .headerMalformed(field: "body: JSON nested too deep"))
        let many = (0..<300).map { "p\($0)=v" }.joined(separator: "&")
        check(many, .headerMalformed(field: "parameters: more than 256"))
    }

    @Test func randomHeadersNeverCrash() throws {
        // Fixed seed so a failure can be replayed; printed with every failure.
        var rng = SplitMix64(seed: 0x5EED_0003)
        let verifier = try H.verifier(H.scheme(.wechatpayV3, .rsaSHA256))
        let alphabet = Array(#"WECHATPAY2-SHA256-RSA2048 mchid="nonce_str=,signature=timestamp=serial_no=AZaz09+/=\"#.utf8) + [0, 0xFF, 0x7F]
        for iteration in 0..<2000 {
            let length = Int(rng.next() % 200)
            let bytes = (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            let value = String(decoding: bytes, as: UTF8.self)
            do {
                _ = try verifier.verify(.request, method: "POST", pathAndQuery: "/", headers: [("Authorization", value)], body: bytes, now: H.timestamp)
                Issue.record("random header verified (seed 0x5EED0003, iteration \(iteration))")
            } catch {
                #expect(!error.description.contains("signature=\""), "seed 0x5EED0003 iteration \(iteration)")
            }
            do {
                _ = try SortedParameters.parse(pathAndQuery: "/?" + value, body: bytes)
            } catch {
                // Any SigningError is fine; reaching here without a trap is the point.
            }
        }
    }

    @Test func errorDescriptionsCarryNoSecrets() throws {
        let secret = "SUPERSECRETSIGNATURE0123456789=="
        let header = Self.good.replacingOccurrences(of: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", with: secret)
        do {
            _ = try Self.jl1Request([header])()
        } catch {
            #expect(!String(describing: error).contains("SUPERSECRET"))
        }
        do {
            _ = try RSA.Signing.PrivateKey(pemRepresentation: "-----BEGIN PRIVATE KEY-----\nSUPERSECRET\n-----END PRIVATE KEY-----\n")
            Issue.record("garbage key loaded")
        } catch {
            #expect(!String(describing: error).contains("SUPERSECRET"))
            #expect(error.code == "key_invalid")
        }
    }
}

/// A small deterministic generator for property tests (SplitMix64).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
