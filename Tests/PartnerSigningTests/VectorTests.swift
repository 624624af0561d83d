import Dispatch
import Synchronization
import Testing
@testable import PartnerSigning

/// Every published vector in shared/vectors/signing-vectors.json.
@Suite struct VectorTests {
    @Test func hmacSHA256MatchesRFC4231() throws {
        let cases = try #require(Fixtures.vectors()["hmac_sha256"] as? [[String: String]])
        #expect(cases.count >= 3)
        for c in cases {
            let key = try HMACSHA256(key: Fixtures.hex(c["key_hex"]!))
            let data = Fixtures.hex(c["data_hex"]!)
            let mac = try key.authenticationCode(for: data)
            #expect(Fixtures.hexString(mac) == c["mac_hex"]!.lowercased(), "\(c["source"]!)")
            #expect(key.isValidAuthenticationCode(Fixtures.hex(c["mac_hex"]!), for: data))
            var flipped = mac
            flipped[31] ^= 1
            #expect(!key.isValidAuthenticationCode(flipped, for: data))
        }
    }

    @Test func sm3MatchesGMT0004() throws {
        let cases = try #require(Fixtures.vectors()["sm3"] as? [[String: String]])
        #expect(cases.count == 2)
        for c in cases {
            #expect(Fixtures.hexString(SM3.hash(Fixtures.hex(c["data_hex"]!))) == c["digest_hex"]!.lowercased(), "\(c["source"]!)")
        }
    }

    @Test func ed25519MatchesRFC8032() throws {
        let cases = try #require(Fixtures.vectors()["ed25519"] as? [[String: String]])
        #expect(cases.count == 2)
        for c in cases {
            let key = try Ed25519.Signing.PrivateKey(rawRepresentation: Fixtures.hex(c["seed_hex"]!))
            let message = Fixtures.hex(c["message_hex"]!)
            let signature = try key.signature(for: message)
            #expect(Fixtures.hexString(signature) == c["signature_hex"]!.lowercased(), "\(c["source"]!)")
            let publicKey = try Ed25519.Signing.PublicKey(rawRepresentation: Fixtures.hex(c["public_hex"]!))
            #expect(publicKey.isValidSignature(signature, for: message))
            #expect(!publicKey.isValidSignature(signature, for: message + [0]))
        }
    }

    @Test func sm2AnnexAVerifiesWithIDAndFailsWithEmptyID() throws {
        let cases = try #require(Fixtures.vectors()["sm2_sm3"] as? [[String: String]])
        #expect(cases.count == 1)
        for c in cases {
            let key = try SM2.Signing.PublicKey(pemRepresentation: c["public_key_pem"]!)
            let message = Array(c["message_ascii"]!.utf8)
            let id = Array(c["id_ascii"]!.utf8)
            let der = Fixtures.hex(c["signature_der_hex"]!)
            let raw = Fixtures.hex(c["r_hex"]!) + Fixtures.hex(c["s_hex"]!)
            #expect(key.isValidSignature(der, for: message, id: id, encoding: .der))
            #expect(key.isValidSignature(raw, for: message, id: id, encoding: .raw))
            #expect(!key.isValidSignature(der, for: message, id: [], encoding: .der))
            #expect(!key.isValidSignature(der, for: Array("message digesT".utf8), id: id, encoding: .der))
            #expect(try SM2.rawSignature(fromDER: der) == raw)
            #expect(try SM2.derSignature(fromRaw: raw) == der)
        }
    }

    @Test func sha256MatchesFIPS180() {
        #expect(Fixtures.hexString(SHA256.hash("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Fixtures.hexString(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Fixtures.hexString(SHA256.hash([UInt8](repeating: 0x61, count: 1_000_000)))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Digest contexts are reused between calls and threads: no call may see another's state.
    @Test func sha256ContextsCarryNothingBetweenCallsOrThreads() {
        let inputs: [([UInt8], String)] = [
            (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ]
        let mismatches = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for i in 0..<300 {
                let (input, expected) = inputs[(i + thread) % inputs.count]
                if Fixtures.hexString(SHA256.hash(input)) != expected { mismatches.withLock { $0 += 1 } }
            }
        }
        #expect(mismatches.withLock { $0 } == 0)
    }
}
