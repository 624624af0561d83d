import COpenSSL

/// HMAC-SHA256 with one key, over OpenSSL's `EVP_MAC`.
///
/// The MAC algorithm is fetched once per process and each context is keyed once, then re-used
/// with `EVP_MAC_init(ctx, NULL, ...)`, which keeps the key: re-creating contexts per call costs
/// about three times the MAC of a short message. Safe to use from several threads at once.
public struct HMACSHA256: Sendable {
    public static let byteCount = 32
    /// The shortest shared secret a partner key ring accepts (SIGNING.md). The primitive itself
    /// accepts any length, as RFC 4231's vectors need.
    public static let contractKeyBytesMin = 32
    /// Longer keys are legal but pointless; this bound keeps input-derived keys small.
    public static let keyBytesMax = 1024

    private let pool: ContextPool

    public init(key: [UInt8]) throws(SigningError) {
        guard key.count <= Self.keyBytesMax else { throw .keyInvalid(reason: "HMAC key longer than 1024 bytes") }
        // The key is copied into each context when it is made; the copy kept here lives only as
        // long as the pool does.
        let keyCopy = key
        pool = ContextPool(
            make: {
                guard let ctx = EVP_MAC_CTX_new(EVPAlgorithms.hmac) else { return nil }
                let ok = keyCopy.withUnsafeBufferPointer { keyBytes -> Bool in
                    "SHA256".withCString { digestName in
                        var params = [
                            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, UnsafeMutablePointer(mutating: digestName), 0),
                            OSSL_PARAM_construct_end(),
                        ]
                        // A zero-length key must still be a non-NULL pointer, or OpenSSL reads it as "keep the old key".
                        var empty: UInt8 = 0
                        return withUnsafeMutablePointer(to: &empty) { emptyPointer in
                            EVP_MAC_init(ctx, keyBytes.baseAddress ?? UnsafePointer(emptyPointer), keyBytes.count, &params) == 1
                        }
                    }
                }
                guard ok else { EVP_MAC_CTX_free(ctx); return nil }
                return ctx
            },
            free: { EVP_MAC_CTX_free($0) })
        // Fail at construction, not at first use, if OpenSSL refuses the key.
        _ = try pool.withContext { _ throws(SigningError) in () }
    }

    /// The 32-byte MAC of `message`.
    public func authenticationCode(for message: [UInt8]) throws(SigningError) -> [UInt8] {
        try message.withBytes { bytes throws(SigningError) in try authenticationCode(bufferPointer: bytes) }
    }

    func authenticationCode(bufferPointer message: UnsafeRawBufferPointer) throws(SigningError) -> [UInt8] {
        var ok = false
        let out = [UInt8](unsafeUninitializedCapacity: Self.byteCount) { buffer, count in
            ok = mac(message, into: buffer.baseAddress!)
            count = ok ? Self.byteCount : 0
        }
        guard ok else { throw .cryptoFailure(operation: "HMAC") }
        return out
    }

    /// The hot path, shared by signing and verification: one pooled context, no allocation.
    @inline(__always)
    private func mac(_ message: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) -> Bool {
        guard let ctx = pool.borrow() else { return false }
        var outLength = 0
        let ok = EVP_MAC_init(ctx, nil, 0, nil) == 1
            && EVP_MAC_update(ctx, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count) == 1
            && EVP_MAC_final(ctx, out, &outLength, Self.byteCount) == 1
            && outLength == Self.byteCount
        if ok { pool.recycle(ctx) } else { pool.discard(ctx) }
        return ok
    }

    /// Whether `code` is the MAC of `message` (given as raw bytes), compared in constant time.
    func isValidAuthenticationCode(_ code: [UInt8], bufferPointer message: UnsafeRawBufferPointer) -> Bool {
        guard code.count == Self.byteCount else { return false }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.byteCount) { expected in
            guard mac(message, into: expected.baseAddress!) else { return false }
            return code.withUnsafeBytes { ConstantTime.equals(expected.baseAddress!, $0.baseAddress!, count: Self.byteCount) }
        }
    }

    /// Whether `code` is the MAC of `message`, compared in constant time.
    public func isValidAuthenticationCode(_ code: [UInt8], for message: [UInt8]) -> Bool {
        message.withUnsafeBytes { isValidAuthenticationCode(code, bufferPointer: $0) }
    }
}
