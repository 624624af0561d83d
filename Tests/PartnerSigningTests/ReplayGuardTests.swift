import Dispatch
import Testing
@testable import PartnerSigning

@Suite struct ReplayGuardTests {
    @Test func aNonceIsRejectedUntilItsRetentionEnds() throws {
        let replayGuard = NonceReplayGuard(configuration: .init(entriesMax: 100, retentionSeconds: 600, shardCount: 4))
        try replayGuard.record(keyID: "k1", nonce: "nonce-0000000001", now: 1000)
        #expect(throws: SigningError.nonceReplayed) { try replayGuard.record(keyID: "k1", nonce: "nonce-0000000001", now: 1600) }
        // The same nonce under another key is a different message.
        try replayGuard.record(keyID: "k2", nonce: "nonce-0000000001", now: 1000)
        try replayGuard.record(keyID: "k1", nonce: "nonce-0000000001", now: 1601)
    }

    /// The guard keeps 64-bit salted fingerprints, not the strings: many distinct nonces are all
    /// accepted once and all refused a second time, and fingerprints differ between guards (the
    /// salt is per instance), so a sender cannot precompute them.
    @Test func fingerprintsTellManyNoncesApartAndAreSaltedPerGuard() throws {
        let replayGuard = NonceReplayGuard(configuration: .init(entriesMax: 200_000, retentionSeconds: 600, shardCount: 16))
        for i in 0..<100_000 { try replayGuard.record(keyID: "k\(i % 3)", nonce: "n-\(i)", now: 1000) }
        #expect(replayGuard.count == 100_000)
        var replays = 0
        for i in stride(from: 0, to: 100_000, by: 7) {
            do { try replayGuard.record(keyID: "k\(i % 3)", nonce: "n-\(i)", now: 1001) } catch SigningError.nonceReplayed { replays += 1 }
        }
        #expect(replays == (100_000 + 6) / 7)
        let other = NonceReplayGuard()
        #expect(replayGuard.fingerprint(keyID: "k", nonce: "n") != other.fingerprint(keyID: "k", nonce: "n"))
        #expect(replayGuard.fingerprint(keyID: "k", nonce: "n") == replayGuard.fingerprint(keyID: "k", nonce: "n"))
        #expect(replayGuard.fingerprint(keyID: "k1", nonce: "n") != replayGuard.fingerprint(keyID: "k", nonce: "1n"))
    }

