import COpenSSL

/// The one comparison used wherever a secret or a MAC is compared: its time depends only on
/// the lengths, never on where the bytes first differ.
public enum ConstantTime {
    public static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in equals(pa.baseAddress!, pb.baseAddress!, count: pa.count) }
        }
    }

    /// The same comparison over raw memory, for hot paths that keep the expected value on the stack.
    @inline(__always)
    static func equals(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
        CRYPTO_memcmp(a, b, count) == 0
    }
}
