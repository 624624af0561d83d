/// Verifies inbound requests, callbacks and responses in one partner's scheme: signature with
/// the key the message names, timestamp within the tolerance, nonce not seen before.
/// Immutable and `Sendable`; the replay guard it shares is thread-safe.
///
/// Checks run cheapest first and the nonce is recorded only after the signature verified, so
/// forged messages cannot fill the replay guard:
/// parse → key lookup → timestamp window → signature → nonce.
public struct PartnerVerifier: Sendable {
    public let scheme: SigningScheme
    public let keyRing: VerifyingKeyRing
    public let replayGuard: NonceReplayGuard
    /// `scheme.authorizationToken`, built once rather than per message.
    private let authorizationToken: String

    public init(scheme: SigningScheme, keyRing: VerifyingKeyRing, replayGuard: NonceReplayGuard) throws(SigningError) {
        try scheme.validate()
        for entry in keyRing.entries where entry.key.algorithm != scheme.algorithm { throw .algorithmMismatch }
        // A nonce must be remembered as long as its message could still pass the timestamp check.
        guard replayGuard.configuration.retentionSeconds >= 2 * scheme.timestampToleranceSeconds else {
            throw .invalidInput(field: "replay guard retentionSeconds shorter than twice the timestamp tolerance")
        }
        self.scheme = scheme
        self.keyRing = keyRing
        self.replayGuard = replayGuard
        authorizationToken = scheme.authorizationToken
    }

    /// Verifies one message and returns the id of the key that signed it. `headers` are looked
    /// up case-insensitively; a relevant header given twice is malformed. `now` is unix seconds.
    @discardableResult
    public func verify(
        _ kind: MessageKind, method: String = "", pathAndQuery: String = "", headers: [(name: String, value: String)],
        body: [UInt8], now: Int64
    ) throws(SigningError) -> String {
        let fields = try extract(kind, method: method, pathAndQuery: pathAndQuery, headers: headers, body: body)
        let entry = try keyRing.key(id: fields.keyID, at: now)
        let (distance, overflow) = now.subtractingReportingOverflow(fields.timestamp)
        guard !overflow, distance.magnitude <= UInt64(scheme.timestampToleranceSeconds) else { throw .timestampOutOfWindow }
        guard entry.key.isWellFormedSignature(fields.signature, sm2: scheme.sm2) else { throw .signatureMalformed }
        let valid = fields.message.withUnsafeBytes { bytes in
            entry.key.isValidSignature(fields.signature, bufferPointer: bytes, sm2: scheme.sm2)
        }
        guard valid else { throw .signatureInvalid }
        try replayGuard.record(keyID: entry.id, nonce: fields.nonce, now: now)
        return entry.id
    }

    struct Fields {
        var keyID: String
        var timestamp: Int64
        var nonce: String
        var signature: [UInt8]
        var message: [UInt8]
    }

    func extract(
        _ kind: MessageKind, method: String, pathAndQuery: String, headers: [(name: String, value: String)], body: [UInt8]
    ) throws(SigningError) -> Fields {
        switch (scheme.format, kind) {
        case (.jl1, .request), (.jl1, .callback), (.wechatpayV3, .request):
            return try extractAuthorization(method: method, pathAndQuery: pathAndQuery, headers: headers, body: body)
        case (.jl1, .response), (.wechatpayV3, .response), (.wechatpayV3, .callback):
            return try extractResponseHeaders(headers: headers, body: body)
        case (.sortedParams, _):
            return try extractParameters(kind, pathAndQuery: pathAndQuery, body: body)
        }
    }

    private func extractAuthorization(
        method: String, pathAndQuery: String, headers: [(name: String, value: String)], body: [UInt8]
    ) throws(SigningError) -> Fields {
        guard let value = try Self.header(HeaderNames.authorization, in: headers) else { throw .signatureMissing }
        // `header(_:in:)` has checked the value's length and bytes already.
        let header = try AuthorizationHeader(parsing: value, trustedPrintable: true)
        guard header.tokenIs(authorizationToken) else { throw .algorithmMismatch }
        let names = scheme.format == .jl1 ? HeaderNames.jl1Authorization : HeaderNames.wechatpayAuthorization
        if scheme.format == .wechatpayV3 {
            guard let mchid = header.value("mchid"), mchid.utf8.count <= SigningSyntax.merchantIDBytesMax else {
                throw .headerMalformed(field: "Authorization.mchid")
            }
            if !scheme.merchantID.isEmpty, mchid != scheme.merchantID { throw .headerMalformed(field: "Authorization.mchid") }
        }
        guard let signatureText = header.range(of: names.signature), !signatureText.isEmpty else { throw .signatureMissing }
        let keyID = try Self.keyID(header.value(names.keyID), field: "Authorization." + names.keyID)
        let nonce = try Self.nonce(header.value(names.nonce), field: "Authorization." + names.nonce)
        let (timestamp, timestampText) = try Self.timestamp(header.value(names.timestamp), field: "Authorization." + names.timestamp)
        // Decoded where it lies in the header: the signature's text is never needed as a String.
        let signature = try header.withBytes(of: signatureText) { (text) throws(SigningError) in try Self.signatureBytes(text) }
        do {
            try PartnerSigner.checkRequestLine(method: method, pathAndQuery: pathAndQuery)
        } catch {
            throw .headerMalformed(field: "request line")
        }
        let message = CanonicalMessage.request(method: method, pathAndQuery: pathAndQuery, timestamp: timestampText, nonce: nonce, body: body)
        return Fields(keyID: keyID, timestamp: timestamp, nonce: nonce, signature: signature, message: message)
    }

