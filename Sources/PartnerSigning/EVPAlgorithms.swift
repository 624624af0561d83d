import COpenSSL

/// OpenSSL algorithm objects fetched once per process. `EVP_sha256()` and friends re-fetch from
/// the provider on every use in OpenSSL 3, which costs several times a short operation.
enum EVPAlgorithms {
    // Fetched objects are immutable and documented as safe to share between threads; they live
    // for the whole process, so they are never freed.
    nonisolated(unsafe) static let sha256: OpaquePointer = fetchDigest("SHA256")
    nonisolated(unsafe) static let sm3: OpaquePointer = fetchDigest("SM3")
    nonisolated(unsafe) static let hmac: OpaquePointer = {
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else { preconditionFailure("OpenSSL has no HMAC") }
        return mac
    }()
    nonisolated(unsafe) static let aes256GCM: OpaquePointer = {
        guard let cipher = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) else {
            preconditionFailure("OpenSSL has no AES-256-GCM")
        }
        return cipher
    }()

    private static func fetchDigest(_ name: String) -> OpaquePointer {
        guard let md = EVP_MD_fetch(nil, name, nil) else { preconditionFailure("OpenSSL has no \(name)") }
        return md
    }

    /// One-shot digest with a fetched algorithm into a caller-provided buffer.
    static func digest(_ md: OpaquePointer, _ bytes: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) -> Bool {
        var length: UInt32 = 0
        return EVP_Digest(bytes.baseAddress, bytes.count, out, &length, md, nil) == 1
    }

    /// The same digest on a context borrowed from `contexts` (made for `md`): `EVP_Digest` makes
    /// and frees a context on every call, which for a short input costs more than the hashing.
    static func digest(_ md: OpaquePointer, _ bytes: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>,
                       contexts: ContextPool) -> Bool {
        guard let context = contexts.borrow() else { return false }
        var length: UInt32 = 0
        guard EVP_DigestInit_ex2(context, md, nil) == 1, EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1,
              EVP_DigestFinal_ex(context, out, &length) == 1 else {
            contexts.discard(context)
            clearErrors()
            return false
        }
        contexts.recycle(context)
        return true
    }

    /// Clears OpenSSL's thread-local error queue after an expected failure (a bad signature, a
    /// key that did not parse), so a later, unrelated check does not report a stale error.
    static func clearErrors() { ERR_clear_error() }
}
