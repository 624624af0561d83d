/// A key that signs, of any supported algorithm. Built once from a file or secret and then
/// shared: signing is safe from several threads at once.
public enum SigningKey: Sendable {
    case hmacSHA256(HMACSHA256)
    case rsaSHA256(RSA.Signing.PrivateKey)
    case sm2SM3(SM2.Signing.PrivateKey)
    case ed25519(Ed25519.Signing.PrivateKey)

    public var algorithm: SignatureAlgorithm {
        switch self {
        case .hmacSHA256: .hmacSHA256
        case .rsaSHA256: .rsaSHA256
        case .sm2SM3: .sm2SM3
        case .ed25519: .ed25519
        }
    }

    /// Loads a key for `algorithm`: a PEM private key, or for HMAC the raw shared secret
    /// (at least `HMACSHA256.contractKeyBytesMin` bytes).
    public init(algorithm: SignatureAlgorithm, material: [UInt8]) throws(SigningError) {
        switch algorithm {
        case .hmacSHA256:
            guard material.count >= HMACSHA256.contractKeyBytesMin else { throw .keyInvalid(reason: "HMAC secret shorter than 32 bytes") }
            self = .hmacSHA256(try HMACSHA256(key: material))
        case .rsaSHA256: self = .rsaSHA256(try RSA.Signing.PrivateKey(pemRepresentation: String(decoding: material, as: UTF8.self)))
        case .sm2SM3: self = .sm2SM3(try SM2.Signing.PrivateKey(pemRepresentation: String(decoding: material, as: UTF8.self)))
        case .ed25519: self = .ed25519(try Ed25519.Signing.PrivateKey(pemRepresentation: String(decoding: material, as: UTF8.self)))
        }
    }

    /// The key that verifies this key's signatures (the same secret for HMAC).
    public var verifyingKey: VerifyingKey {
        get throws(SigningError) {
            switch self {
            case .hmacSHA256(let key): .hmacSHA256(key)
            case .rsaSHA256(let key): .rsaSHA256(try key.publicKey)
            case .sm2SM3(let key): .sm2SM3(try key.publicKey)
            case .ed25519(let key): .ed25519(try key.publicKey)
            }
        }
    }

    func signature(bufferPointer message: UnsafeRawBufferPointer, sm2: SM2Options) throws(SigningError) -> [UInt8] {
        switch self {
        case .hmacSHA256(let key): try key.authenticationCode(bufferPointer: message)
        case .rsaSHA256(let key): try key.signature(bufferPointer: message)
        case .sm2SM3(let key): try key.signature(bufferPointer: message, id: sm2.distinguishingID, encoding: sm2.encoding)
        case .ed25519(let key): try key.signature(bufferPointer: message)
        }
    }
}

/// A key that verifies, of any supported algorithm. Safe to use from several threads at once.
public enum VerifyingKey: Sendable {
    case hmacSHA256(HMACSHA256)
    case rsaSHA256(RSA.Signing.PublicKey)
    case sm2SM3(SM2.Signing.PublicKey)
    case ed25519(Ed25519.Signing.PublicKey)

    public var algorithm: SignatureAlgorithm {
        switch self {
        case .hmacSHA256: .hmacSHA256
        case .rsaSHA256: .rsaSHA256
        case .sm2SM3: .sm2SM3
        case .ed25519: .ed25519
        }
    }

    /// Loads a key for `algorithm`: a PEM public key (a PEM private key is accepted too and
    /// reduced to its public half), or for HMAC the raw shared secret.
    public init(algorithm: SignatureAlgorithm, material: [UInt8]) throws(SigningError) {
        if algorithm == .hmacSHA256 {
            guard material.count >= HMACSHA256.contractKeyBytesMin else { throw .keyInvalid(reason: "HMAC secret shorter than 32 bytes") }
            self = .hmacSHA256(try HMACSHA256(key: material))
            return
        }
        let pem = String(decoding: material, as: UTF8.self)
        if pem.contains("PRIVATE KEY-----") {
            self = try SigningKey(algorithm: algorithm, material: material).verifyingKey
            return
        }
        switch algorithm {
        case .hmacSHA256: preconditionFailure("handled above")
        case .rsaSHA256: self = .rsaSHA256(try RSA.Signing.PublicKey(pemRepresentation: pem))
        case .sm2SM3: self = .sm2SM3(try SM2.Signing.PublicKey(pemRepresentation: pem))
        case .ed25519: self = .ed25519(try Ed25519.Signing.PublicKey(pemRepresentation: pem))
        }
    }

    /// Whether `signature` has the shape the algorithm produces (length, or canonical DER), so a
    /// garbled signature is reported as malformed rather than merely invalid.
    func isWellFormedSignature(_ signature: [UInt8], sm2: SM2Options) -> Bool {
        switch self {
        case .hmacSHA256: signature.count == HMACSHA256.byteCount
        case .rsaSHA256(let key): signature.count == key.key.maxSignatureBytes
        case .sm2SM3:
            sm2.encoding == .raw ? signature.count == 2 * SM2.scalarByteCount : (try? SM2.rawSignature(fromDER: signature)) != nil
        case .ed25519: signature.count == Ed25519.signatureByteCount
        }
    }

    func isValidSignature(_ signature: [UInt8], bufferPointer message: UnsafeRawBufferPointer, sm2: SM2Options) -> Bool {
        switch self {
        case .hmacSHA256(let key): return key.isValidAuthenticationCode(signature, bufferPointer: message)
        case .rsaSHA256(let key): return key.isValidSignature(signature, bufferPointer: message)
        case .sm2SM3(let key): return key.isValidSignature(signature, bufferPointer: message, id: sm2.distinguishingID, encoding: sm2.encoding)
        case .ed25519(let key): return key.isValidSignature(signature, bufferPointer: message)
        }
    }
}

/// What an SM2 contract fixes besides the key: the distinguishing ID and the signature encoding.
public struct SM2Options: Sendable, Hashable {
    public var distinguishingID: [UInt8]
    public var encoding: SM2.SignatureEncoding

    public init(distinguishingID: [UInt8] = SM2.defaultDistinguishingID, encoding: SM2.SignatureEncoding = .der) {
        self.distinguishingID = distinguishingID
        self.encoding = encoding
    }
}
