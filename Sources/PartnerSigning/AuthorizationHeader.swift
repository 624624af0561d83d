#if canImport(Glibc)
import Glibc
#endif

/// A parsed `Authorization: TOKEN name="value",name="value"` header, as `jl1` and
/// `wechatpay-v3` use. Parsing is bounded and total: any input returns a value or throws
/// `headerMalformed` naming the header, never crashes. It works on the UTF-8 bytes with integer
/// offsets: Character-level `String` scanning cost several times the MAC it guards.
struct AuthorizationHeader {
    /// Longer values are refused before any parsing.
    static let valueBytesMax = 8192
    static let parametersMax = 16
    static let fieldName = "Authorization"

    /// Where one `name="value"` lies in `text`: four UTF-8 offsets (below `valueBytesMax`, so
    /// 16 bits each) packed in a `UInt64`, 16 of them in one SIMD value — inline and trivially
    /// copied, so parsing a header allocates nothing.
    private struct Span {
        let packed: UInt64
        init(name: Range<Int>, value: Range<Int>) {
            packed = UInt64(name.lowerBound) | UInt64(name.upperBound) << 16 | UInt64(value.lowerBound) << 32 | UInt64(value.upperBound) << 48
        }
        init(packed: UInt64) { self.packed = packed }
        var name: Range<Int> { Int(packed & 0xFFFF)..<Int(packed >> 16 & 0xFFFF) }
        var value: Range<Int> { Int(packed >> 32 & 0xFFFF)..<Int(packed >> 48) }
    }

    /// The header as received, its UTF-8 contiguous: read in place, never copied.
    private let text: String
    private let tokenEnd: Int
    private let spans: SIMD16<UInt64>
    private let count: Int

    /// `trustedPrintable`: the caller has already checked that `value` is printable ASCII and
    /// within `valueBytesMax` (`PartnerVerifier.header`), so the scan is not repeated.
    init(parsing value: String, trustedPrintable: Bool = false) throws(SigningError) {
        var text = value
        text.makeContiguousUTF8()
        guard text.utf8.count <= Self.valueBytesMax else { throw .headerMalformed(field: Self.fieldName) }
        let parsed: Result<(Int, SIMD16<UInt64>, Int), SigningError> = text.withUTF8 { bytes in
            Result { () throws(SigningError) in try Self.parse(bytes, checkPrintable: !trustedPrintable) }
        }
        (tokenEnd, spans, count) = try parsed.get()
        self.text = text
    }

    private static func parse(
        _ bytes: UnsafeBufferPointer<UInt8>, checkPrintable: Bool
    ) throws(SigningError) -> (Int, SIMD16<UInt64>, Int) {
        // Printable ASCII only: rejects control characters, and non-UTF-8 input that arrived
        // repaired as U+FFFD.
        guard !checkPrintable || SigningSyntax.isPrintableASCII(bytes) else { throw .headerMalformed(field: fieldName) }
        let end = bytes.count
        let space = index(of: UInt8(ascii: " "), in: bytes, from: 0)
        guard space > 0, space < end else { throw .headerMalformed(field: fieldName) }
        var spans = SIMD16<UInt64>()
        var count = 0
        func skipSpaces(_ start: Int) -> Int {
            var i = start
            while i < end, bytes[i] == UInt8(ascii: " ") { i += 1 }
            return i
        }
        var i = skipSpaces(space)
        while i < end {
            guard count < parametersMax else { throw .headerMalformed(field: fieldName) }
            let nameStart = i
            while i < end, SigningSyntax.isTokenByte(bytes[i]) { i += 1 }
            let nameEnd = i
            guard nameEnd > nameStart, i < end, bytes[i] == UInt8(ascii: "=") else { throw .headerMalformed(field: fieldName) }
            i += 1
            guard i < end, bytes[i] == UInt8(ascii: "\"") else { throw .headerMalformed(field: field(bytes, nameStart..<nameEnd)) }
            i += 1
            let valueStart = i
            i = index(of: UInt8(ascii: "\""), in: bytes, from: i)
            guard i < end else { throw .headerMalformed(field: fieldName) }
            for k in 0..<count where equal(bytes, Span(packed: spans[k]).name, nameStart..<nameEnd) {
                throw .headerMalformed(field: field(bytes, nameStart..<nameEnd) + " repeated")
            }
            spans[count] = Span(name: nameStart..<nameEnd, value: valueStart..<i).packed
            count += 1
            i = skipSpaces(i + 1)
            if i < end {
                guard bytes[i] == UInt8(ascii: ",") else { throw .headerMalformed(field: fieldName) }
                i = skipSpaces(i + 1)
                guard i < end else { throw .headerMalformed(field: fieldName) }
            }
        }
        return (space, spans, count)
    }

