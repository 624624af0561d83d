/// The syntax of the small fields every format carries, and their bounds.
public enum SigningSyntax {
    public static let nonceBytesMin = 16
    public static let nonceBytesMax = 64
    public static let keyIDBytesMax = 64
    /// Unix seconds in decimal; 12 digits reach past the year 33000.
    public static let timestampDigitsMax = 12
    /// Base64 of the largest signature accepted (RSA-16384: 2048 bytes).
    public static let signatureBase64BytesMax = 2732
    /// A merchant id (WeChat Pay `mchid`).
    public static let merchantIDBytesMax = 64

    /// 16–64 characters of `[A-Za-z0-9_-]` (SIGNING.md).
    public static func isValidNonce<S: StringProtocol>(_ nonce: S) -> Bool {
        let count = nonce.utf8.count
        return count >= nonceBytesMin && count <= nonceBytesMax && allBytes(of: nonce, isTokenByte)
    }

    /// 1–64 characters of `[A-Za-z0-9._:-]`.
    public static func isValidKeyID<S: StringProtocol>(_ id: S) -> Bool {
        let count = id.utf8.count
        return count >= 1 && count <= keyIDBytesMax
            && allBytes(of: id) { isTokenByte($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":") }
    }

    /// Unix seconds: 1–12 ASCII digits, nothing else.
    public static func parseTimestamp<S: StringProtocol>(_ text: S) -> Int64? {
        // Over contiguous bytes when there are some: walking `String.Index`es costs more than the digits.
        if let parsed = text.utf8.withContiguousStorageIfAvailable({ parseTimestamp(bytes: $0) }) { return parsed }
        return parseTimestamp(bytes: text.utf8)
    }

    @inline(__always)
    private static func parseTimestamp<C: Collection>(bytes utf8: C) -> Int64? where C.Element == UInt8 {
        guard utf8.count >= 1, utf8.count <= timestampDigitsMax else { return nil }
        var value: Int64 = 0
        for byte in utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// Every byte in 0x20...0x7E: no control characters, nothing beyond ASCII.
    static func isPrintableASCII(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { isPrintableASCII($0) }
    }

    static func isPrintableASCII(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { isPrintableASCII($0) }
    }

    @inline(__always)
    static func isPrintableASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        // No early exit: one comparison per byte folded into a flag, which the compiler
        // vectorizes; a header is scanned in a few instructions per 16 bytes.
        var outside: UInt8 = 0
        for byte in bytes { outside |= (byte &- 0x20) > 0x5E ? 1 : 0 }
        return outside == 0
    }

    /// Whether every UTF-8 byte of `text` satisfies `predicate`, over contiguous storage (the
    /// generic `utf8.allSatisfy` walks `String.Index`es, several times slower).
    @inline(__always)
    static func allBytes<S: StringProtocol>(of text: S, _ predicate: (UInt8) -> Bool) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { bytes in
            // No early exit: fields are short, and a loop without branches is the quicker one.
            var failed: UInt8 = 0
            for byte in bytes { failed |= predicate(byte) ? 0 : 1 }
            return failed == 0
        } ?? text.utf8.allSatisfy(predicate)
    }

    /// `[A-Za-z0-9_-]`, looked up in a 128-bit set rather than tested range by range.
    @inline(__always)
    static func isTokenByte(_ b: UInt8) -> Bool {
        b < 64 ? (tokenBytesLow >> UInt64(b)) & 1 == 1 : b < 128 ? (tokenBytesHigh >> UInt64(b - 64)) & 1 == 1 : false
    }

    /// Bit n set for byte n: `-` (45) and `0-9` (48–57).
    static let tokenBytesLow: UInt64 = 0x03FF_2000_0000_0000
    /// Bit n set for byte 64 + n: `A-Z` (65–90), `_` (95) and `a-z` (97–122).
    static let tokenBytesHigh: UInt64 = 0x07FF_FFFE_87FF_FFFE
}
