import COpenSSL

/// Owns one `EVP_PKEY`. A parsed key is immutable, and OpenSSL allows one `EVP_PKEY` to be used
/// by several threads at once as long as each operation has its own context, which the key
/// types here guarantee through `ContextPool`.
final class PKey: @unchecked Sendable {
    /// The longest PEM or DER text accepted: a 16384-bit RSA private key is under 13 KB of PEM.
    static let encodedBytesMax = 64 * 1024

    enum Kind: Sendable { case rsa, sm2, ed25519 }

    let pointer: OpaquePointer
    let kind: Kind

    private init(taking pointer: OpaquePointer) throws(SigningError) {
        self.pointer = pointer
        if EVP_PKEY_is_a(pointer, "SM2") == 1 {
            kind = .sm2
        } else if EVP_PKEY_is_a(pointer, "RSA") == 1 {
            kind = .rsa
        } else if EVP_PKEY_is_a(pointer, "ED25519") == 1 {
            kind = .ed25519
        } else {
            // Plain EC keys are refused, even on the SM2 curve: signing with one would silently
            // produce ECDSA, not SM2. OpenSSL 3 loads SM2-curve PEM keys as type SM2.
            EVP_PKEY_free(pointer)
            throw .keyInvalid(reason: "unsupported key type")
        }
    }

    deinit { EVP_PKEY_free(pointer) }

    var bits: Int { Int(EVP_PKEY_get_bits(pointer)) }
    var maxSignatureBytes: Int { Int(EVP_PKEY_get_size(pointer)) }

    // MARK: Loading

    static func privateKey(pem: String) throws(SigningError) -> PKey {
        try withMemoryBIO(Array(pem.utf8)) { bio in PEM_read_bio_PrivateKey(bio, nil, nil, nil) }
    }

    static func publicKey(pem: String) throws(SigningError) -> PKey {
        try withMemoryBIO(Array(pem.utf8)) { bio in PEM_read_bio_PUBKEY(bio, nil, nil, nil) }
    }

    static func privateKey(der: [UInt8]) throws(SigningError) -> PKey {
        try decode(der) { pp, count in d2i_AutoPrivateKey(nil, pp, count) }
    }

    static func publicKey(der: [UInt8]) throws(SigningError) -> PKey {
        try decode(der) { pp, count in d2i_PUBKEY(nil, pp, count) }
    }

    static func ed25519(rawPrivate seed: [UInt8]) throws(SigningError) -> PKey {
        guard seed.count == 32 else { throw .keyInvalid(reason: "Ed25519 private key must be 32 bytes") }
        guard let p = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, 32) else {
            EVPAlgorithms.clearErrors()
            throw .keyInvalid(reason: "Ed25519 private key rejected")
        }
        return try PKey(taking: p)
    }

    static func ed25519(rawPublic bytes: [UInt8]) throws(SigningError) -> PKey {
        guard bytes.count == 32 else { throw .keyInvalid(reason: "Ed25519 public key must be 32 bytes") }
        guard let p = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, bytes, 32) else {
            EVPAlgorithms.clearErrors()
            throw .keyInvalid(reason: "Ed25519 public key rejected")
        }
        return try PKey(taking: p)
    }

    /// Generates a key: `"RSA"` (with `rsaBits`), `"SM2"` or `"ED25519"`.
    static func generate(_ name: String, rsaBits: Int = 0) throws(SigningError) -> PKey {
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, name, nil) else {
            throw .cryptoFailure(operation: "key generation setup")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        guard EVP_PKEY_keygen_init(ctx) == 1 else { throw .cryptoFailure(operation: "key generation setup") }
        if rsaBits > 0, EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, Int32(rsaBits)) != 1 {
            throw .cryptoFailure(operation: "key generation setup")
        }
        var out: OpaquePointer?
        guard EVP_PKEY_generate(ctx, &out) == 1, let key = out else {
            EVPAlgorithms.clearErrors()
            throw .cryptoFailure(operation: "key generation")
        }
        return try PKey(taking: key)
    }

    private static func withMemoryBIO(_ bytes: [UInt8], _ read: (OpaquePointer) -> OpaquePointer?) throws(SigningError) -> PKey {
        guard bytes.count <= encodedBytesMax else { throw .keyInvalid(reason: "key text longer than 64 KiB") }
        let loaded: OpaquePointer? = bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return read(bio)
        }
        guard let key = loaded else {
            EVPAlgorithms.clearErrors()
            throw .keyInvalid(reason: "not a PEM key of the expected kind")
        }
        return try PKey(taking: key)
    }

    private static func decode(
        _ der: [UInt8], _ read: (UnsafeMutablePointer<UnsafePointer<UInt8>?>, Int) -> OpaquePointer?
    ) throws(SigningError) -> PKey {
        guard der.count <= encodedBytesMax else { throw .keyInvalid(reason: "key DER longer than 64 KiB") }
        let loaded: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return read(&cursor, buffer.count)
        }
        guard let key = loaded else {
            EVPAlgorithms.clearErrors()
            throw .keyInvalid(reason: "not a DER key of the expected kind")
        }
        return try PKey(taking: key)
    }

    // MARK: Encoding

    /// PKCS#8 PEM of the private key.
    func privatePEM() throws(SigningError) -> String {
        try writePEM { bio in PEM_write_bio_PrivateKey(bio, pointer, nil, nil, 0, nil, nil) }
    }

    /// SubjectPublicKeyInfo PEM of the public key.
    func publicPEM() throws(SigningError) -> String {
        try writePEM { bio in PEM_write_bio_PUBKEY(bio, pointer) }
    }

    /// The public half as its own key object, so a verifier never holds private material.
    func publicOnly() throws(SigningError) -> PKey {
        try PKey.publicKey(pem: publicPEM())
    }

    private func writePEM(_ write: (OpaquePointer) -> Int32) throws(SigningError) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw .cryptoFailure(operation: "PEM encoding") }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { throw .cryptoFailure(operation: "PEM encoding") }
        var data: UnsafeMutablePointer<CChar>?
        let length = COpenSSL_BIO_get_mem_data(bio, &data)
        guard length > 0, let data else { throw .cryptoFailure(operation: "PEM encoding") }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }
}
