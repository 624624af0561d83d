/// A parsed `Authorization: TOKEN name="value",name="value"` header, as `jl1` and
/// `wechatpay-v3` use. Parsing is bounded and total: any input returns a value or throws
/// `headerMalformed` naming the header, never crashes.
struct AuthorizationHeader {
    /// Longer values are refused before any parsing.
    static let valueBytesMax = 8192
    static let parametersMax = 16
    static let fieldName = "Authorization"

    let token: Substring
    private let parameters: [(name: Substring, value: Substring)]

    init(parsing value: String) throws(SigningError) {
        let bytes = value.utf8
        guard bytes.count <= Self.valueBytesMax else { throw .headerMalformed(field: Self.fieldName) }
        // Printable ASCII only: rejects control characters, and non-UTF-8 input that arrived
        // repaired as U+FFFD.
        guard bytes.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) else { throw .headerMalformed(field: Self.fieldName) }
        guard let space = value.firstIndex(of: " ") else { throw .headerMalformed(field: Self.fieldName) }
        token = value[..<space]
        guard !token.isEmpty else { throw .headerMalformed(field: Self.fieldName) }

        var parsed: [(name: Substring, value: Substring)] = []
        var rest = value[space...].drop(while: { $0 == " " })
        while !rest.isEmpty {
            guard parsed.count < Self.parametersMax else { throw .headerMalformed(field: Self.fieldName) }
            guard let equals = rest.firstIndex(of: "=") else { throw .headerMalformed(field: Self.fieldName) }
            let name = rest[..<equals]
            guard !name.isEmpty, name.utf8.allSatisfy(SigningSyntax.isTokenByte) else { throw .headerMalformed(field: Self.fieldName) }
            let afterEquals = rest[rest.index(after: equals)...]
            guard afterEquals.first == "\"" else { throw .headerMalformed(field: Self.fieldName + "." + name) }
            let valueStart = afterEquals.index(after: afterEquals.startIndex)
            guard let close = afterEquals[valueStart...].firstIndex(of: "\"") else {
                throw .headerMalformed(field: Self.fieldName)
            }
            guard !parsed.contains(where: { $0.name == name }) else {
                throw .headerMalformed(field: Self.fieldName + "." + name + " repeated")
            }
            parsed.append((name, afterEquals[valueStart..<close]))
            rest = afterEquals[afterEquals.index(after: close)...].drop(while: { $0 == " " })
            if rest.first == "," {
                rest = rest.dropFirst().drop(while: { $0 == " " })
                guard !rest.isEmpty else { throw .headerMalformed(field: Self.fieldName) }
            } else if !rest.isEmpty {
                throw .headerMalformed(field: Self.fieldName)
            }
        }
        parameters = parsed
    }

    func value(_ name: String) -> Substring? {
        parameters.first(where: { $0.name == name })?.value
    }

    /// Builds the header value, parameters in the given order.
    static func render(token: String, _ parameters: [(String, String)]) -> String {
        token + " " + parameters.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",")
    }
}
