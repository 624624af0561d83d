import Testing
@testable import HTTP

@Suite struct ByteScanTests {
    /// Every byte value at every position of buffers up to three words long, over backgrounds
    /// clean and not: the first index found is the first byte the rule matches.
    @Test func firstIndexFindsTheFirstMatchingByte() {
        let rules: [(name: String, mayMatch: (UInt64) -> UInt64, matches: (UInt8) -> Bool)] = [
            ("line break", { ByteScan.bytesEqual(0x0D, in: $0) | ByteScan.bytesEqual(0x0A, in: $0) }, { $0 == 0x0D || $0 == 0x0A }),
            ("JSON escape", { ByteScan.bytesBelow(0x20, in: $0) | ByteScan.bytesEqual(0x22, in: $0) | ByteScan.bytesEqual(0x5C, in: $0) },
             { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }),
            ("below 0x80", { ByteScan.bytesBelow(0x80, in: $0) }, { $0 < 0x80 }),
        ]
        for rule in rules {
            for background: UInt8 in [0x61, 0xFF, 0x0A, 0x00] {
                for count in 0...24 {
                    for position in 0..<max(count, 1) {
                        for byte in 0...255 {
                            var bytes = [UInt8](repeating: background, count: count)
                            if count > 0 { bytes[position] = UInt8(byte) }
                            let expected = bytes.firstIndex(where: rule.matches)
                            let actual = bytes.withUnsafeBufferPointer { ByteScan.firstIndex(in: $0, mayMatch: rule.mayMatch, matches: rule.matches) }
                            if actual != expected {
                                Issue.record("\(rule.name) background \(background) count \(count) position \(position) byte \(byte): \(String(describing: actual)) vs \(String(describing: expected))")
                                return
                            }
                        }
                    }
                }
            }
        }
        let text = Array("Set-Cookie: a\r\nX: b".utf8)
        #expect(text.withUnsafeBufferPointer { ByteScan.firstLineBreak(in: $0) } == 13)
    }
}
