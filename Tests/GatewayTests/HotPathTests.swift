import Testing
@testable import Gateway
import HTTP

/// The confirmation path's precomputed shortcuts must answer exactly what the general code does.
@Suite struct HotPathTests {
    @Test func resolvedCounterRendersOnlyOnceItHasCountedAndAddsToTheSameSeries() {
        let metrics = Metrics()
        metrics.describe(counter: "c_total", help: "Test counter.")
        let funded = metrics.counter("c_total", [("partner", "bank-a"), ("outcome", "funded")])
        #expect(!metrics.render().contains("c_total{"))

        funded.increment()
        funded.increment(by: 2)
        #expect(metrics.render().contains("c_total{partner=\"bank-a\",outcome=\"funded\"} 3\n"))

        // The string API and the handle feed one series, rendered once.
        metrics.increment("c_total", [("partner", "bank-a"), ("outcome", "funded")])
        let text = metrics.render()
        #expect(text.contains("c_total{partner=\"bank-a\",outcome=\"funded\"} 4\n"))
        #expect(text.components(separatedBy: "outcome=\"funded\"").count == 2)
        #expect(text.hasPrefix("# HELP c_total Test counter.\n# TYPE c_total counter\n"))
        #expect(metrics.counter("c_total", [("partner", "bank-a"), ("outcome", "funded")]) === funded)
    }

    @Test func resolvedCounterRendersLikeIncrementedOne() {
        let viaHandle = Metrics()
        let viaName = Metrics()
        for m in [viaHandle, viaName] { m.describe(counter: "x_total", help: "X.") }
        let a = viaHandle.counter("x_total", [("k", "b")])
        let b = viaHandle.counter("x_total", [("k", "a")])
        for _ in 0..<5 { a.increment() }
        b.increment()
        for _ in 0..<5 { viaName.increment("x_total", [("k", "b")]) }
        viaName.increment("x_total", [("k", "a")])
        #expect(viaHandle.render() == viaName.render())
    }

    @Test func fullFamilyHandsOutACounterThatIsNeverRendered() {
        let metrics = Metrics()
        for i in 0..<Metrics.seriesMax { metrics.increment("f_total", [("i", String(i))]) }
        let extra = metrics.counter("f_total", [("i", "extra")])
        extra.increment()
        #expect(!metrics.render().contains("i=\"extra\""))
        #expect(extra.value == 1)
    }

    @Test func objectBytesWriteWhatJSONWriterWrites() {
        let values: [String] = ["plain", "", "quote\"d", "back\\slash", "line\nbreak", "del\u{7F}", "del\u{7F}and\"quote", "tab\t", "ünïcødé", "\u{01}"]
        for (i, v) in values.enumerated() {
            var object = JSONObjectBytes()
            object.string("s\(v)", v)
            object.number("n", Int64(i) - 3)
            object.number("min", Int64.min)
            object.value("nested", .object([("a", .array([.null, .bool(true), .number("1.5"), .string(v)]))]))
            let expected = JSONWriter.string(.object([
                ("s\(v)", .string(v)), ("n", .number(String(Int64(i) - 3))), ("min", .number(String(Int64.min))),
                ("nested", .object([("a", .array([.null, .bool(true), .number("1.5"), .string(v)]))])),
            ]))
            #expect(String(decoding: object.finish(), as: UTF8.self) == expected, "value #\(i)")
        }
        var empty = JSONObjectBytes()
        #expect(empty.finish() == Array("{}".utf8))
    }

    /// Every ASCII byte at every position of strings up to three words long: the escape check
    /// that reads eight bytes at a time writes what the byte-by-byte rule wrote (raw between
    /// quotes when no byte needs an escape, `JSONText.appendQuoted` otherwise).
    @Test func stringEscapeCheckMatchesTheByteRule() {
        for count in 1...24 {
            for position in 0..<count {
                for byte in UInt8(0)..<0x80 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: count)
                    bytes[position] = byte
                    let text = String(decoding: bytes, as: UTF8.self)
                    var expected: [UInt8] = []
                    if bytes.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
                        JSONText.appendQuoted(text, to: &expected)
                    } else {
                        expected = [0x22] + bytes + [0x22]
                    }
                    var actual: [UInt8] = []
                    JSONWriter.writeString(text, into: &actual)
                    if actual != expected {
                        Issue.record("count \(count) position \(position) byte \(byte)")
                        return
                    }
                }
            }
        }
    }

    /// Every byte but quote and backslash at every position of strings up to three words long:
    /// the parser's word-at-a-time scan for the end of a string gives the string, or the error
    /// at the byte that is wrong.
    @Test func stringScanFindsEveryByteThatMatters() {
        for count in 1...24 {
            for position in 0..<count {
                for byte in 0...255 where byte != 0x22 && byte != 0x5C {
                    var content = [UInt8](repeating: UInt8(ascii: "a"), count: count)
                    content[position] = UInt8(byte)
                    let document = [0x22] + content + [0x22]
                    let outcome: String
                    do {
                        outcome = "\(try JSONParser.parse(document))"
                    } catch {
                        outcome = error.description
                    }
                    let expected: String
                    if byte < 0x20 {
                        expected = "invalid JSON at byte \(1 + position): control character in string"
                    } else if byte >= 0x80 {
                        expected = "invalid JSON at byte \(2 + count): string is not valid UTF-8"
                    } else {
                        expected = "\(JSONValue.string(String(decoding: content, as: UTF8.self)))"
                    }
                    if outcome != expected {
                        Issue.record("count \(count) position \(position) byte \(byte): \(outcome) vs \(expected)")
                        return
                    }
                }
            }
        }
    }

    @Test func duplicateMemberNamesAreFoundInSmallAndLargeObjects() {
        for count in [1, 2, 15, 16, 17, 40] {
            let names = (0..<count).map { "m\($0)" }
            let unique = "{" + names.map { "\"\($0)\":1" }.joined(separator: ",") + "}"
            #expect((try? JSONParser.parse(unique)) != nil, "\(count) members")
            for repeated in Set([0, count / 2, count - 1]) {
                let text = String(unique.dropLast()) + ",\"m\(repeated)\":2}"
                // Reported just past the repeated name, at its `:` (the text ends `:2}`).
                #expect(throws: JSONParseError(offset: text.utf8.count - 3, reason: "duplicate member name"),
                        "\(count) members, m\(repeated) again") { try JSONParser.parse(text) }
            }
        }
    }

    @Test func nonASCIIStringsAreValidatedAndASCIIOnesKeptAsIs() throws {
        #expect(try JSONParser.parse(#"{"k":"caf\#u{E9} \u00e9"}"#) == .object([("k", .string("caf\u{E9} \u{E9}"))]))
        #expect(try JSONParser.parse(#"["plain ascii ~"]"#) == .array([.string("plain ascii ~")]))
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0x22]) }
    }

    @Test func jsonWriterStringFormsAgreeWithTheByteForm() {
        let value = JSONValue.object([("k\"", .string("v\u{7F}\n")), ("a", .array([.number("-0"), .null]))])
        var text = "prefix"
        JSONWriter.write(value, into: &text)
        #expect(text == "prefix" + #"{"k\"":"v\u007f\n","a":[-0,null]}"#)
        #expect(Array(JSONWriter.string(value).utf8) == JSONWriter.bytes(value))
        var quoted = ""
        JSONWriter.writeString("x\u{7F}", into: &quoted)
        #expect(quoted == "\"x\u{7F}\"")
    }
}
