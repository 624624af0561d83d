import COpenSSL

/// Ed25519 signatures (RFC 8032), deterministic, 64 bytes.
public enum Ed25519 {
    public static let signatureByteCount = 64
    public enum Signing {}
}

extension Ed25519.Signing {
    /// An Ed25519 private key. Each pooled `EVP_MD_CTX` is initialised once for the key and then
    /// used for any number of one-shot `EVP_DigestSign` calls, as `openssl speed` does.
    public struct PrivateKey: Sendable {
        let key: PKey
        private let pool: ContextPool

        init(key: PKey) throws(SigningError) {
            guard key.kind == .ed25519 else { throw .keyInvalid(reason: "not an Ed25519 key") }
            self.key = key
            pool = Ed25519Contexts.pool(key: key, sign: true)
        }

        public init(pemRepresentation pem: String) throws(SigningError) { try self.init(key: .privateKey(pem: pem)) }
        public init(derRepresentation der: [UInt8]) throws(SigningError) { try self.init(key: .privateKey(der: der)) }
        /// From the 32-byte seed of RFC 8032.
        public init(rawRepresentation seed: [UInt8]) throws(SigningError) { try self.init(key: .ed25519(rawPrivate: seed)) }

        public static func generate() throws(SigningError) -> PrivateKey { try PrivateKey(key: .generate("ED25519")) }

        public var pemRepresentation: String { get throws(SigningError) { try key.privatePEM() } }
        public var publicKey: PublicKey { get throws(SigningError) { try PublicKey(key: key.publicOnly()) } }

        public func signature(for message: [UInt8]) throws(SigningError) -> [UInt8] {
            try message.withBytes { bytes throws(SigningError) in try signature(bufferPointer: bytes) }
        }

        func signature(bufferPointer message: UnsafeRawBufferPointer) throws(SigningError) -> [UInt8] {
            try pool.withContext { ctx throws(SigningError) -> [UInt8] in
                var length = Ed25519.signatureByteCount
                var ok = false
                let out = [UInt8](unsafeUninitializedCapacity: Ed25519.signatureByteCount) { buffer, count in
                    ok = EVP_DigestSign(ctx, buffer.baseAddress, &length, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count) == 1
                    count = ok ? length : 0
                }
                guard ok, length == Ed25519.signatureByteCount else { throw .cryptoFailure(operation: "Ed25519 sign") }
                return out
            }
        }
    }

    /// An Ed25519 public key.
    public struct PublicKey: Sendable {
        let key: PKey
        private let pool: ContextPool

        init(key: PKey) throws(SigningError) {
            guard key.kind == .ed25519 else { throw .keyInvalid(reason: "not an Ed25519 key") }
            self.key = key
            pool = Ed25519Contexts.pool(key: key, sign: false)
        }

        public init(pemRepresentation pem: String) throws(SigningError) { try self.init(key: .publicKey(pem: pem)) }
        public init(derRepresentation der: [UInt8]) throws(SigningError) { try self.init(key: .publicKey(der: der)) }
        public init(rawRepresentation bytes: [UInt8]) throws(SigningError) { try self.init(key: .ed25519(rawPublic: bytes)) }

        public var pemRepresentation: String { get throws(SigningError) { try key.publicPEM() } }

        public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
            message.withUnsafeBytes { isValidSignature(signature, bufferPointer: $0) }
        }

        func isValidSignature(_ signature: [UInt8], bufferPointer message: UnsafeRawBufferPointer) -> Bool {
            guard signature.count == Ed25519.signatureByteCount else { return false }
            let verified = try? pool.withContext { ctx throws(SigningError) -> Bool in
                EVP_DigestVerify(ctx, signature, signature.count, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count) == 1
            }
            if verified != true { EVPAlgorithms.clearErrors() }
            return verified == true
        }
    }
}

enum Ed25519Contexts {
    static func pool(key: PKey, sign: Bool) -> ContextPool {
        ContextPool(
            make: {
                guard let ctx = EVP_MD_CTX_new() else { return nil }
                let ok = sign
                    ? EVP_DigestSignInit_ex(ctx, nil, nil, nil, nil, key.pointer, nil) == 1
                    : EVP_DigestVerifyInit_ex(ctx, nil, nil, nil, nil, key.pointer, nil) == 1
                guard ok else { EVP_MD_CTX_free(ctx); return nil }
                return ctx
            },
            free: { EVP_MD_CTX_free($0) })
    }
}
