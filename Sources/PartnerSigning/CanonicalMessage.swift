/// The exact bytes each format signs (SIGNING.md), built into one pre-sized buffer.
enum CanonicalMessage {
    /// `METHOD\nPATH_AND_QUERY\nTIMESTAMP\nNONCE\nBODY\n` (`jl1` and `wechatpay-v3` requests).
    static func request(method: String, pathAndQuery: String, timestamp: String, nonce: String, body: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(method.utf8.count + pathAndQuery.utf8.count + timestamp.utf8.count + nonce.utf8.count + body.count + 5)
        appendUTF8(method, to: &out)
        out.append(0x0A)
        appendUTF8(pathAndQuery, to: &out)
        out.append(0x0A)
        appendTail(&out, timestamp: timestamp, nonce: nonce, body: body)
        return out
    }

    /// `TIMESTAMP\nNONCE\nBODY\n` (responses and callbacks).
    static func response(timestamp: String, nonce: String, body: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(timestamp.utf8.count + nonce.utf8.count + body.count + 3)
        appendTail(&out, timestamp: timestamp, nonce: nonce, body: body)
        return out
    }

    private static func appendTail(_ out: inout [UInt8], timestamp: String, nonce: String, body: [UInt8]) {
        appendUTF8(timestamp, to: &out)
        out.append(0x0A)
        appendUTF8(nonce, to: &out)
        out.append(0x0A)
        out.append(contentsOf: body)
        out.append(0x0A)
    }

    /// Appends from contiguous UTF-8: `append(contentsOf: text.utf8)` copies byte by byte.
    @inline(__always)
    private static func appendUTF8(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { out.append(contentsOf: $0) }
    }

    /// `sorted-params`: keys in byte order, `key=value` joined by `&`, values raw. `sign` and
    /// empty values are left out; so is `sign_type` unless `includeSignType` (requests include it).
    static func sortedParameters(_ parameters: [(name: String, value: String)], includeSignType: Bool) -> [UInt8] {
        let kept = parameters
            .filter { !$0.value.isEmpty && $0.name != "sign" && (includeSignType || $0.name != "sign_type") }
            .sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var out = [UInt8]()
        out.reserveCapacity(kept.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 2 })
        for (i, parameter) in kept.enumerated() {
            if i > 0 { out.append(UInt8(ascii: "&")) }
            out.append(contentsOf: parameter.name.utf8)
            out.append(UInt8(ascii: "="))
            out.append(contentsOf: parameter.value.utf8)
        }
        return out
    }
}