    @Test func aMessageStampedAheadCannotBeReplayedAtTheFarEdgeOfItsWindow() throws {
        let scheme = SchemeHarness.scheme(.jl1, .hmacSHA256)
        let verifier = try SchemeHarness.verifier(scheme)
        let t: Int64 = 1_763_700_000
        let signed = try SchemeHarness.signer(scheme).sign(.request, method: "GET", pathAndQuery: "/v1/x", body: [], timestamp: t + 300, nonce: "edge-nonce-0000001")
        // First seen 300 s early (at the window's near edge), replayed 600 s later (its far edge).
        _ = try verifier.verify(.request, method: "GET", pathAndQuery: "/v1/x", headers: signed.headers, body: [], now: t)
        #expect(throws: SigningError.nonceReplayed) {
            try verifier.verify(.request, method: "GET", pathAndQuery: "/v1/x", headers: signed.headers, body: [], now: t + 600)
        }
    }

    @Test func memoryIsBoundedAndFailsClosedWhenFull() throws {
        let replayGuard = NonceReplayGuard(configuration: .init(entriesMax: 8, retentionSeconds: 600, shardCount: 1))
        for i in 0..<8 { try replayGuard.record(keyID: "k", nonce: "nonce-000000000\(i)", now: 1000) }
        #expect(replayGuard.count == 8)
        #expect(throws: SigningError.replayGuardFull) { try replayGuard.record(keyID: "k", nonce: "nonce-0000000009", now: 1001) }
        // Once the first entries expire, room is made by time, not by forgetting live nonces.
        #expect(throws: SigningError.replayGuardFull) { try replayGuard.record(keyID: "k", nonce: "nonce-0000000009", now: 1600) }
        try replayGuard.record(keyID: "k", nonce: "nonce-0000000009", now: 1601)
        #expect(replayGuard.count == 1)
    }

    @Test func aReplayIsReportedAsSuchEvenWhenTheGuardIsFull() throws {
        let replayGuard = NonceReplayGuard(configuration: .init(entriesMax: 2, retentionSeconds: 600, shardCount: 1))
        try replayGuard.record(keyID: "k", nonce: "nonce-0000000001", now: 1000)
        try replayGuard.record(keyID: "k", nonce: "nonce-0000000002", now: 1000)
        #expect(throws: SigningError.nonceReplayed) { try replayGuard.record(keyID: "k", nonce: "nonce-0000000001", now: 1001) }
        #expect(throws: SigningError.replayGuardFull) { try replayGuard.record(keyID: "k", nonce: "nonce-0000000003", now: 1001) }
        #expect(replayGuard.count == 2)
    }

    @Test func keyIDAndNonceAreKeptApart() throws {
        // Joined naively, ("k1", "2nonce...") and ("k12", "nonce...") would be one entry.
        let replayGuard = NonceReplayGuard(configuration: .init(entriesMax: 100, retentionSeconds: 600, shardCount: 4))
        try replayGuard.record(keyID: "k1", nonce: "2nonce-000000001", now: 1000)
        try replayGuard.record(keyID: "k12", nonce: "nonce-000000001", now: 1000)
        #expect(throws: SigningError.nonceReplayed) { try replayGuard.record(keyID: "k12", nonce: "nonce-000000001", now: 1000) }
        #expect(replayGuard.count == 2)
    }

    @Test func manyNoncesAcrossShardsAreEachAcceptedOnceThenRefused() throws {
        let replayGuard = NonceReplayGuard(configuration: .init(entriesMax: 20_000, retentionSeconds: 600, shardCount: 16))
        for i in 0..<10_000 { try replayGuard.record(keyID: "k\(i % 3)", nonce: "nonce-many-\(i)-pad", now: 1000) }
        #expect(replayGuard.count == 10_000)
        for i in stride(from: 0, to: 10_000, by: 7) {
            #expect(throws: SigningError.nonceReplayed) { try replayGuard.record(keyID: "k\(i % 3)", nonce: "nonce-many-\(i)-pad", now: 1200) }
        }
        // The same nonce under a key it was not seen with is a different entry.
        try replayGuard.record(keyID: "k1", nonce: "nonce-many-0-pad", now: 1200)
        #expect(replayGuard.count == 10_001)
    }

    @Test func evictionKeepsTheCountBoundedOverALongRun() throws {
        let replayGuard = NonceReplayGuard(configuration: .init(entriesMax: 5000, retentionSeconds: 10, shardCount: 4))
        for second in 0..<200 {
            for i in 0..<20 { try replayGuard.record(keyID: "k", nonce: "nonce-\(second)-\(i)-padding", now: Int64(second)) }
        }
        // 20 per second held through 10 seconds of retention (220), plus what a shard not touched
        // in the last second or two still holds: eviction is lazy, per shard. 4000 were recorded.
        #expect(replayGuard.count >= 220)
        #expect(replayGuard.count <= 300)
    }

    @Test func concurrentRecordsAcceptEachNonceExactlyOnce() throws {
        let replayGuard = NonceReplayGuard(configuration: .init(entriesMax: 100_000, retentionSeconds: 600, shardCount: 8))
        let accepted = Counter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for i in 0..<2000 {
                if (try? replayGuard.record(keyID: "k", nonce: "nonce-concurrent-\(i)", now: 1000)) != nil { accepted.increment() }
            }
        }
        #expect(accepted.value == 2000)
    }

    @Test func verifierIsSafeToShareAcrossThreads() throws {
        let scheme = SchemeHarness.scheme(.jl1, .ed25519)
        let verifier = try SchemeHarness.verifier(scheme)
        let signer = try SchemeHarness.signer(scheme)
        let accepted = Counter()
        let rejected = Counter()
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for i in 0..<200 {
                // Threads 0/1 and 2/3 send the same nonces: exactly one of each pair may pass.
                let nonce = "nonce-pair\(thread / 2)-\(i)-padding"
                guard let signed = try? signer.sign(.request, method: "POST", pathAndQuery: "/v1/x", body: [1, 2, 3], timestamp: 1000, nonce: nonce) else { return }
                do {
                    _ = try verifier.verify(.request, method: "POST", pathAndQuery: "/v1/x", headers: signed.headers, body: [1, 2, 3], now: 1000)
                    accepted.increment()
                } catch {
                    if (error as? SigningError) == .nonceReplayed { rejected.increment() }
                }
            }
        }
        #expect(accepted.value == 400)
        #expect(rejected.value == 400)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = Lock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

@Suite struct ReplayGuardConfigurationTests {
    @Test func aGuardThatForgetsBeforeTheWindowClosesIsRefused() throws {
        let scheme = SchemeHarness.scheme(.jl1, .hmacSHA256)
        let ring = try VerifyingKeyRing([.init(id: "k", key: Fixtures.signingKey(.hmacSHA256).verifyingKey)])
        let short = NonceReplayGuard(configuration: .init(retentionSeconds: 599))
        #expect(throws: SigningError.self) { try PartnerVerifier(scheme: scheme, keyRing: ring, replayGuard: short) }
        _ = try PartnerVerifier(scheme: scheme, keyRing: ring, replayGuard: NonceReplayGuard(configuration: .init(retentionSeconds: 600)))
    }
}
