/// The top-level parameters of a `sorted-params` message: the query string, plus the body's
/// form fields or JSON object members. Parsing is bounded and total.
public enum SortedParameters {
    public static let parametersMax = 256
    public static let nameBytesMax = 256
    /// Bodies beyond this are refused before parsing.
    public static let bodyBytesMax = 1024 * 1024
    public static let jsonDepthMax = 64
    static let fieldName = "parameters"

    public typealias Parameter = (name: String, value: String)

    /// Query parameters of `pathAndQuery` followed by the body's (JSON object if the body starts
    /// with `{`, form-urlencoded otherwise). A name given twice is malformed.
    public static func parse(pathAndQuery: String, body: [UInt8]) throws(SigningError) -> [Parameter] {
        guard body.count <= bodyBytesMax else { throw .headerMalformed(field: "body") }
        var parameters: [Parameter] = []
        if let question = pathAndQuery.utf8.firstIndex(of: UInt8(ascii: "?")) {
            try parseForm(Array(pathAndQuery.utf8[pathAndQuery.utf8.index(after: question)...]), into: &parameters)
        }
        let firstNonSpace = body.first(where: { !isJSONSpace($0) })
        if firstNonSpace == UInt8(ascii: "{") {
            try parseJSONObject(body, into: &parameters)
        } else {
            try parseForm(body, into: &parameters)
        }
        var seen = Set<String>()
        for parameter in parameters where !seen.insert(parameter.name).inserted {
            throw .headerMalformed(field: "parameters: a name given twice")
        }
        return parameters
    }

    /// `application/x-www-form-urlencoded` (`+` is a space), with percent-escapes decoded.
    public static func formEncode(_ parameters: [Parameter]) -> String {
        parameters.map { percentEncode($0.name) + "=" + percentEncode($0.value) }.joined(separator: "&")
    }

    // MARK: Form

    static func parseForm(_ bytes: [UInt8], into parameters: inout [Parameter]) throws(SigningError) {
        guard !bytes.isEmpty else { return }
        for pair in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let rawName = equals.map { pair[pair.startIndex..<$0] } ?? pair[...]
            let rawValue = equals.map { pair[pair.index(after: $0)...] } ?? []
            try append(name: percentDecode(rawName), value: percentDecode(rawValue), to: &parameters)
        }
    }

    private static func percentDecode(_ bytes: ArraySlice<UInt8>) throws(SigningError) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "%") {
                guard i + 2 < bytes.endIndex, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) else {
                    throw .headerMalformed(field: "parameters: bad percent-escape")
                }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(b == UInt8(ascii: "+") ? UInt8(ascii: " ") : b)
                i += 1
            }
        }
        return try utf8String(out)
    }

    private static func percentEncode(_ text: String) -> String {
        var out = [UInt8]()
        for b in text.utf8 {
            if SigningSyntax.isTokenByte(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "*") {
                out.append(b)
            } else if b == UInt8(ascii: " ") {
                out.append(UInt8(ascii: "+"))
            } else {
                let digits: [UInt8] = Array("0123456789ABCDEF".utf8)
                out.append(contentsOf: [UInt8(ascii: "%"), digits[Int(b >> 4)], digits[Int(b & 15)]])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    // MARK: JSON

    /// Top-level members of a JSON object. String values are unescaped; any other value (number,
    /// boolean, object, array) is kept as the exact text the sender sent; `null` counts as empty.
    static func parseJSONObject(_ bytes: [UInt8], into parameters: inout [Parameter]) throws(SigningError) {
        var scanner = JSONScanner(bytes: bytes)
        scanner.skipSpace()
        guard scanner.consume(UInt8(ascii: "{")) else { throw .headerMalformed(field: "body: not a JSON object") }
        scanner.skipSpace()
        if !scanner.consume(UInt8(ascii: "}")) {
            while true {
                scanner.skipSpace()
                let name = try scanner.string()
                scanner.skipSpace()
                guard scanner.consume(UInt8(ascii: ":")) else { throw .headerMalformed(field: "body: JSON") }
                scanner.skipSpace()
                let value: String
                if scanner.peek == UInt8(ascii: "\"") {
                    value = try scanner.string()
                } else {
                    let raw = try scanner.rawValue()
                    value = raw == "null" ? "" : raw
                }
                try append(name: name, value: value, to: &parameters)
                scanner.skipSpace()
                if scanner.consume(UInt8(ascii: ",")) { continue }
                guard scanner.consume(UInt8(ascii: "}")) else { throw .headerMalformed(field: "body: JSON") }
                break
            }
        }
        scanner.skipSpace()
        guard scanner.atEnd else { throw .headerMalformed(field: "body: text after the JSON object") }
    }

    private static func append(name: String, value: String, to parameters: inout [Parameter]) throws(SigningError) {
        guard parameters.count < parametersMax else { throw .headerMalformed(field: "parameters: more than 256") }
        guard !name.isEmpty, name.utf8.count <= nameBytesMax else { throw .headerMalformed(field: "parameters: name empty or too long") }
        parameters.append((name, value))
    }

    static func utf8String(_ bytes: [UInt8]) throws(SigningError) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .headerMalformed(field: "parameters: not UTF-8") }
        return text
    }

    static func isJSONSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
}

