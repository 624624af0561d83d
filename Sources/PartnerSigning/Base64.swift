/// Standard-alphabet, padded base64 (RFC 4648 §4), strict: no whitespace, no URL alphabet, no
/// missing padding, no non-zero trailing bits. One signature has one encoding.
public enum Base64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        let count = (bytes.count + 2) / 3 * 4
        guard count > 0 else { return "" }
        // Written straight into the string's storage: one allocation, no intermediate array.
        return bytes.withUnsafeBufferPointer { input in
            alphabet.withUnsafeBufferPointer { alphabet in
                String(unsafeUninitializedCapacity: count) { out in
                    var i = 0
                    var o = 0
                    while i + 3 <= input.count {
                        let n = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                        out[o] = alphabet[Int(n >> 18 & 63)]
                        out[o + 1] = alphabet[Int(n >> 12 & 63)]
                        out[o + 2] = alphabet[Int(n >> 6 & 63)]
                        out[o + 3] = alphabet[Int(n & 63)]
                        i += 3
                        o += 4
                    }
                    let rest = input.count - i
                    if rest > 0 {
                        let n = UInt32(input[i]) << 16 | (rest == 2 ? UInt32(input[i + 1]) << 8 : 0)
                        out[o] = alphabet[Int(n >> 18 & 63)]
                        out[o + 1] = alphabet[Int(n >> 12 & 63)]
                        out[o + 2] = rest == 2 ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "=")
                        out[o + 3] = UInt8(ascii: "=")
                        o += 4
                    }
                    return o
                }
            }
        }
    }

    /// The decoded bytes, or nil if `text` is not canonical padded base64.
    public static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        if let decoded = text.utf8.withContiguousStorageIfAvailable({ decode(buffer: $0) }) { return decoded }
        return Array(text.utf8).withUnsafeBufferPointer { decode(buffer: $0) }
    }

    static func decode(buffer input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        decodeTable.withUnsafeBufferPointer { decode(input, table: $0) }
    }

    private static func decode(_ input: UnsafeBufferPointer<UInt8>, table decodeTable: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard input.count % 4 == 0 else { return nil }
        var valid = true
        // Written straight into the array's storage: no capacity check per byte.
        let out = [UInt8](unsafeUninitializedCapacity: input.count / 4 * 3) { out, written in
            var i = 0
            var o = 0
            defer { written = valid ? o : 0 }
            while i < input.count {
                let isLast = i + 4 == input.count
                let pad = isLast ? (input[i + 3] == UInt8(ascii: "=") ? (input[i + 2] == UInt8(ascii: "=") ? 2 : 1) : 0) : 0
                var n: UInt32 = 0
                for j in 0..<(4 - pad) {
                    let v = decodeTable[Int(input[i + j])]
                    guard v != 0xFF else {
                        valid = false
                        return
                    }
                    n |= UInt32(v) << (18 - 6 * UInt32(j))
                }
                // Bits below the last full byte must be zero, or two texts would decode alike.
                if (pad == 2 && n & 0xFFFF != 0) || (pad == 1 && n & 0xFF != 0) {
                    valid = false
                    return
                }
                out[o] = UInt8(n >> 16 & 0xFF)
                if pad < 2 { out[o + 1] = UInt8(n >> 8 & 0xFF) }
                if pad < 1 { out[o + 2] = UInt8(n & 0xFF) }
                o += 3 - pad
                i += 4
            }
        }
        return valid ? out : nil
    }
}
