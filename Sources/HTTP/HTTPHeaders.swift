/// Header fields in arrival order. Names compare ASCII case-insensitively (RFC 9110 §5.1);
/// values are kept as received, without surrounding whitespace.
public struct HTTPHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}

    public init(_ fields: [(String, String)]) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    public var count: Int { fields.count }

    /// The first value of `name`, if any.
    public subscript(name: String) -> String? {
        // By index: the names are compared in place, where iterating copied (retained and
        // released) both strings of every field.
        for index in fields.indices where Self.namesEqual(fields[index].name, name) { return fields[index].value }
        return nil
    }

    /// Every value of `name`, in order.
    public func values(for name: String) -> [String] {
        fields.filter { Self.namesEqual($0.name, name) }.map(\.value)
    }

    /// Makes room for `count` fields in all, so adding several costs one allocation.
    public mutating func reserveCapacity(_ count: Int) {
        fields.reserveCapacity(count)
    }

    public mutating func add(name: String, value: String) {
        fields.append((name: name, value: value))
    }

    /// Replaces every value of `name` with one `value`.
    public mutating func replaceOrAdd(name: String, value: String) {
        remove(name: name)
        fields.append((name: name, value: value))
    }

    public mutating func remove(name: String) {
        fields.removeAll { Self.namesEqual($0.name, name) }
    }

    public func contains(_ name: String) -> Bool { self[name] != nil }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    /// ASCII case-insensitive equality, without allocating.
    @inline(__always)
    static func namesEqual(_ a: String, _ b: String) -> Bool {
        // Native strings know their UTF-8 length: most mismatches end here, inlined in the
        // caller (where one side is usually a literal of known length), without a call.
        guard a.utf8.count == b.utf8.count else { return false }
        return sameLengthNamesEqual(a, b)
    }

    private static func sameLengthNamesEqual(_ a: String, _ b: String) -> Bool {
        // Compared over contiguous UTF-8 (no copy for native strings): called for several
        // header names of every request and response.
        var a = a
        var b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                guard x.count == y.count else { return false }
                for index in 0..<x.count where lowercased(x[index]) != lowercased(y[index]) { return false }
                return true
            }
        }
    }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }

    /// Whether a comma-separated header value lists `token` (case-insensitive), e.g.
    /// `Connection: keep-alive, Upgrade` lists `upgrade`.
    static func listContains(_ value: String, token: String) -> Bool {
        value.split(separator: ",").contains { element in
            namesEqual(String(element.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed()), token)
        }
    }
}
