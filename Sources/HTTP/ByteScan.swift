/// Word-at-a-time byte searches for the hot paths that look at every byte of a request or
/// response for a few rare values (header values, response headers, JSON strings).
///
/// Eight bytes are loaded at once and tested with the classic "has less than" and "has zero
/// byte" word expressions, which never miss a byte (they may flag a clean word after a matching
/// byte, which the byte-by-byte look at a flagged word then settles). A clean word costs a few
/// instructions instead of a few per byte.
public enum ByteScan {
    @usableFromInline static let ones: UInt64 = 0x0101_0101_0101_0101
    @usableFromInline static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Non-zero when some byte of `word` is below `limit` (at most 0x80).
    @inlinable @inline(__always)
    public static func bytesBelow(_ limit: UInt8, in word: UInt64) -> UInt64 {
        (word &- ones &* UInt64(limit)) & ~word & highs
    }

    /// Non-zero when some byte of `word` equals `byte`.
    @inlinable @inline(__always)
    public static func bytesEqual(_ byte: UInt8, in word: UInt64) -> UInt64 {
        let difference = word ^ (ones &* UInt64(byte))
        return (difference &- ones) & ~difference & highs
    }

    /// The index of the first byte for which `matches` holds. A word for which `mayMatch` is
    /// zero must hold no such byte; it is skipped whole.
    @inlinable @inline(__always)
    public static func firstIndex(
        in bytes: UnsafeBufferPointer<UInt8>, mayMatch: (UInt64) -> UInt64, matches: (UInt8) -> Bool
    ) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        let count = bytes.count
        var index = 0
        while index + 8 <= count {
            let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
            if mayMatch(word) != 0 {
                for offset in index..<(index + 8) where matches(base[offset]) { return offset }
            }
            index += 8
        }
        while index < count {
            if matches(base[index]) { return index }
            index += 1
        }
        return nil
    }

    /// The index of the first CR or LF.
    @inlinable
    public static func firstLineBreak(in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        firstIndex(
            in: bytes, mayMatch: { bytesEqual(0x0D, in: $0) | bytesEqual(0x0A, in: $0) },
            matches: { $0 == 0x0D || $0 == 0x0A })
    }
}
