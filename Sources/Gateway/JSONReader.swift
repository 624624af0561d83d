/// One problem found while decoding: where (a JSON path such as `$.funders[2].limits.dailyQuotaMinor`)
/// and what was wrong, with what was expected. Never the offending value: it may be personal data.
public struct DecodingProblem: Hashable, Sendable, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

/// Collects every problem of one decode so a caller can report them all at once.
final class ProblemLog {
    var problems: [DecodingProblem] = []
    func add(_ path: String, _ message: String) { problems.append(DecodingProblem(path: path, message: message)) }
}

/// Reads a JSON object field by field, recording precise problems instead of stopping at the first.
/// Unknown members are problems too: a misspelt field must not be silently ignored.
struct ObjectReader {
    let members: [(key: String, value: JSONValue)]
    let path: String
    let log: ProblemLog

    init?(_ value: JSONValue, path: String, log: ProblemLog) {
        guard case .object(let m) = value else {
            log.add(path, "expected an object, found \(value.typeName)")
            return nil
        }
        members = m
        self.path = path
        self.log = log
    }

    func child(_ key: String) -> String { "\(path).\(key)" }

    func raw(_ key: String) -> JSONValue? {
        for m in members where m.key == key { return m.value }
        return nil
    }

    /// The member, or nil (recording "missing" when required). JSON null counts as absent.
    func value(_ key: String, required: Bool) -> JSONValue? {
        guard let v = raw(key), v != .null else {
            if required { log.add(child(key), "missing required field") }
            return nil
        }
        return v
    }

    func rejectUnknown(_ allowed: Set<String>) {
        for m in members where !allowed.contains(m.key) {
            log.add(child(m.key), "unknown field (expected one of: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    func string(_ key: String, required: Bool = true, bytesMax: Int = 256) -> String? {
        guard let v = value(key, required: required) else { return nil }
        guard case .string(let s) = v else {
            log.add(child(key), "expected a string, found \(v.typeName)")
            return nil
        }
        if s.utf8.count > bytesMax {
            log.add(child(key), "longer than \(bytesMax) bytes")
            return nil
        }
        return s
    }

    func bool(_ key: String, required: Bool = true) -> Bool? {
        guard let v = value(key, required: required) else { return nil }
        guard case .bool(let b) = v else {
            log.add(child(key), "expected a boolean, found \(v.typeName)")
            return nil
        }
        return b
    }

    func int64(_ key: String, required: Bool = true, in range: ClosedRange<Int64> = Int64.min...Int64.max) -> Int64? {
        guard let v = value(key, required: required) else { return nil }
        return Self.int64(v, path: child(key), range: range, log: log)
    }

    static func int64(_ v: JSONValue, path: String, range: ClosedRange<Int64>, log: ProblemLog) -> Int64? {
        guard case .number(let text) = v else {
            log.add(path, "expected an integer, found \(v.typeName)")
            return nil
        }
        guard let n = Int64(text) else {
            let fractional = text.contains(".") || text.contains("e") || text.contains("E")
            log.add(path, fractional ? "expected an integer (minor units), found a fraction or exponent" : "integer out of range")
            return nil
        }
        guard range.contains(n) else {
            log.add(path, "must be \(range.lowerBound == Int64.min ? "≤ \(range.upperBound)" : range.upperBound == Int64.max ? "≥ \(range.lowerBound)" : "\(range.lowerBound)...\(range.upperBound)")")
            return nil
        }
        return n
    }

    func int(_ key: String, required: Bool = true, in range: ClosedRange<Int> = Int.min...Int.max) -> Int? {
        int64(key, required: required, in: Int64(range.lowerBound)...Int64(range.upperBound)).map { Int($0) }
    }

    func object(_ key: String, required: Bool = true) -> ObjectReader? {
        guard let v = value(key, required: required) else { return nil }
        return ObjectReader(v, path: child(key), log: log)
    }

    /// The array's items with their paths; nil (with a problem) when not an array or too long.
    func array(_ key: String, required: Bool = true, countMax: Int = 1_000) -> [(path: String, value: JSONValue)]? {
        guard let v = value(key, required: required) else { return nil }
        guard case .array(let items) = v else {
            log.add(child(key), "expected an array, found \(v.typeName)")
            return nil
        }
        if items.count > countMax {
            log.add(child(key), "more than \(countMax) items")
            return nil
        }
        return items.enumerated().map { ("\(child(key))[\($0.offset)]", $0.element) }
    }

    func stringSet(_ key: String, required: Bool = false) -> Set<String>? {
        guard let items = array(key, required: required) else { return nil }
        var out = Set<String>()
        for (p, v) in items {
            guard case .string(let s) = v, !s.isEmpty, s.utf8.count <= 64 else {
                log.add(p, "expected a non-empty string of at most 64 bytes")
                continue
            }
            out.insert(s)
        }
        return out
    }
}
