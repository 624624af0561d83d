import COpenSSL

/// SHA-256 over OpenSSL's EVP digest API.
public enum SHA256 {
    public static let byteCount = 32

    /// Digest contexts kept between calls (see `EVPAlgorithms.digest(_:_:into:contexts:)`).
    private static let contexts = ContextPool(make: { EVP_MD_CTX_new() }, free: { EVP_MD_CTX_free($0) })

    /// The SHA-256 digest of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { hash(bufferPointer: $0) }
    }

    public static func hash(_ text: String) -> [UInt8] { hash(Array(text.utf8)) }

    static func hash(bufferPointer bytes: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: byteCount) { out, count in
            let ok = EVPAlgorithms.digest(EVPAlgorithms.sha256, bytes, into: out.baseAddress!, contexts: contexts)
            precondition(ok, "EVP_Digest(SHA-256) failed")
            count = byteCount
        }
    }
}
