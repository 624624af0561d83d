/// Where a partner is reached: host, port and path prefix parsed from a contract's `baseUrl`
/// (or an override), so the HTTP client gets numeric parts it can validate.
public struct PartnerEndpoint: Sendable, Hashable {
    public var host: String
    public var port: Int
    /// Path prefix without a trailing `/` (empty for the root).
    public var basePath: String
    public var isTLS: Bool

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Parses `http://host[:port][/prefix]` (and `https://`, flagged `isTLS`). No user info,
    /// query or fragment: a contract's base URL names a server, nothing else.
    public init(url: String) throws(ParseError) {
        let rest: Substring
        if url.hasPrefix("http://") {
            rest = url.dropFirst(7)
            isTLS = false
        } else if url.hasPrefix("https://") {
            rest = url.dropFirst(8)
            isTLS = true
        } else {
            throw ParseError(description: "must start with http:// or https://")
        }
        guard url.utf8.count <= 256, !rest.contains(where: { $0 == "@" || $0 == "?" || $0 == "#" || $0 == " " || $0.asciiValue.map { $0 < 0x21 || $0 > 0x7E } ?? true })
        else { throw ParseError(description: "must be at most 256 printable ASCII bytes without user info, query or fragment") }
        let authority = rest.prefix { $0 != "/" }
        var path = String(rest.dropFirst(authority.count))
        while path.hasSuffix("/") { path.removeLast() }
        basePath = path
        if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(p) else {
                throw ParseError(description: "port must be 1...65535")
            }
            port = p
        } else {
            host = String(authority)
            port = isTLS ? 443 : 80
        }
        guard !host.isEmpty else { throw ParseError(description: "host is missing") }
    }
}

extension PartnerContract.Endpoints {
    public func parsedBaseURL() throws(PartnerEndpoint.ParseError) -> PartnerEndpoint { try PartnerEndpoint(url: baseURL) }
}