/// A cursor over JSON text, enough to split an object into members without building a tree.
struct JSONScanner {
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index >= bytes.count }
    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skipSpace() {
        while let b = peek, SortedParameters.isJSONSpace(b) { index += 1 }
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        guard peek == byte else { return false }
        index += 1
        return true
    }

    /// A JSON string, unescaped.
    mutating func string() throws(SigningError) -> String {
        guard consume(UInt8(ascii: "\"")) else { throw .headerMalformed(field: "body: JSON string expected") }
        var out = [UInt8]()
        while let b = peek {
            index += 1
            switch b {
            case UInt8(ascii: "\""):
                return try SortedParameters.utf8String(out)
            case UInt8(ascii: "\\"):
                try unescape(into: &out)
            case 0..<0x20:
                throw .headerMalformed(field: "body: control character in JSON string")
            default:
                out.append(b)
            }
        }
        throw .headerMalformed(field: "body: unterminated JSON string")
    }

    private mutating func unescape(into out: inout [UInt8]) throws(SigningError) {
        guard let e = peek else { throw .headerMalformed(field: "body: JSON escape") }
        index += 1
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if scalar >= 0xD800, scalar < 0xDC00 {
                guard consume(UInt8(ascii: "\\")), consume(UInt8(ascii: "u")) else { throw .headerMalformed(field: "body: JSON surrogate") }
                let low = try hex4()
                guard low >= 0xDC00, low < 0xE000 else { throw .headerMalformed(field: "body: JSON surrogate") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw .headerMalformed(field: "body: JSON surrogate") }
            out.append(contentsOf: String(Character(unicode)).utf8)
        default:
            throw .headerMalformed(field: "body: JSON escape")
        }
    }

    private mutating func hex4() throws(SigningError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw .headerMalformed(field: "body: JSON escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[index]
            let digit: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw .headerMalformed(field: "body: JSON escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    /// The exact text of a non-string value: a number or literal, or a nested object or array
    /// (brackets matched, strings skipped, depth bounded).
    mutating func rawValue() throws(SigningError) -> String {
        let start = index
        var depth = 0
        var inString = false
        while let b = peek {
            if inString {
                if b == UInt8(ascii: "\\") { index += 1 } else if b == UInt8(ascii: "\"") { inString = false }
                index += 1
                continue
            }
            switch b {
            case UInt8(ascii: "\""):
                guard depth > 0 else { throw .headerMalformed(field: "body: JSON") }
                inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                guard depth <= SortedParameters.jsonDepthMax else { throw .headerMalformed(field: "body: JSON nested too deep") }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if depth == 0 { return try finish(start) }
                depth -= 1
                if depth == 0 {
                    index += 1
                    return try finish(start)
                }
            case UInt8(ascii: ","):
                if depth == 0 { return try finish(start) }
            default:
                break
            }
            index += 1
        }
        throw .headerMalformed(field: "body: unterminated JSON value")
    }

    private func finish(_ start: Int) throws(SigningError) -> String {
        var end = index
        while end > start, SortedParameters.isJSONSpace(bytes[end - 1]) { end -= 1 }
        guard end > start else { throw .headerMalformed(field: "body: JSON value expected") }
        return try SortedParameters.utf8String(Array(bytes[start..<end]))
    }
}