    /// Where `byte` first occurs at or after `start`, else `bytes.count` (`memchr` scans a
    /// quoted value many bytes at a time).
    @inline(__always)
    private static func index(of byte: UInt8, in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        guard start < bytes.count, let base = bytes.baseAddress, let found = memchr(base + start, Int32(byte), bytes.count - start) else {
            return bytes.count
        }
        return UnsafeRawPointer(base).distance(to: UnsafeRawPointer(found))
    }

    @inline(__always)
    private static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
        guard a.count == b.count else { return false }
        for k in 0..<a.count where bytes[a.lowerBound + k] != bytes[b.lowerBound + k] { return false }
        return true
    }

    @inline(__always)
    private static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ a: Range<Int>, _ other: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == other.count else { return false }
        for k in 0..<a.count where bytes[a.lowerBound + k] != other[k] { return false }
        return true
    }

    /// Names a parameter in an error; a long, attacker-chosen name is not echoed.
    private static func field(_ bytes: UnsafeBufferPointer<UInt8>, _ name: Range<Int>) -> String {
        name.count <= 32 ? fieldName + "." + String(decoding: UnsafeBufferPointer(rebasing: bytes[name]), as: UTF8.self) : fieldName + ".<parameter>"
    }

    private func withUTF8<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        // Contiguous since init: this reads the storage in place.
        var text = text
        return text.withUTF8(body)
    }

    /// Whether the scheme token (before the first space) is exactly `token`.
    func tokenIs(_ token: String) -> Bool {
        var token = token
        return token.withUTF8 { wanted in
            withUTF8 { all in Self.equal(all, 0..<tokenEnd, wanted) }
        }
    }

    /// The value of parameter `name`, nil if absent.
    func value(_ name: String) -> String? {
        withUTF8 { all in
            Self.range(of: name, spans: spans, count: count, in: all).map { String(decoding: UnsafeBufferPointer(rebasing: all[$0]), as: UTF8.self) }
        }
    }

    /// Where the value of parameter `name` lies in the header, nil if absent.
    func range(of name: String) -> Range<Int>? {
        withUTF8 { all in Self.range(of: name, spans: spans, count: count, in: all) }
    }

    private static func range(of name: String, spans: SIMD16<UInt64>, count: Int, in all: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        // The names asked for are the formats' own constants: contiguous, read in place.
        name.utf8.withContiguousStorageIfAvailable { wanted in
            for k in 0..<count {
                let span = Span(packed: spans[k])
                if equal(all, span.name, wanted) { return span.value }
            }
            return nil
        } ?? nil
    }

    /// Runs `body` over the bytes of a value found by `range(of:)`.
    func withBytes<T>(of range: Range<Int>, _ body: (UnsafeBufferPointer<UInt8>) throws(SigningError) -> T) throws(SigningError) -> T {
        let result: Result<T, SigningError> = withUTF8 { all in
            Result { () throws(SigningError) in try body(UnsafeBufferPointer(rebasing: all[range])) }
        }
        return try result.get()
    }

    /// Builds the header value, parameters in the given order.
    static func render(token: String, _ parameters: [(String, String)]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(token.utf8.count + parameters.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 })
        out.append(contentsOf: token.utf8)
        out.append(UInt8(ascii: " "))
        for (i, parameter) in parameters.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: parameter.0.utf8)
            out.append(contentsOf: [UInt8(ascii: "="), UInt8(ascii: "\"")])
            out.append(contentsOf: parameter.1.utf8)
            out.append(UInt8(ascii: "\""))
        }
        return String(decoding: out, as: UTF8.self)
    }
}
