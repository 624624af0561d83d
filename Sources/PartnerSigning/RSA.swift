import COpenSSL

/// RSA signatures: RSASSA-PKCS1-v1_5 with SHA-256 ("RSA-SHA256", WeChat Pay's and Alipay's RSA2).
public enum RSA {
    /// Keys shorter than this are refused: SIGNING.md requires 2048 bits or more.
    public static let keyBitsMin = 2048
    public static let keyBitsMax = 16384

    public enum Signing {}

    /// Refuses keys that are not RSA or whose size is outside the contract's bounds.
    static func checkFitness(_ key: PKey) throws(SigningError) {
        guard key.kind == .rsa else { throw .keyInvalid(reason: "not an RSA key") }
        guard key.bits >= keyBitsMin else { throw .keyInvalid(reason: "RSA key shorter than 2048 bits") }
        guard key.bits <= keyBitsMax else { throw .keyInvalid(reason: "RSA key longer than 16384 bits") }
    }
}

extension RSA.Signing {
    /// An RSA private key. Signing hashes the message with a fetched SHA-256 and signs the digest
    /// with a per-key pool of prepared `EVP_PKEY_CTX`s, as `openssl speed` does.
    public struct PrivateKey: Sendable {
        let key: PKey
        private let pool: ContextPool

        init(key: PKey) throws(SigningError) {
            try RSA.checkFitness(key)
            self.key = key
            pool = RSAContexts.pool(key: key, sign: true)
        }

        public init(pemRepresentation pem: String) throws(SigningError) { try self.init(key: .privateKey(pem: pem)) }
        public init(derRepresentation der: [UInt8]) throws(SigningError) { try self.init(key: .privateKey(der: der)) }

        /// A fresh key of `bits` bits (at least 2048).
        public static func generate(bits: Int = 2048) throws(SigningError) -> PrivateKey {
            guard bits >= RSA.keyBitsMin, bits <= RSA.keyBitsMax else { throw .invalidInput(field: "bits") }
            return try PrivateKey(key: .generate("RSA", rsaBits: bits))
        }

        public var pemRepresentation: String { get throws(SigningError) { try key.privatePEM() } }
        public var publicKey: PublicKey { get throws(SigningError) { try PublicKey(key: key.publicOnly()) } }
        public var keySizeInBits: Int { key.bits }

        /// The PKCS#1 v1.5 signature of SHA-256(`message`). Deterministic.
        public func signature(for message: [UInt8]) throws(SigningError) -> [UInt8] {
            try message.withBytes { bytes throws(SigningError) in try signature(bufferPointer: bytes) }
        }

        func signature(bufferPointer message: UnsafeRawBufferPointer) throws(SigningError) -> [UInt8] {
            let size = key.maxSignatureBytes
            return try withScratch(byteCount: SHA256.byteCount) { digest throws(SigningError) in
                guard EVPAlgorithms.digest(EVPAlgorithms.sha256, message, into: digest.baseAddress!) else {
                    throw .cryptoFailure(operation: "SHA-256")
                }
                return try pool.withContext { ctx throws(SigningError) -> [UInt8] in
                    var signatureLength = size
                    var ok = false
                    let out = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
                        ok = EVP_PKEY_sign(ctx, buffer.baseAddress, &signatureLength, digest.baseAddress, SHA256.byteCount) == 1
                        count = ok ? signatureLength : 0
                    }
                    guard ok else { throw .cryptoFailure(operation: "RSA sign") }
                    return out
                }
            }
        }
    }

    /// An RSA public key.
    public struct PublicKey: Sendable {
        let key: PKey
        private let pool: ContextPool

        init(key: PKey) throws(SigningError) {
            try RSA.checkFitness(key)
            self.key = key
            pool = RSAContexts.pool(key: key, sign: false)
        }

        public init(pemRepresentation pem: String) throws(SigningError) { try self.init(key: .publicKey(pem: pem)) }
        public init(derRepresentation der: [UInt8]) throws(SigningError) { try self.init(key: .publicKey(der: der)) }

        public var pemRepresentation: String { get throws(SigningError) { try key.publicPEM() } }

        /// Whether `signature` is a valid PKCS#1 v1.5 SHA-256 signature of `message`.
        public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
            message.withUnsafeBytes { isValidSignature(signature, bufferPointer: $0) }
        }

        func isValidSignature(_ signature: [UInt8], bufferPointer message: UnsafeRawBufferPointer) -> Bool {
            guard signature.count == key.maxSignatureBytes else { return false }
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: SHA256.byteCount) { digest in
                guard EVPAlgorithms.digest(EVPAlgorithms.sha256, message, into: digest.baseAddress!) else { return false }
                let verified = try? pool.withContext { ctx throws(SigningError) -> Bool in
                    EVP_PKEY_verify(ctx, signature, signature.count, digest.baseAddress, SHA256.byteCount) == 1
                }
                if verified != true { EVPAlgorithms.clearErrors() }
                return verified == true
            }
        }
    }
}

/// Prepared RSA contexts: initialised once for sign or verify with PKCS#1 v1.5 padding and
/// SHA-256, then used for any number of operations.
enum RSAContexts {
    static func pool(key: PKey, sign: Bool) -> ContextPool {
        ContextPool(
            make: {
                guard let ctx = EVP_PKEY_CTX_new_from_pkey(nil, key.pointer, nil) else { return nil }
                let ok = (sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx)) == 1
                    && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1
                    && EVP_PKEY_CTX_set_signature_md(ctx, EVPAlgorithms.sha256) == 1
                guard ok else { EVP_PKEY_CTX_free(ctx); return nil }
                return ctx
            },
            free: { EVP_PKEY_CTX_free($0) })
    }
}
