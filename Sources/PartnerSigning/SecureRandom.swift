import COpenSSL

/// Bytes from OpenSSL's CSPRNG, for nonces, IVs and generated secrets.
public enum SecureRandom {
    public static let bytesMax = 1 << 20

    public static func bytes(_ count: Int) throws(SigningError) -> [UInt8] {
        guard count >= 0, count <= bytesMax else { throw .invalidInput(field: "random byte count") }
        var bytes = [UInt8](repeating: 0, count: count)
        guard count == 0 || RAND_bytes(&bytes, Int32(count)) == 1 else { throw .cryptoFailure(operation: "random") }
        return bytes
    }

    /// Fills `buffer` from the CSPRNG without allocating; false if OpenSSL could not.
    static func fill(_ buffer: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return true }
        guard buffer.count <= bytesMax else { return false }
        return RAND_bytes(base, Int32(buffer.count)) == 1
    }
}