    private func extractResponseHeaders(headers: [(name: String, value: String)], body: [UInt8]) throws(SigningError) -> Fields {
        let names = scheme.format == .jl1 ? HeaderNames.jl1Response : HeaderNames.wechatpayResponse
        guard let signatureText = try Self.header(names.signature, in: headers), !signatureText.isEmpty else { throw .signatureMissing }
        if let typeName = names.signatureType, let type = try Self.header(typeName, in: headers), type != authorizationToken {
            throw .algorithmMismatch
        }
        let keyID = try Self.keyID(Self.header(names.keyID, in: headers), field: names.keyID)
        let nonce = try Self.nonce(Self.header(names.nonce, in: headers), field: names.nonce)
        let (timestamp, timestampText) = try Self.timestamp(Self.header(names.timestamp, in: headers), field: names.timestamp)
        let signature = try Self.signatureBytes(signatureText)
        let message = CanonicalMessage.response(timestamp: timestampText, nonce: nonce, body: body)
        return Fields(keyID: keyID, timestamp: timestamp, nonce: nonce, signature: signature, message: message)
    }

    private func extractParameters(_ kind: MessageKind, pathAndQuery: String, body: [UInt8]) throws(SigningError) -> Fields {
        let parameters = try SortedParameters.parse(pathAndQuery: pathAndQuery, body: body)
        func value(_ name: String) -> String? { parameters.first(where: { $0.name == name })?.value }
        guard let signatureText = value("sign"), !signatureText.isEmpty else { throw .signatureMissing }
        guard let signType = value("sign_type") else { throw .headerMalformed(field: "sign_type") }
        guard signType == scheme.signType else { throw .algorithmMismatch }
        let keyID = try Self.keyID(value(scheme.keyIDParameter), field: scheme.keyIDParameter)
        let nonce = try Self.nonce(value(scheme.nonceParameter), field: scheme.nonceParameter)
        let (timestamp, _) = try Self.timestamp(value(scheme.timestampParameter), field: scheme.timestampParameter)
        let signature = try Self.signatureBytes(signatureText)
        let message = CanonicalMessage.sortedParameters(parameters, includeSignType: kind == .request)
        return Fields(keyID: keyID, timestamp: timestamp, nonce: nonce, signature: signature, message: message)
    }

    // MARK: Field checks

    /// The one value of header `name` (case-insensitive), nil if absent. Repeated, over-long or
    /// non-printable values are malformed.
    static func header(_ name: String, in headers: [(name: String, value: String)]) throws(SigningError) -> String? {
        // By index, lengths first: no header is copied out of the array to be compared.
        let nameBytes = name.utf8.count
        var foundIndex: Int?
        for index in headers.indices where headers[index].name.utf8.count == nameBytes && asciiCaseInsensitiveEquals(headers[index].name, name) {
            guard foundIndex == nil else { throw .headerMalformed(field: name + " repeated") }
            foundIndex = index
        }
        guard let foundIndex else { return nil }
        let found = headers[foundIndex].value
        guard found.utf8.count <= AuthorizationHeader.valueBytesMax, SigningSyntax.isPrintableASCII(found) else {
            throw .headerMalformed(field: name)
        }
        return found
    }

    static func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
        // Native strings know their UTF-8 length: most names are told apart here.
        guard a.utf8.count == b.utf8.count else { return false }
        var a = a
        var b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                for i in 0..<x.count where x[i] != y[i] {
                    let folded = x[i] | 0x20
                    guard folded == y[i] | 0x20, folded >= UInt8(ascii: "a"), folded <= UInt8(ascii: "z") else { return false }
                }
                return true
            }
        }
    }

    // Field names are built only when they are reported.
    private static func keyID(_ value: String?, field: @autoclosure () -> String) throws(SigningError) -> String {
        guard let value, SigningSyntax.isValidKeyID(value) else { throw .headerMalformed(field: field()) }
        return value
    }

    private static func nonce(_ value: String?, field: @autoclosure () -> String) throws(SigningError) -> String {
        guard let value, SigningSyntax.isValidNonce(value) else { throw .headerMalformed(field: field()) }
        return value
    }

    private static func timestamp(_ value: String?, field: @autoclosure () -> String) throws(SigningError) -> (Int64, String) {
        guard let value, let seconds = SigningSyntax.parseTimestamp(value) else { throw .headerMalformed(field: field()) }
        return (seconds, value)
    }

    private static func signatureBytes(_ text: String) throws(SigningError) -> [UInt8] {
        var text = text
        let result: Result<[UInt8], SigningError> = text.withUTF8 { bytes in Result { () throws(SigningError) in try signatureBytes(bytes) } }
        return try result.get()
    }

    private static func signatureBytes(_ text: UnsafeBufferPointer<UInt8>) throws(SigningError) -> [UInt8] {
        guard text.count <= SigningSyntax.signatureBase64BytesMax, let bytes = Base64.decode(buffer: text), !bytes.isEmpty else {
            throw .signatureMalformed
        }
        return bytes
    }
}
