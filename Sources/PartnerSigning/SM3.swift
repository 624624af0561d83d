import COpenSSL

/// SM3 (GM/T 0004-2012) over OpenSSL's EVP digest API.
public enum SM3 {
    public static let byteCount = 32

    /// The SM3 digest of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { input in
            [UInt8](unsafeUninitializedCapacity: byteCount) { out, count in
                let ok = EVPAlgorithms.digest(EVPAlgorithms.sm3, input, into: out.baseAddress!)
                precondition(ok, "EVP_Digest(SM3) failed")
                count = byteCount
            }
        }
    }
}
