import LendingCore

/// A compact, length-prefixed binary encoding for stored responses and request hashes.
/// JSON would cost more than the rest of a confirmation; this costs a few appends.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 128) { bytes.reserveCapacity(capacity) }

    /// Big-endian, eight bytes, in one append.
    mutating func write(_ value: Int64) {
        withUnsafeBytes(of: UInt64(bitPattern: value).bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ value: Int) { write(Int64(value)) }

    mutating func write(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            write(Int64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }
}

/// Reads what `ByteWriter` wrote; any truncation or bad length is an error, never a crash.
struct ByteReader {
    struct Malformed: Error {}
    static let stringBytesMax = 1 << 20

    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func readInt64() throws -> Int64 {
        guard bytes.count - offset >= 8 else { throw Malformed() }
        var bits: UInt64 = 0
        for i in 0..<8 { bits = bits << 8 | UInt64(bytes[offset + i]) }
        offset += 8
        return Int64(bitPattern: bits)
    }

    mutating func readInt() throws -> Int {
        let value = try readInt64()
        guard let int = Int(exactly: value) else { throw Malformed() }
        return int
    }

    mutating func readString() throws -> String {
        let count = try readInt64()
        guard count >= 0, count <= Self.stringBytesMax, bytes.count - offset >= Int(count) else { throw Malformed() }
        let text = String(decoding: bytes[offset..<(offset + Int(count))], as: UTF8.self)
        offset += Int(count)
        return text
    }

    mutating func readBool() throws -> Bool {
        guard offset < bytes.count else { throw Malformed() }
        defer { offset += 1 }
        return bytes[offset] != 0
    }
}
