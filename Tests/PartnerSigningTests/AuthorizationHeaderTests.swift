import Testing
@testable import PartnerSigning

/// The `Authorization` parameter parser on its own: every near miss gets its precise error, and
/// on random input it answers exactly as the parser it replaced (kept below as the reference).
@Suite struct AuthorizationHeaderTests {
    static let good = #"JL1-HMAC-SHA256 keyid="k2025",nonce="n0nceAbcdefGhijk_123",timestamp="1763700000",signature="AAAA""#

    func parse(_ value: String, trusted: Bool = false) -> Result<AuthorizationHeader, SigningError> {
        Result { () throws(SigningError) in try AuthorizationHeader(parsing: value, trustedPrintable: trusted) }
    }

    func expectMalformed(_ value: String, _ field: String, sourceLocation: SourceLocation = #_sourceLocation) {
        switch parse(value) {
        case .success: Issue.record("accepted: \(value.prefix(80))", sourceLocation: sourceLocation)
        case .failure(let error): #expect(error == .headerMalformed(field: field), "\(value.prefix(80))", sourceLocation: sourceLocation)
        }
    }

    @Test func aWellFormedHeaderGivesEachValueAndItsToken() throws {
        let header = try parse(Self.good).get()
        #expect(header.tokenIs("JL1-HMAC-SHA256"))
        #expect(!header.tokenIs("JL1-HMAC-SHA25"))
        #expect(!header.tokenIs("JL1-HMAC-SHA2566"))
        #expect(header.value("keyid") == "k2025")
        #expect(header.value("nonce") == "n0nceAbcdefGhijk_123")
        #expect(header.value("timestamp") == "1763700000")
        #expect(header.value("signature") == "AAAA")
        #expect(header.value("keyi") == nil)
        #expect(header.value("Keyid") == nil)
        let range = try #require(header.range(of: "signature"))
        #expect(try header.withBytes(of: range) { Array($0) } == Array("AAAA".utf8))
        // Spaces around separators and inside values are allowed, as before.
        let spaced = try parse(#"T   a="x y" ,  b="",c="=,""#).get()
        #expect(spaced.value("a") == "x y")
        #expect(spaced.value("b") == "")
        #expect(spaced.value("c") == "=,")
        // A token and nothing else after the space: no parameters, not an error.
        #expect(try parse("JL1 ").get().value("keyid") == nil)
    }

    @Test func nearMissesNameWhatIsWrong() {
        expectMalformed("JL1-HMAC-SHA256", "Authorization")  // no space: no parameters at all
        expectMalformed(#" JL1 a="b""#, "Authorization")  // empty token
        expectMalformed(#"JL1 keyid=k2025"#, "Authorization.keyid")  // unquoted value
        expectMalformed(#"JL1 keyid="k2025"#, "Authorization")  // unterminated quote
        expectMalformed(#"JL1 keyid"#, "Authorization")  // name without value
        expectMalformed(#"JL1 ="x""#, "Authorization")  // value without name
        expectMalformed(#"JL1 key.id="x""#, "Authorization")  // name outside the token bytes
        expectMalformed(#"JL1 a="1",,b="2""#, "Authorization")
        expectMalformed(#"JL1 a="1" b="2""#, "Authorization")  // missing comma
        expectMalformed(#"JL1 a="1";b="2""#, "Authorization")
        expectMalformed(#"JL1 a="1","#, "Authorization")  // trailing comma
        expectMalformed(#"JL1 a="1", "#, "Authorization")
        expectMalformed("JL1 a=\"1\u{7}\"", "Authorization")  // control character inside a value
        expectMalformed("JL1 a=\"caf\u{e9}\"", "Authorization")  // beyond ASCII
        expectMalformed("JL1 a=\"1\"\t", "Authorization")
    }

    @Test func aRepeatedParameterIsNamedUnlessItsNameIsLong() {
        expectMalformed(#"JL1 keyid="a",nonce="n",keyid="b""#, "Authorization.keyid repeated")
        expectMalformed(#"JL1 a="1",a="1""#, "Authorization.a repeated")
        let long = String(repeating: "n", count: 33)
        expectMalformed(#"JL1 \#(long)="1",\#(long)="2""#, "Authorization.<parameter> repeated")
        expectMalformed(#"JL1 \#(long)=1"#, "Authorization.<parameter>")
        // Names that share a prefix are different names.
        #expect((try? parse(#"JL1 a="1",ab="2",b="3""#).get()) != nil)
    }

    @Test func sizeAndCountLimitsAreExact() throws {
        let sixteen = "T " + (0..<16).map { #"p\#($0)="v""# }.joined(separator: ",")
        let header = try parse(sixteen).get()
        #expect(header.value("p15") == "v")
        expectMalformed(sixteen + #",p16="v""#, "Authorization")
        let prefix = #"T a=""#
        let atLimit = prefix + String(repeating: "x", count: AuthorizationHeader.valueBytesMax - prefix.utf8.count - 1) + "\""
        #expect(atLimit.utf8.count == AuthorizationHeader.valueBytesMax)
        #expect(try parse(atLimit).get().value("a")?.utf8.count == AuthorizationHeader.valueBytesMax - prefix.utf8.count - 1)
        expectMalformed(prefix + "x" + String(atLimit.dropFirst(prefix.utf8.count)), "Authorization")
        // Far past the limit: refused before any scan, even when the caller vouches for the bytes.
        let huge = prefix + String(repeating: "x", count: 1 << 20) + "\""
        #expect(throws: SigningError.headerMalformed(field: "Authorization")) { try AuthorizationHeader(parsing: huge, trustedPrintable: true) }
    }

    @Test func tokenBytesAreExactlyLettersDigitsUnderscoreAndHyphen() {
        for byte in 0...255 {
            let b = UInt8(byte)
            let expected = (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x5F || b == 0x2D
            #expect(SigningSyntax.isTokenByte(b) == expected, "byte \(byte)")
        }
    }

    /// Random headers from the bytes that matter: the parser answers as the one it replaced —
    /// the same values, or the same error.
    @Test func randomHeadersAreParsedAsTheReferenceParsesThem() {
        let seed: UInt64 = 0x5EED_A17
        var rng = SplitMix64(seed: seed)
        let alphabet = Array(#"JL1 a="b,c= "#.utf8) + [0x09, 0x7F, 0x5F, 0x2D]
        let names = ["a", "b", "c", "ab", "ba", "a_", "-"]
        for iteration in 0..<20_000 {
            let text: String
            if iteration % 2 == 0 {
                text = String(decoding: (0..<Int(rng.next() % 40)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }, as: UTF8.self)
            } else {
                // Mostly well-formed, with one byte changed now and then.
                var parts: [String] = []
                for _ in 0..<Int(rng.next() % 18) { parts.append(#"\#(names[Int(rng.next() % 7)])="\#(rng.next() % 1000)""#) }
                var bytes = Array(("JL1 " + parts.joined(separator: rng.next() % 2 == 0 ? "," : ", ")).utf8)
                if rng.next() % 3 == 0, !bytes.isEmpty { bytes[Int(rng.next() % UInt64(bytes.count))] = alphabet[Int(rng.next() % UInt64(alphabet.count))] }
                text = String(decoding: bytes, as: UTF8.self)
            }
            let expected = ReferenceAuthorizationHeader.parse(text)
            switch (parse(text), expected) {
            case (.success(let header), .success(let parameters)):
                for name in names {
                    #expect(header.value(name) == parameters.first(where: { $0.0 == name })?.1, "seed \(seed), iteration \(iteration): \(text)")
                }
            case (.failure(let error), .failure(let reference)):
                #expect(error == reference, "seed \(seed), iteration \(iteration): \(text)")
            case (let got, let want):
                Issue.record("seed \(seed), iteration \(iteration): \(text): got \(got), reference \(want)")
            }
        }
    }
}

/// The parser as it was before it read the header in place (over a copied byte array),
/// condensed: what the current one must agree with.
enum ReferenceAuthorizationHeader {
    static func parse(_ value: String) -> Result<[(String, String)], SigningError> {
        let bytes = Array(value.utf8)
        func fail(_ field: String = "Authorization") -> Result<[(String, String)], SigningError> { .failure(.headerMalformed(field: field)) }
        func field(_ name: Range<Int>) -> String {
            name.count <= 32 ? "Authorization." + String(decoding: bytes[name], as: UTF8.self) : "Authorization.<parameter>"
        }
        guard bytes.count <= 8192, bytes.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) else { return fail() }
        guard let space = bytes.firstIndex(of: 0x20), space > 0 else { return fail() }
        var parameters: [(name: Range<Int>, value: Range<Int>)] = []
        func skip(_ start: Int) -> Int {
            var i = start
            while i < bytes.count, bytes[i] == 0x20 { i += 1 }
            return i
        }
        var i = skip(space)
        while i < bytes.count {
            guard parameters.count < 16 else { return fail() }
            let nameStart = i
            while i < bytes.count, SigningSyntax.isTokenByte(bytes[i]) { i += 1 }
            let name = nameStart..<i
            guard !name.isEmpty, i < bytes.count, bytes[i] == UInt8(ascii: "=") else { return fail() }
            i += 1
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return fail(field(name)) }
            i += 1
            let valueStart = i
            while i < bytes.count, bytes[i] != UInt8(ascii: "\"") { i += 1 }
            guard i < bytes.count else { return fail() }
            guard !parameters.contains(where: { bytes[$0.name].elementsEqual(bytes[name]) }) else { return fail(field(name) + " repeated") }
            parameters.append((name, valueStart..<i))
            i = skip(i + 1)
            if i < bytes.count {
                guard bytes[i] == UInt8(ascii: ",") else { return fail() }
                i = skip(i + 1)
                guard i < bytes.count else { return fail() }
            }
        }
        return .success(parameters.map { (String(decoding: bytes[$0.name], as: UTF8.self), String(decoding: bytes[$0.value], as: UTF8.self)) })
    }
}

@Suite struct Base64DecodeTests {
    /// Random texts over the alphabet, padding and a stray byte: whatever decodes is canonical
    /// (encodes back to the very text), so no second spelling of a signature is accepted; and
    /// every canonical text decodes.
    @Test func onlyCanonicalTextsDecode() {
        let seed: UInt64 = 0xBA5E_D0DE
        var rng = SplitMix64(seed: seed)
        let symbols = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let alphabet = symbols + Array("====-".utf8)
        var decodedCount = 0
        for iteration in 0..<50_000 {
            let length = 4 * Int(1 + rng.next() % 3)
            var bytes = (0..<length).map { _ in symbols[Int(rng.next() % UInt64(symbols.count))] }
            // Some padding at the end, or a stray byte anywhere.
            switch rng.next() % 4 {
            case 0: bytes[length - 1] = UInt8(ascii: "=")
            case 1: bytes[length - 1] = UInt8(ascii: "="); bytes[length - 2] = UInt8(ascii: "=")
            case 2: bytes[Int(rng.next() % UInt64(length))] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
            default: break
            }
            let text = String(decoding: bytes, as: UTF8.self)
            if let decoded = Base64.decode(text) {
                decodedCount += 1
                #expect(Base64.encode(decoded) == text, "seed \(seed), iteration \(iteration): \(text)")
            } else if !text.contains("=") && !text.contains("-") {
                // Whole groups of alphabet symbols, unpadded: always canonical.
                Issue.record("seed \(seed), iteration \(iteration): canonical text refused: \(text)")
            }
        }
        #expect(decodedCount > 10_000, "seed \(seed)")
    }
}
