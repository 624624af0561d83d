/// The standard library's `withUnsafeBytes` and `withUnsafeTemporaryAllocation` are `rethrows`,
/// which erases `SigningError` to `any Error`; these keep the typed error across the closure.
extension Array where Element == UInt8 {
    @inline(__always)
    func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws(SigningError) -> T) throws(SigningError) -> T {
        let result: Result<T, SigningError> = withUnsafeBytes { raw in Result { () throws(SigningError) in try body(raw) } }
        return try result.get()
    }
}

@inline(__always)
func withScratch<T>(byteCount: Int, _ body: (UnsafeMutableBufferPointer<UInt8>) throws(SigningError) -> T) throws(SigningError) -> T {
    let result: Result<T, SigningError> = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: byteCount) { buffer in
        Result { () throws(SigningError) in try body(buffer) }
    }
    return try result.get()
}
