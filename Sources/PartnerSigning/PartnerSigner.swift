/// Signs outbound requests, responses and callbacks in one partner's scheme with the newest
/// valid key of a ring. Immutable and `Sendable`: one instance serves every thread.
///
///     let signer = try PartnerSigner(scheme: scheme, keyRing: ring)
///     let signed = try signer.sign(.request, method: "POST", pathAndQuery: "/v1/fund",
///                                  body: body, timestamp: now, nonce: PartnerSigner.makeNonce())
///     for (name, value) in signed.headers { request.headers.add(name, value) }
public struct PartnerSigner: Sendable {
    public let scheme: SigningScheme
    public let keyRing: SigningKeyRing

    /// Throws `invalidInput` if the scheme is inconsistent, `algorithmMismatch` if a key in the
    /// ring is not of the scheme's algorithm.
    public init(scheme: SigningScheme, keyRing: SigningKeyRing) throws(SigningError) {
        try scheme.validate()
        for entry in keyRing.entries where entry.key.algorithm != scheme.algorithm { throw .algorithmMismatch }
        self.scheme = scheme
        self.keyRing = keyRing
    }

    /// A fresh 32-character nonce from OpenSSL's CSPRNG, drawn through `NonceRandomPool`.
    public static func makeNonce() -> String {
        makeNonce(from: .shared)
    }

    static func makeNonce(from pool: NonceRandomPool) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: nonceBytes) { random in
            // RAND_bytes failing means the process has no entropy; nothing safe can continue.
            guard pool.fill(random) else { preconditionFailure("OpenSSL RAND_bytes failed") }
            return String(unsafeUninitializedCapacity: nonceBytes) { out in
                for i in 0..<nonceBytes { out[i] = nonceAlphabet[Int(random[i]) % nonceAlphabet.count] }
                return nonceBytes
            }
        }
    }

    private static let nonceBytes = 32
    private static let nonceAlphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// Signs one message at `timestamp` (unix seconds) with `nonce`, using the key valid then.
    ///
    /// - `jl1`: requests and callbacks get `Authorization: JL1-<ALG> ...` over
    ///   `METHOD\nPATH\nTS\nNONCE\nBODY\n`; responses get `JL-*` headers over `TS\nNONCE\nBODY\n`.
    /// - `wechatpay-v3`: requests get `Authorization: WECHATPAY2-...`; responses and callbacks get
    ///   `Wechatpay-*` headers.
    /// - `sorted-params`: the parameters of `pathAndQuery` and `body` plus key id, timestamp,
    ///   nonce and (requests) `sign_type` are signed; the result's `parameters` are what to add.
    public func sign(
        _ kind: MessageKind, method: String = "", pathAndQuery: String = "", body: [UInt8], timestamp: Int64, nonce: String
    ) throws(SigningError) -> SignedMessage {
        guard SigningSyntax.isValidNonce(nonce) else { throw .invalidInput(field: "nonce") }
        let ts = String(timestamp)
        guard timestamp >= 0, ts.utf8.count <= SigningSyntax.timestampDigitsMax else { throw .invalidInput(field: "timestamp") }
        let entry = try keyRing.newestValid(at: timestamp)
        switch (scheme.format, kind) {
        case (.jl1, .request), (.jl1, .callback), (.wechatpayV3, .request):
            try Self.checkRequestLine(method: method, pathAndQuery: pathAndQuery)
            let message = CanonicalMessage.request(method: method, pathAndQuery: pathAndQuery, timestamp: ts, nonce: nonce, body: body)
            let signature = try sign(message, with: entry.key)
            let b64 = Base64.encode(signature)
            let value: String
            if scheme.format == .jl1 {
                value = AuthorizationHeader.render(
                    token: scheme.authorizationToken, [("keyid", entry.id), ("nonce", nonce), ("timestamp", ts), ("signature", b64)])
            } else {
                value = AuthorizationHeader.render(
                    token: scheme.authorizationToken,
                    [("mchid", scheme.merchantID), ("nonce_str", nonce), ("signature", b64), ("timestamp", ts), ("serial_no", entry.id)])
            }
            return SignedMessage(keyID: entry.id, message: message, signature: signature, headers: [(HeaderNames.authorization, value)], parameters: [])
        case (.jl1, .response), (.wechatpayV3, .response), (.wechatpayV3, .callback):
            let message = CanonicalMessage.response(timestamp: ts, nonce: nonce, body: body)
            let signature = try sign(message, with: entry.key)
            let names = scheme.format == .jl1 ? HeaderNames.jl1Response : HeaderNames.wechatpayResponse
            var headers: [(name: String, value: String)] = [(names.timestamp, ts), (names.nonce, nonce), (names.signature, Base64.encode(signature)), (names.keyID, entry.id)]
            if let typeHeader = names.signatureType { headers.append((typeHeader, scheme.authorizationToken)) }
            return SignedMessage(keyID: entry.id, message: message, signature: signature, headers: headers, parameters: [])
        case (.sortedParams, _):
            var parameters = try SortedParameters.parse(pathAndQuery: pathAndQuery, body: body)
            let reserved = [scheme.keyIDParameter, scheme.timestampParameter, scheme.nonceParameter, "sign", "sign_type"]
            guard !parameters.contains(where: { reserved.contains($0.name) }) else { throw .invalidInput(field: "parameters: reserved name present") }
            var added: [(name: String, value: String)] = [
                (scheme.keyIDParameter, entry.id), (scheme.timestampParameter, ts), (scheme.nonceParameter, nonce), ("sign_type", scheme.signType),
            ]
            parameters.append(contentsOf: added)
            let message = CanonicalMessage.sortedParameters(parameters, includeSignType: kind == .request)
            let signature = try sign(message, with: entry.key)
            added.append(("sign", Base64.encode(signature)))
            return SignedMessage(keyID: entry.id, message: message, signature: signature, headers: [], parameters: added)
        }
    }

    private func sign(_ message: [UInt8], with key: SigningKey) throws(SigningError) -> [UInt8] {
        try message.withBytes { bytes throws(SigningError) in try key.signature(bufferPointer: bytes, sm2: scheme.sm2) }
    }

    /// A method is an HTTP token; the path starts with `/` and holds no control characters or
    /// spaces, so the signed message's lines cannot be shifted.
    static func checkRequestLine(method: String, pathAndQuery: String) throws(SigningError) {
        guard !method.isEmpty, method.utf8.count <= 16, SigningSyntax.allBytes(of: method, { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else {
            throw .invalidInput(field: "method")
        }
        guard pathAndQuery.utf8.first == UInt8(ascii: "/"), pathAndQuery.utf8.count <= 8192,
            SigningSyntax.allBytes(of: pathAndQuery, { $0 > 0x20 && $0 < 0x7F })
        else { throw .invalidInput(field: "pathAndQuery") }
    }
}
