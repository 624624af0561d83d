import Testing
@testable import Gateway

@Suite struct ConnectorBreakerTests {
    func breaker(window: Int = 10, minimum: Int = 4, percent: Int = 50, openSeconds: Int64 = 30) -> CircuitBreaker {
        var c = CircuitBreaker.Configuration()
        c.windowRequests = window
        c.requestsMin = minimum
        c.failureRatePercentOpen = percent
        c.openSeconds = openSeconds
        return CircuitBreaker(configuration: c)
    }

    @Test func opensOnlyOnceTheWindowHoldsEnoughOutcomesAtTheFailureRate() {
        let b = breaker()
        for _ in 0..<3 { b.record(success: false, now: 100) }
        #expect(b.state == .closed, "three outcomes are below the minimum of four")
        b.record(success: true, now: 100)
        #expect(b.state == .open, "3 of 4 failed: 75% ≥ 50%")
    }

    @Test func failureRateBelowTheThresholdKeepsItClosed() {
        let b = breaker()
        for k in 0..<40 { b.record(success: k % 3 != 2, now: 100) }  // every third fails: at most 40% of any window
        #expect(b.state == .closed)
        #expect(b.permit(now: 100) == .allowed)
    }

    @Test func openRefusesUntilOpenSecondsThenLetsExactlyOneProbe() {
        let b = breaker()
        for _ in 0..<4 { b.record(success: false, now: 100) }
        #expect(b.state == .open)
        #expect(b.permit(now: 110) == .refused(retryAt: 130))
        #expect(b.permit(now: 130) == .allowed)
        #expect(b.state == .halfOpen)
        #expect(b.permit(now: 130) == .refused(retryAt: 131), "a second call while the probe is out is refused")
    }

    @Test func successfulProbeClosesAndFailedProbeReopens() {
        let b = breaker()
        for _ in 0..<4 { b.record(success: false, now: 100) }
        #expect(b.permit(now: 130) == .allowed)
        b.record(success: false, now: 131)
        #expect(b.state == .open)
        #expect(b.permit(now: 150) == .refused(retryAt: 161))
        #expect(b.permit(now: 161) == .allowed)
        b.record(success: true, now: 161)
        #expect(b.state == .closed)
        b.record(success: false, now: 162)
        #expect(b.state == .closed, "the window was cleared on closing")
    }
}

@Suite struct ConnectorBackoffTests {
    @Test func backoffDoublesWithinItsJitterBandAndStopsAtTheCap() {
        let seed: UInt64 = 99
        let random = SeededRandom(seed: seed)
        for attempts in 1...12 {
            let capped = min(Int64(2) << Int64(attempts - 1), 300)  // base 2 s, cap 300 s
            var seen = Set<Int64>()
            for _ in 0..<200 {
                let d = OutboxDispatcher.backoffSeconds(afterAttempts: attempts, baseSeconds: 2, maxSeconds: 300, random: random)
                #expect(d >= max(1, capped / 2) && d <= capped, "attempt \(attempts): \(d) outside [\(capped / 2), \(capped)] (seed \(seed))")
                seen.insert(d)
            }
            if capped >= 8 { #expect(seen.count > 1, "jitter should spread retries (seed \(seed))") }
        }
    }

    @Test func partnerEndpointRefusesWhatIsNotABaseURLNamingTheProblem() {
        func problem(_ url: String) -> String? {
            do { _ = try PartnerEndpoint(url: url); return nil } catch { return error.description }
        }
        #expect(problem("ftp://bank") == "must start with http:// or https://")
        #expect(problem("http://user@bank:80") == "must be at most 256 printable ASCII bytes without user info, query or fragment")
        #expect(problem("http://bank:0") == "port must be 1...65535")
        #expect(problem("http://:80") == "host is missing")
        let e = try? PartnerEndpoint(url: "http://10.0.0.7:9443/sandbox/")
        #expect(e?.host == "10.0.0.7" && e?.port == 9443 && e?.basePath == "/sandbox" && e?.isTLS == false)
    }
}
