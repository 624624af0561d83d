import Testing
@testable import PartnerSigning

@Suite struct PrimitiveTests {
    let message = Array("POST\n/v1/loans\n1763700000\nabc\n{}\n".utf8)

    @Test func rsaIsDeterministicAndRoundTripsThroughPEM() throws {
        let key = Fixtures.rsa
        let signature = try key.signature(for: message)
        #expect(signature.count == 256)
        #expect(try key.signature(for: message) == signature)
        let reloaded = try RSA.Signing.PrivateKey(pemRepresentation: key.pemRepresentation)
        #expect(try reloaded.signature(for: message) == signature)
        let publicKey = try RSA.Signing.PublicKey(pemRepresentation: key.publicKey.pemRepresentation)
        #expect(publicKey.isValidSignature(signature, for: message))
        #expect(!publicKey.isValidSignature(signature, for: message + [0]))
        #expect(try !Fixtures.rsaOther.publicKey.isValidSignature(signature, for: message))
    }

    @Test func rsaUnder2048BitsIsRefused() throws {
        #expect(throws: SigningError.invalidInput(field: "bits")) { try RSA.Signing.PrivateKey.generate(bits: 1024) }
        let small = try PKey.generate("RSA", rsaBits: 1024)
        #expect(throws: SigningError.keyInvalid(reason: "RSA key shorter than 2048 bits")) { try RSA.Signing.PrivateKey(pemRepresentation: small.privatePEM()) }
        #expect(throws: SigningError.keyInvalid(reason: "RSA key shorter than 2048 bits")) { try RSA.Signing.PublicKey(pemRepresentation: small.publicPEM()) }
    }

    @Test func keysOfTheWrongKindAreRefused() throws {
        #expect(throws: SigningError.keyInvalid(reason: "not an SM2 key")) { try SM2.Signing.PrivateKey(pemRepresentation: Fixtures.ed25519.pemRepresentation) }
        #expect(throws: SigningError.keyInvalid(reason: "not an RSA key")) { try RSA.Signing.PublicKey(pemRepresentation: Fixtures.sm2.publicKey.pemRepresentation) }
        #expect(throws: SigningError.keyInvalid(reason: "not a PEM key of the expected kind")) { try Ed25519.Signing.PublicKey(pemRepresentation: "garbage") }
    }

