import Testing
@testable import PartnerSigning
#if canImport(Glibc)
import Glibc
#endif

@Suite struct NonceRandomPoolTests {
    static let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    @Test func noncesAre32AlphanumericsAndNeverRepeatAcrossManyRefills() {
        // 20,000 nonces draw 640,000 bytes: some 156 refills of the pool.
        var seen = Set<String>()
        for _ in 0..<20_000 {
            let nonce = PartnerSigner.makeNonce()
            #expect(nonce.utf8.count == 32)
            #expect(nonce.utf8.allSatisfy(Self.alphabet.contains), "\(nonce)")
            #expect(SigningSyntax.isValidNonce(nonce))
            #expect(seen.insert(nonce).inserted, "nonce repeated after \(seen.count) draws")
        }
    }

    @Test func noncesFromOwnPoolsStillUseTheWholeAlphabet() {
        let pool = NonceRandomPool()
        var used = Set<UInt8>()
        for _ in 0..<2_000 { used.formUnion(PartnerSigner.makeNonce(from: pool).utf8) }
        // 64,000 characters over 62 symbols: every symbol appears unless the bytes are not random.
        #expect(used == Self.alphabet)
    }

    @Test func eachByteIsHandedOutOnceAndAShortTailIsRefilledNotReused() {
        let pool = NonceRandomPool()
        #expect(pool.bufferedByteCount == 0)
        let drawBytes = 48  // does not divide the refill size: the last draw before a refill finds a short tail
        var draws: [[UInt8]] = []
        var counts: [Int] = []
        for _ in 0..<(3 * NonceRandomPool.refillBytes / drawBytes) {
            var out = [UInt8](repeating: 0, count: drawBytes)
            let ok = out.withUnsafeMutableBufferPointer { pool.fill($0) }
            #expect(ok)
            draws.append(out)
            counts.append(pool.bufferedByteCount)
        }
        #expect(Set(draws).count == draws.count)
        #expect(!draws.contains([UInt8](repeating: 0, count: drawBytes)))
        #expect(counts[0] == NonceRandomPool.refillBytes - drawBytes)
        // 4096 = 85 × 48 + 16: the 86th draw refills, leaving the 16-byte tail unused.
        #expect(counts[84] == NonceRandomPool.refillBytes % drawBytes)
        #expect(counts[85] == NonceRandomPool.refillBytes - drawBytes)
    }

    @Test func requestsBeyondTheBufferAreRefusedAndEmptyOnesAreFree() {
        let pool = NonceRandomPool()
        var big = [UInt8](repeating: 0, count: NonceRandomPool.refillBytes + 1)
        #expect(!big.withUnsafeMutableBufferPointer { pool.fill($0) })
        #expect(big.allSatisfy { $0 == 0 })
        var whole = [UInt8](repeating: 0, count: NonceRandomPool.refillBytes)
        #expect(whole.withUnsafeMutableBufferPointer { pool.fill($0) })
        #expect(pool.bufferedByteCount == 0)
        var none: [UInt8] = []
        #expect(none.withUnsafeMutableBufferPointer { pool.fill($0) })
    }

    @Test func discardEmptiesTheBuffer() {
        let pool = NonceRandomPool()
        _ = PartnerSigner.makeNonce(from: pool)
        #expect(pool.bufferedByteCount == NonceRandomPool.refillBytes - 32)
        pool.discard()
        #expect(pool.bufferedByteCount == 0)
    }

    /// A child process must not hand out the bytes its parent still holds.
    @Test func aForkedChildStartsWithAnEmptyBuffer() throws {
        _ = PartnerSigner.makeNonce()
        let parentBuffered = NonceRandomPool.shared.bufferedByteCount
        #expect(parentBuffered > 0)
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let child = fork()
        if child == 0 {
            // The child only reads the count and reports it: no allocation, no OpenSSL.
            var count = Int64(NonceRandomPool.shared.bufferedByteCount)
            _ = withUnsafeBytes(of: &count) { write(fds[1], $0.baseAddress, 8) }
            _exit(0)
        }
        try #require(child > 0)
        close(fds[1])
        var reported: Int64 = -1
        let read = withUnsafeMutableBytes(of: &reported) { Glibc.read(fds[0], $0.baseAddress, 8) }
        close(fds[0])
        var status: Int32 = 0
        waitpid(child, &status, 0)
        #expect(read == 8)
        #expect(reported == 0)
    }
}
