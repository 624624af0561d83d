import LendingCore
import Testing
@testable import Storage

/// Outbox payloads embed ids with `jsonString`; a missed escape would make a payload unreadable
/// (the message dies) or let an id inject a field.
@Suite struct JSONStringTests {
    @Test func plainTextIsQuotedAsIs() {
        #expect(jsonString("L-000123") == "\"L-000123\"")
        #expect(jsonString("") == "\"\"")
        #expect(jsonString("贷款-1") == "\"贷款-1\"")
    }

    @Test func quotesBackslashesAndControlCharactersAreEscaped() {
        #expect(jsonString("a\"b") == "\"a\\\"b\"")
        #expect(jsonString("a\\b") == "\"a\\\\b\"")
        #expect(jsonString("a\nb\tc\r") == "\"a\\nb\\tc\\r\"")
        #expect(jsonString("\u{01}x\u{1F}") == "\"\\u0001x\\u001f\"")
        #expect(jsonString("\"},\"amountMinor\":1,\"x\":{\"") == "\"\\\"},\\\"amountMinor\\\":1,\\\"x\\\":{\\\"\"")
    }
}

/// Audit payloads and outbox messages are built as bytes; they must read exactly as the text
/// they replaced (audit entries are compared by operators and chained by hash).
@Suite struct TextBytesTests {
    @Test func decimalsMatchSwiftsOwn() {
        let seed: UInt64 = 20_261_121
        var random = SplitMix64(seed: seed)
        var values: [Int64] = [0, 1, -1, 9, 10, 99, 100, Int64.max, Int64.min, 1_000_000_007]
        for _ in 0..<1_000 { values.append(Int64(bitPattern: random.next()) >> Int64(random.next() % 63)) }
        for value in values {
            var text = TextBytes()
            text.append(value)
            #expect(String(decoding: text.bytes, as: UTF8.self) == String(value), "value \(value) (seed \(seed))")
        }
    }

    @Test func jsonStringsAreWrittenAsBytesWithEscapes() {
        var text = TextBytes()
        text.appendJSONString("a\"b\\c\n\u{01}\u{1F}贷")
        #expect(String(decoding: text.bytes, as: UTF8.self) == "\"a\\\"b\\\\c\\n\\u0001\\u001f贷\"")
    }

    @Test func confirmationAuditPayloadReadsAsBefore() {
        let bytes = FundingEngine.confirmationAuditPayload(trancheId: 4_711, loanId: "L-9", serial: "S-0001")
        #expect(String(decoding: bytes, as: UTF8.self) == "tranche=4711 loan=L-9 serial=S-0001")
    }
}