    @Test func sm2SignsWithTheIDItIsGivenInBothEncodings() throws {
        let key = Fixtures.sm2
        let publicKey = try key.publicKey
        for encoding in SM2.SignatureEncoding.allCases {
            let signature = try key.signature(for: message, encoding: encoding)
            if encoding == .raw { #expect(signature.count == 64) } else { #expect((68...72).contains(signature.count)) }
            #expect(publicKey.isValidSignature(signature, for: message, encoding: encoding))
            #expect(!publicKey.isValidSignature(signature, for: message, id: [], encoding: encoding))
            #expect(!publicKey.isValidSignature(signature, for: message, id: Array("ALICE123@YAHOO.COM".utf8), encoding: encoding))
            let custom = try key.signature(for: message, id: Array("ALICE123@YAHOO.COM".utf8), encoding: encoding)
            #expect(publicKey.isValidSignature(custom, for: message, id: Array("ALICE123@YAHOO.COM".utf8), encoding: encoding))
        }
        // Randomised: two signatures of one message differ.
        #expect(try key.signature(for: message) != key.signature(for: message))
    }

    @Test func sm2DERMustBeCanonical() throws {
        let der = try Fixtures.sm2.signature(for: message)
        #expect(throws: SigningError.signatureMalformed) { try SM2.rawSignature(fromDER: der + [0]) }
        #expect(throws: SigningError.signatureMalformed) { try SM2.rawSignature(fromDER: Array(der.dropLast())) }
        #expect(throws: SigningError.signatureMalformed) { try SM2.derSignature(fromRaw: [UInt8](repeating: 1, count: 63)) }
        #expect(try SM2.derSignature(fromRaw: SM2.rawSignature(fromDER: der)) == der)
    }

    @Test func ed25519RoundTripsThroughPEMAndDER() throws {
        let key = Fixtures.ed25519
        let signature = try key.signature(for: message)
        let reloaded = try Ed25519.Signing.PrivateKey(pemRepresentation: key.pemRepresentation)
        #expect(try reloaded.signature(for: message) == signature)
        let publicKey = try Ed25519.Signing.PublicKey(pemRepresentation: key.publicKey.pemRepresentation)
        // A failed verification must not poison the pooled context for the next call.
        #expect(!publicKey.isValidSignature(signature, for: []))
        #expect(publicKey.isValidSignature(signature, for: message))
    }

    @Test func aesGCMRoundTripsAndDetectsTampering() throws {
        let key = [UInt8](repeating: 7, count: 32)
        let plaintext = Array("6222 0212 3456 7890".utf8)
        let box = try AES.GCM.seal(plaintext, key: key, authenticating: Array("loan L-1".utf8))
        #expect(box.ciphertext != plaintext)
        #expect(try AES.GCM.open(box, key: key, authenticating: Array("loan L-1".utf8)) == plaintext)
        var tampered = box
        tampered.ciphertext[0] ^= 1
        #expect(throws: SigningError.decryptionFailed) { try AES.GCM.open(tampered, key: key, authenticating: Array("loan L-1".utf8)) }
        #expect(throws: SigningError.decryptionFailed) { try AES.GCM.open(box, key: key, authenticating: Array("loan L-2".utf8)) }
        #expect(throws: SigningError.decryptionFailed) { try AES.GCM.open(box, key: [UInt8](repeating: 8, count: 32), authenticating: Array("loan L-1".utf8)) }
        #expect(throws: SigningError.invalidInput(field: "key")) { try AES.GCM.seal(plaintext, key: [1, 2, 3]) }
        // NIST GCM test case 13 (AES-256, zero key, zero IV, empty plaintext).
        let empty = try AES.GCM.seal([], key: [UInt8](repeating: 0, count: 32), nonce: [UInt8](repeating: 0, count: 12))
        #expect(Fixtures.hexString(empty.tag) == "530f8afbc74536b9a963b4f1c4cb738b")
    }

    @Test func constantTimeEqualsComparesContentAndLength() {
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2]))
        #expect(ConstantTime.equals([], []))
    }

    @Test func base64IsStrictAndRoundTrips() {
        var rng = SplitMix64(seed: 0xBA5E_0064)
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes, "seed 0xBA5E0064 length \(length)")
        }
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8=")
        for bad in ["Zm8", "Zm9=", "Zm8=Zm8=", "Zm 8=", "Zm-8", "===="] { #expect(Base64.decode(bad) == nil, "\(bad)") }
        // RFC 4648 §10, both ways, and from a substring of a longer text.
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
            #expect(Base64.decode(encoded) == Array(plain.utf8))
            #expect(Base64.decode(("x" + encoded + "y").dropFirst().dropLast()) == Array(plain.utf8))
        }
        #expect(Base64.encode([0xFB, 0xFF, 0xBF]) == "+/+/")
    }

    @Test func responseNoncesAreFreshAndOfTheNonceAlphabet() {
        var seen = Set<String>()
        for _ in 0..<2_000 {
            let nonce = PartnerSigner.makeNonce()
            #expect(nonce.utf8.count == 32)
            #expect(nonce.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) })
            #expect(SigningSyntax.isValidNonce(nonce))
            seen.insert(nonce)
        }
        #expect(seen.count == 2_000)
    }

    @Test func keyRingSignsWithTheNewestValidKeyAndVerifiesTheNamedOne() throws {
        let old = KeyRing<String>.Entry(id: "k2024", key: "old", validFromSeconds: 100, validUntilSeconds: 2000)
        let new = KeyRing<String>.Entry(id: "k2025", key: "new", validFromSeconds: 1000, validUntilSeconds: 3000)
        let ring = try KeyRing([new, old])
        #expect(try ring.newestValid(at: 500).id == "k2024")
        #expect(try ring.newestValid(at: 1500).id == "k2025")
        #expect(try ring.newestValid(at: 2500).id == "k2025")
        #expect(throws: SigningError.noValidSigningKey) { try ring.newestValid(at: 3000) }
        #expect(try ring.key(id: "k2024", at: 1500).key == "old")
        #expect(throws: SigningError.keyNotValidAtTime) { try ring.key(id: "k2024", at: 2000) }
        #expect(throws: SigningError.keyUnknown) { try ring.key(id: "k2023", at: 1500) }
        #expect(throws: SigningError.invalidInput(field: "key id repeated")) { try KeyRing([old, old]) }
        #expect(throws: SigningError.invalidInput(field: "key id")) { try KeyRing([KeyRing<String>.Entry(id: "bad id", key: "x")]) }
    }

    @Test func signerAndVerifierRefuseKeysOfAnotherAlgorithm() throws {
        let ring = try SigningKeyRing([.init(id: "k", key: Fixtures.signingKey(.ed25519))])
        #expect(throws: SigningError.algorithmMismatch) { try PartnerSigner(scheme: SchemeHarness.scheme(.jl1, .rsaSHA256), keyRing: ring) }
        #expect(throws: SigningError.keyInvalid(reason: "HMAC secret shorter than 32 bytes")) { try SigningKey(algorithm: .hmacSHA256, material: [1, 2, 3]) }
    }

    @Test func sortedParamsMessageFollowsTheAlipayRules() throws {
        let parameters = try SortedParameters.parse(
            pathAndQuery: "/gateway.do?b=2&a=1", body: Array(#"{"z":"","c":{"k": [1, "x"]},"n":null,"sign":"S","sign_type":"RSA2","d":"\u4e2d"}"#.utf8))
        let request = String(decoding: CanonicalMessage.sortedParameters(parameters, includeSignType: true), as: UTF8.self)
        #expect(request == #"a=1&b=2&c={"k": [1, "x"]}&d=中&sign_type=RSA2"#)
        let callback = String(decoding: CanonicalMessage.sortedParameters(parameters, includeSignType: false), as: UTF8.self)
        #expect(callback == #"a=1&b=2&c={"k": [1, "x"]}&d=中"#)
        let form = try SortedParameters.parse(pathAndQuery: "/", body: Array("x=a+b%26c&y=%E4%B8%AD".utf8))
        #expect(form.map(\.value) == ["a b&c", "中"])
    }
}
