import HTTP

/// A JSON value parsed strictly and without floating point: numbers keep their text so money
/// and ids decode exactly into Int64. Objects keep member order (for `sorted-params` and for
/// re-serialising exactly) and duplicate member names are refused (two readers could disagree).
public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    public func hash(into h: inout Hasher) {
        switch self {
        case .null: h.combine(0)
        case .bool(let b): h.combine(b)
        case .number(let n): h.combine(n)
        case .string(let s): h.combine(s)
        case .array(let a): h.combine(a)
        case .object(let o): for (k, v) in o { h.combine(k); h.combine(v) }
        }
    }

    /// A short name of the value's type, for error messages (never the value: it may be personal data).
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }
}

/// Why a JSON text was refused: the byte offset and what was wrong.
public struct JSONParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public let offset: Int
    public let reason: String
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

/// A strict RFC 8259 parser with named limits on depth, size and member count.
public struct JSONParser {
    public struct Limits: Sendable {
        public var bytesMax = 1 << 20
        public var depthMax = 32
        public var stringBytesMax = 64 << 10
        public var membersMax = 10_000
        public var numberDigitsMax = 40
        public init() {}
    }

    public static func parse(_ bytes: [UInt8], limits: Limits = Limits()) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { (buffer) throws(JSONParseError) -> JSONValue in
            var p = JSONParser(buffer: buffer, limits: limits)
            return try p.parseDocument()
        }
    }

    public static func parse(_ text: String, limits: Limits = Limits()) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8), limits: limits)
    }

    /// Objects up to this many members are checked for duplicate names by a linear scan.
    static let membersScannedMax = 16

    private let buffer: UnsafeBufferPointer<UInt8>
    private let limits: Limits
    private var i = 0

    private init(buffer: UnsafeBufferPointer<UInt8>, limits: Limits) {
        self.buffer = buffer
        self.limits = limits
    }

    private func fail(_ reason: String) -> JSONParseError { JSONParseError(offset: i, reason: reason) }

    private mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        guard buffer.count <= limits.bytesMax else { throw fail("document larger than \(limits.bytesMax) bytes") }
        skipSpace()
        let v = try parseValue(depth: 0)
        skipSpace()
        guard i == buffer.count else { throw fail("unexpected data after the value") }
        return v
    }

    private mutating func skipSpace() {
        while i < buffer.count, buffer[i] == 0x20 || buffer[i] == 0x0A || buffer[i] == 0x0D || buffer[i] == 0x09 { i += 1 }
    }

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= limits.depthMax else { throw fail("nested deeper than \(limits.depthMax)") }
        guard i < buffer.count else { throw fail("unexpected end of input") }
        switch buffer[i] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw fail("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let n = word.utf8CodeUnitCount
        guard i + n <= buffer.count else { throw fail("unexpected end of input") }
        for k in 0..<n where buffer[i + k] != word.utf8Start[k] { throw fail("invalid literal") }
        i += n
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        i += 1
        var members: [(key: String, value: JSONValue)] = []
        // Duplicate names are looked for by scanning while the object is small (no hashing),
        // and in a set once it is not, so a large object stays linear.
        var seen: Set<String>?
        skipSpace()
        if i < buffer.count, buffer[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
        // A typical body has a handful of members: one allocation instead of doubling from one.
        members.reserveCapacity(8)
        while true {
            skipSpace()
            guard i < buffer.count, buffer[i] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
            let key = try parseString()
            if members.count == Self.membersScannedMax { seen = Set(members.map(\.key)) }
            let duplicate = seen?.contains(key) ?? members.contains { $0.key == key }
            guard !duplicate else { throw fail("duplicate member name") }
            seen?.insert(key)
            skipSpace()
            guard i < buffer.count, buffer[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            i += 1
            skipSpace()
            members.append((key, try parseValue(depth: depth + 1)))
            guard members.count <= limits.membersMax else { throw fail("more than \(limits.membersMax) members") }
            skipSpace()
            guard i < buffer.count else { throw fail("unexpected end of input") }
            if buffer[i] == UInt8(ascii: ",") { i += 1; continue }
            if buffer[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw fail("expected ',' or '}'")
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if i < buffer.count, buffer[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try parseValue(depth: depth + 1))
            guard items.count <= limits.membersMax else { throw fail("more than \(limits.membersMax) items") }
            skipSpace()
            guard i < buffer.count else { throw fail("unexpected end of input") }
            if buffer[i] == UInt8(ascii: ",") { i += 1; continue }
            if buffer[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw fail("expected ',' or ']'")
        }
    }

    private mutating func parseNumber() throws(JSONParseError) -> String {
        let start = i
        if buffer[i] == UInt8(ascii: "-") { i += 1 }
        func digits() -> Int {
            let s = i
            while i < buffer.count, buffer[i] >= 0x30, buffer[i] <= 0x39 { i += 1 }
            return i - s
        }
        guard i < buffer.count else { throw fail("invalid number") }
        if buffer[i] == UInt8(ascii: "0") { i += 1 } else if digits() == 0 { throw fail("invalid number") }
        if i < buffer.count, buffer[i] == UInt8(ascii: ".") {
            i += 1
            if digits() == 0 { throw fail("invalid number") }
        }
        if i < buffer.count, buffer[i] == UInt8(ascii: "e") || buffer[i] == UInt8(ascii: "E") {
            i += 1
            if i < buffer.count, buffer[i] == UInt8(ascii: "+") || buffer[i] == UInt8(ascii: "-") { i += 1 }
            if digits() == 0 { throw fail("invalid number") }
        }
        guard i - start <= limits.numberDigitsMax else { throw fail("number longer than \(limits.numberDigitsMax) characters") }
        return String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<i]), as: UTF8.self)
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        i += 1
        var out: [UInt8] = []
        let start = i
        // Fast path: no escapes. The first quote, backslash or control byte is found eight
        // bytes at a time; only a quote ends the string here.
        let rest = UnsafeBufferPointer(rebasing: buffer[start...])
        let special = ByteScan.firstIndex(
            in: rest,
            mayMatch: { ByteScan.bytesEqual(0x22, in: $0) | ByteScan.bytesEqual(0x5C, in: $0) | ByteScan.bytesBelow(0x20, in: $0) },
            matches: { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 })
        i = start + (special ?? rest.count)
        if i < buffer.count, buffer[i] == UInt8(ascii: "\"") {
            let slice = UnsafeBufferPointer(rebasing: buffer[start..<i])
            i += 1
            return try validated(slice)
        }
        out.append(contentsOf: buffer[start..<i])
        while i < buffer.count {
            let b = buffer[i]
            guard out.count <= limits.stringBytesMax else { throw fail("string longer than \(limits.stringBytesMax) bytes") }
            if b == UInt8(ascii: "\"") {
                i += 1
                return try out.withUnsafeBufferPointer { (o) throws(JSONParseError) -> String in try validated(o) }
            }
            if b < 0x20 { throw fail("control character in string") }
            if b != UInt8(ascii: "\\") { out.append(b); i += 1; continue }
            i += 1
            guard i < buffer.count else { break }
            let e = buffer[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard i + 1 < buffer.count, buffer[i] == UInt8(ascii: "\\"), buffer[i + 1] == UInt8(ascii: "u") else { throw fail("unpaired surrogate") }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw fail("unpaired surrogate")
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: throw fail("invalid escape")
            }
        }
        throw fail("unterminated string")
    }

    private mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard i + 4 <= buffer.count else { throw fail("invalid escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = buffer[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private func validated(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> String {
        guard bytes.count <= limits.stringBytesMax else { throw fail("string longer than \(limits.stringBytesMax) bytes") }
        // ASCII is valid UTF-8: skip the generic validating initialiser, which is not specialised.
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        guard let s = String(validating: bytes, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
        return s
    }
}

/// Compact serialisation (no spaces), member order kept. Strings escaped per RFC 8259.
/// Written as UTF-8 bytes; the `String` forms wrap the byte form, so both give the same text.
public enum JSONWriter {
    public static func write(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: b ? "true".utf8 : "false".utf8)
        case .number(let n): out.append(contentsOf: n.utf8)
        case .string(let s): writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (k, v) in items.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                write(v, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (k, m) in members.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                writeString(m.key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(m.value, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    public static func bytes(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        write(value, into: &out)
        return out
    }

    public static func write(_ value: JSONValue, into out: inout String) {
        out += string(value)
    }

    public static func string(_ value: JSONValue) -> String {
        String(decoding: bytes(value), as: UTF8.self)
    }

    public static func writeString(_ s: String, into out: inout [UInt8]) {
        // Fast path: nothing to escape, append the whole string at once. Borrowed through its
        // contiguous UTF-8 (native and small strings: every string on Linux), not copied.
        let clean = s.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            let escaped = ByteScan.firstIndex(
                in: bytes,
                mayMatch: { ByteScan.bytesBelow(0x20, in: $0) | ByteScan.bytesEqual(0x22, in: $0) | ByteScan.bytesEqual(0x5C, in: $0) },
                matches: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C })
            guard escaped == nil else { return false }
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: bytes)
            out.append(UInt8(ascii: "\""))
            return true
        } ?? false
        if !clean { JSONText.appendQuoted(s, to: &out) }
    }

    public static func writeString(_ s: String, into out: inout String) {
        var bytes: [UInt8] = []
        writeString(s, into: &bytes)
        out += String(decoding: bytes, as: UTF8.self)
    }
}

/// A JSON object written member by member straight into bytes, with `JSONWriter`'s exact
/// output, for hot paths that would otherwise build a `JSONValue` tree only to serialise it.
struct JSONObjectBytes {
    private(set) var bytes: [UInt8]

    init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
        bytes.append(UInt8(ascii: "{"))
    }

    private mutating func key(_ key: String) {
        if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
        JSONWriter.writeString(key, into: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func string(_ name: String, _ value: String) {
        key(name)
        JSONWriter.writeString(value, into: &bytes)
    }

    mutating func number(_ name: String, _ value: Int64) {
        key(name)
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func value(_ name: String, _ value: JSONValue) {
        key(name)
        JSONWriter.write(value, into: &bytes)
    }

    /// Closes the object and returns its text; nothing may be added after.
    mutating func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}
