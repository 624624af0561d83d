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
        return count >= nonceBytesMin && count <= nonceBytesMax && nonce.utf8.allSatisfy(isTokenByte)
    }

    /// 1–64 characters of `[A-Za-z0-9._:-]`.
    public static func isValidKeyID<S: StringProtocol>(_ id: S) -> Bool {
        let count = id.utf8.count
        return count >= 1 && count <= keyIDBytesMax
            && id.utf8.allSatisfy { isTokenByte($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":") }
    }

    /// Unix seconds: 1–12 ASCII digits, nothing else.
    public static func parseTimestamp<S: StringProtocol>(_ text: S) -> Int64? {
        let utf8 = text.utf8
        guard utf8.count >= 1, utf8.count <= timestampDigitsMax else { return nil }
        var value: Int64 = 0
        for byte in utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    static func isTokenByte(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
    }
}
