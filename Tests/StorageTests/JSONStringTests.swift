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
