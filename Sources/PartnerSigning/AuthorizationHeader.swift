/// A parsed `Authorization: TOKEN name="value",name="value"` header, as `jl1` and
/// `wechatpay-v3` use. Parsing is bounded and total: any input returns a value or throws
/// `headerMalformed` naming the header, never crashes. It works on the UTF-8 bytes with integer
/// offsets: Character-level `String` scanning cost several times the MAC it guards.
struct AuthorizationHeader {
    /// Longer values are refused before any parsing.
    static let valueBytesMax = 8192
    static let parametersMax = 16
    static let fieldName = "Authorization"

    private let bytes: [UInt8]
    private let tokenEnd: Int
    private var parameters: [(name: Range<Int>, value: Range<Int>)] = []

    init(parsing value: String) throws(SigningError) {
        bytes = Array(value.utf8)
        guard bytes.count <= Self.valueBytesMax else { throw .headerMalformed(field: Self.fieldName) }
        // Printable ASCII only: rejects control characters, and non-UTF-8 input that arrived
        // repaired as U+FFFD.
        guard SigningSyntax.isPrintableASCII(bytes) else { throw .headerMalformed(field: Self.fieldName) }
        guard let space = bytes.firstIndex(of: UInt8(ascii: " ")), space > 0 else { throw .headerMalformed(field: Self.fieldName) }
        tokenEnd = space
        // Both formats carry four or five parameters: one allocation instead of growing.
        parameters.reserveCapacity(6)
        var i = skipSpaces(from: space)
        while i < bytes.count {
            guard parameters.count < Self.parametersMax else { throw .headerMalformed(field: Self.fieldName) }
            let nameStart = i
            while i < bytes.count, SigningSyntax.isTokenByte(bytes[i]) { i += 1 }
            let name = nameStart..<i
            guard !name.isEmpty, i < bytes.count, bytes[i] == UInt8(ascii: "=") else { throw .headerMalformed(field: Self.fieldName) }
            i += 1
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw .headerMalformed(field: field(name)) }
            i += 1
            let valueStart = i
            while i < bytes.count, bytes[i] != UInt8(ascii: "\"") { i += 1 }
            guard i < bytes.count else { throw .headerMalformed(field: Self.fieldName) }
            guard index(of: name) == nil else { throw .headerMalformed(field: field(name) + " repeated") }
            parameters.append((name, valueStart..<i))
            i = skipSpaces(from: i + 1)
            if i < bytes.count {
                guard bytes[i] == UInt8(ascii: ",") else { throw .headerMalformed(field: Self.fieldName) }
                i = skipSpaces(from: i + 1)
                guard i < bytes.count else { throw .headerMalformed(field: Self.fieldName) }
            }
        }
    }

    private func skipSpaces(from start: Int) -> Int {
        var i = start
        while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
        return i
    }

    private func index(of name: Range<Int>) -> Int? {
        parameters.firstIndex { bytes[$0.name].elementsEqual(bytes[name]) }
    }

    /// Names a parameter in an error; a long, attacker-chosen name is not echoed.
    private func field(_ name: Range<Int>) -> String {
        name.count <= 32 ? Self.fieldName + "." + String(decoding: bytes[name], as: UTF8.self) : Self.fieldName + ".<parameter>"
    }

    /// Whether the scheme token (before the first space) is exactly `token`.
    func tokenIs(_ token: String) -> Bool {
        var token = token
        return token.withUTF8 { wanted in bytes.withUnsafeBufferPointer { UnsafeBufferPointer(rebasing: $0[0..<tokenEnd]).elementsEqual(wanted) } }
    }

    /// The value of parameter `name`, nil if absent.
    func value(_ name: String) -> String? {
        range(of: name).map { range in bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[range]), as: UTF8.self) } }
    }

    /// Where the value of parameter `name` lies in the header, nil if absent.
    func range(of name: String) -> Range<Int>? {
        var name = name
        return name.withUTF8 { wanted in
            bytes.withUnsafeBufferPointer { all in
                for p in parameters where p.name.count == wanted.count && UnsafeBufferPointer(rebasing: all[p.name]).elementsEqual(wanted) {
                    return p.value
                }
                return nil
            }
        }
    }

    /// Runs `body` over the bytes of a value found by `range(of:)`.
    func withBytes<T>(of range: Range<Int>, _ body: (UnsafeBufferPointer<UInt8>) throws(SigningError) -> T) throws(SigningError) -> T {
        let result: Result<T, SigningError> = bytes.withUnsafeBufferPointer { all in
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
