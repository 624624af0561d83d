import COpenSSL

/// SM2 signatures with SM3 (GB/T 32918.2), with an explicit distinguishing ID.
///
/// OpenSSL 3.0 does not default the ID to `1234567812345678`: without one it uses an empty ID
/// and nothing interoperates. Every operation here sets the ID on the operation's pkey context
/// before any data, so forgetting it is impossible.
public enum SM2 {
    /// The ID GB/T 35276 recommends and most partners use unless their contract says otherwise.
    public static let defaultDistinguishingID: [UInt8] = Array("1234567812345678".utf8)
    /// ENTL is a 16-bit count of bits; longer IDs cannot be encoded, and real ones are short.
    public static let distinguishingIDBytesMax = 1024
    /// Each of r and s in the raw `r‖s` encoding.
    public static let scalarByteCount = 32
    /// DER `SEQUENCE { INTEGER r, INTEGER s }` is at most 72 bytes for a 256-bit curve.
    public static let derSignatureBytesMax = 72

    /// How a signature travels: DER `SEQUENCE{r,s}` (OpenSSL's own) or raw `r‖s` (64 bytes,
    /// each half left-padded), as many other libraries emit. The contract says which.
    public enum SignatureEncoding: String, Sendable, CaseIterable {
        case der
        case raw
    }

    public enum Signing {}

    /// Converts a DER signature to raw `r‖s`. Throws `signatureMalformed` unless the DER is the
    /// canonical encoding of two integers that fit in 32 bytes.
    public static func rawSignature(fromDER der: [UInt8]) throws(SigningError) -> [UInt8] {
        guard der.count <= derSignatureBytesMax, !der.isEmpty else { throw .signatureMalformed }
        let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            let sig = d2i_ECDSA_SIG(nil, &cursor, buffer.count)
            // Trailing bytes after the SEQUENCE would make two encodings of one signature.
            if let sig, cursor != buffer.baseAddress.map({ $0 + buffer.count }) {
                ECDSA_SIG_free(sig)
                return nil
            }
            return sig
        }
        guard let sig = parsed else { EVPAlgorithms.clearErrors(); throw .signatureMalformed }
        defer { ECDSA_SIG_free(sig) }
        var r: OpaquePointer?
        var s: OpaquePointer?
        ECDSA_SIG_get0(sig, &r, &s)
        var raw = [UInt8](repeating: 0, count: 2 * scalarByteCount)
        let ok = raw.withUnsafeMutableBufferPointer { out in
            BN_bn2binpad(r, out.baseAddress, Int32(scalarByteCount)) == Int32(scalarByteCount)
                && BN_bn2binpad(s, out.baseAddress! + scalarByteCount, Int32(scalarByteCount)) == Int32(scalarByteCount)
        }
        guard ok, try derSignature(fromRaw: raw) == der else { EVPAlgorithms.clearErrors(); throw .signatureMalformed }
        return raw
    }

    /// Converts raw `r‖s` (exactly 64 bytes) to DER.
    public static func derSignature(fromRaw raw: [UInt8]) throws(SigningError) -> [UInt8] {
        guard raw.count == 2 * scalarByteCount else { throw .signatureMalformed }
        guard let sig = ECDSA_SIG_new() else { throw .cryptoFailure(operation: "SM2 signature encoding") }
        defer { ECDSA_SIG_free(sig) }
        let r = BN_bin2bn(raw, Int32(scalarByteCount), nil)
        let s = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress! + scalarByteCount, Int32(scalarByteCount), nil) }
        guard let r, let s, ECDSA_SIG_set0(sig, r, s) == 1 else {
            BN_free(r)
            BN_free(s)
            throw .cryptoFailure(operation: "SM2 signature encoding")
        }
        let length = i2d_ECDSA_SIG(sig, nil)
        guard length > 0, Int(length) <= derSignatureBytesMax else { throw .cryptoFailure(operation: "SM2 signature encoding") }
        var der = [UInt8](repeating: 0, count: Int(length))
        let written = der.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return i2d_ECDSA_SIG(sig, &cursor)
        }
        guard written == length else { throw .cryptoFailure(operation: "SM2 signature encoding") }
        return der
    }
}

extension SM2.Signing {
    /// An SM2 private key.
    public struct PrivateKey: Sendable {
        let key: PKey
        private let pool: ContextPool

        init(key: PKey) throws(SigningError) {
            guard key.kind == .sm2 else { throw .keyInvalid(reason: "not an SM2 key") }
            self.key = key
            pool = SM2Contexts.pool()
        }

        public init(pemRepresentation pem: String) throws(SigningError) { try self.init(key: .privateKey(pem: pem)) }
        public init(derRepresentation der: [UInt8]) throws(SigningError) { try self.init(key: .privateKey(der: der)) }

        public static func generate() throws(SigningError) -> PrivateKey { try PrivateKey(key: .generate("SM2")) }

        public var pemRepresentation: String { get throws(SigningError) { try key.privatePEM() } }
        public var publicKey: PublicKey { get throws(SigningError) { try PublicKey(key: key.publicOnly()) } }

        /// A randomised SM2-with-SM3 signature of `message` under the distinguishing `id`.
        public func signature(
            for message: [UInt8], id: [UInt8] = SM2.defaultDistinguishingID, encoding: SM2.SignatureEncoding = .der
        ) throws(SigningError) -> [UInt8] {
            try message.withBytes { bytes throws(SigningError) in try signature(bufferPointer: bytes, id: id, encoding: encoding) }
        }

        func signature(bufferPointer message: UnsafeRawBufferPointer, id: [UInt8], encoding: SM2.SignatureEncoding) throws(SigningError) -> [UInt8] {
            guard id.count <= SM2.distinguishingIDBytesMax else { throw .invalidInput(field: "sm2 distinguishing id") }
            let der = try pool.withContext { ctx throws(SigningError) -> [UInt8] in
                guard SM2Contexts.initialise(ctx, key: key, id: id, sign: true) else { throw .cryptoFailure(operation: "SM2 sign setup") }
                var length = SM2.derSignatureBytesMax
                var ok = false
                let out = [UInt8](unsafeUninitializedCapacity: SM2.derSignatureBytesMax) { buffer, count in
                    ok = EVP_DigestSign(ctx, buffer.baseAddress, &length, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count) == 1
                    count = ok ? length : 0
                }
                guard ok else { throw .cryptoFailure(operation: "SM2 sign") }
                return out
            }
            return encoding == .der ? der : try SM2.rawSignature(fromDER: der)
        }
    }

    /// An SM2 public key.
    public struct PublicKey: Sendable {
        let key: PKey
        private let pool: ContextPool

        init(key: PKey) throws(SigningError) {
            guard key.kind == .sm2 else { throw .keyInvalid(reason: "not an SM2 key") }
            self.key = key
            pool = SM2Contexts.pool()
        }

        public init(pemRepresentation pem: String) throws(SigningError) { try self.init(key: .publicKey(pem: pem)) }
        public init(derRepresentation der: [UInt8]) throws(SigningError) { try self.init(key: .publicKey(der: der)) }

        public var pemRepresentation: String { get throws(SigningError) { try key.publicPEM() } }

        /// Whether `signature` (in `encoding`) is a valid SM2-with-SM3 signature of `message` under `id`.
        public func isValidSignature(
            _ signature: [UInt8], for message: [UInt8], id: [UInt8] = SM2.defaultDistinguishingID, encoding: SM2.SignatureEncoding = .der
        ) -> Bool {
            message.withUnsafeBytes { isValidSignature(signature, bufferPointer: $0, id: id, encoding: encoding) }
        }

        func isValidSignature(_ signature: [UInt8], bufferPointer message: UnsafeRawBufferPointer, id: [UInt8], encoding: SM2.SignatureEncoding) -> Bool {
            guard id.count <= SM2.distinguishingIDBytesMax else { return false }
            let der: [UInt8]
            switch encoding {
            case .der:
                guard signature.count <= SM2.derSignatureBytesMax else { return false }
                der = signature
            case .raw:
                guard let converted = try? SM2.derSignature(fromRaw: signature) else { return false }
                der = converted
            }
            let verified = try? pool.withContext { ctx throws(SigningError) -> Bool in
                guard SM2Contexts.initialise(ctx, key: key, id: id, sign: false) else { throw .cryptoFailure(operation: "SM2 verify setup") }
                return EVP_DigestVerify(ctx, der, der.count, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count) == 1
            }
            if verified != true { EVPAlgorithms.clearErrors() }
            return verified == true
        }
    }
}

/// SM2 needs a fresh digest-sign initialisation per operation (the ID is hashed into Z at
/// init), but the `EVP_MD_CTX` itself is pooled.
enum SM2Contexts {
    static func pool() -> ContextPool {
        ContextPool(make: { EVP_MD_CTX_new() }, free: { EVP_MD_CTX_free($0) })
    }

    static func initialise(_ ctx: OpaquePointer, key: PKey, id: [UInt8], sign: Bool) -> Bool {
        _ = EVP_MD_CTX_reset(ctx)
        var pctx: OpaquePointer?
        let initialised = sign
            ? EVP_DigestSignInit_ex(ctx, &pctx, "SM3", nil, nil, key.pointer, nil) == 1
            : EVP_DigestVerifyInit_ex(ctx, &pctx, "SM3", nil, nil, key.pointer, nil) == 1
        guard initialised, let pctx else { return false }
        // An empty ID is legal (and is what OpenSSL uses when none is set); pass a valid pointer.
        return id.withUnsafeBytes { idBytes in
            var empty: UInt8 = 0
            return withUnsafeMutablePointer(to: &empty) { emptyPointer in
                EVP_PKEY_CTX_set1_id(pctx, idBytes.baseAddress ?? UnsafeRawPointer(emptyPointer), Int32(idBytes.count)) == 1
            }
        }
    }
}
