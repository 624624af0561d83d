import Foundation
import PartnerSigning
import Synchronization
import Testing
@testable import Gateway
import HTTP
import LendingCore
import Storage

/// The outbox dispatcher against simulated partners over loopback (port 0), with a clock the
/// tests fast-forward past callback and funding deadlines.
@Suite(.serialized) struct ConnectorTests {
    func webhook(_ h: GatewayHarness, _ loanId: String) -> PlatformReceiver.Webhook? {
        h.platform.webhooks.first { $0.loanId == loanId }
    }

    @Test func partnerTrancheIsRequestedConfirmedAndTheFundedLoanReportedToThePlatform() async throws {
        let h = try await GatewayHarness()
        defer { h.stop() }
        #expect(try await h.postLoan(GatewayHarness.loan(1, approvedAt: h.clock.now)) == 201)
        let arrived = await h.waitUntil { webhook(h, "L-1") != nil }
        #expect(arrived)
        let w = try #require(webhook(h, "L-1"))
        #expect(w.type == "loan.funded" && w.state == "funded")
        guard case .array(let tranches)? = w.body["tranches"] else { Issue.record("webhook has no tranches"); return }
        #expect(tranches.count == 2)
        #expect(tranches.allSatisfy { $0["state"] == .string("funded") })
        let record = try #require(try await h.loanState("L-1"))
        #expect(record.state == .funded)
        let partner = try #require(record.tranches.first { $0.kind == .partner })
        #expect(h.simulators[partner.funderId]?.stats.fundingRequests == 1)
        #expect(h.platform.rejected == 0)
    }

    @Test func declinedTrancheMovesToFallbackPartnerAndTheLoanStillFunds() async throws {
        var decline = PartnerSimulator.Faults()
        decline.declinePercent = 100
        let h = try await GatewayHarness(faults: ["bank-a": decline, "bank-c": decline])
        defer { h.stop() }
        #expect(try await h.postLoan(GatewayHarness.loan(2, approvedAt: h.clock.now)) == 201)
        #expect(await h.waitUntil { webhook(h, "L-2") != nil })
        let record = try #require(try await h.loanState("L-2"))
        #expect(record.state == .funded)
        #expect(record.tranches.contains { $0.state == .declined && ($0.funderId == "bank-a" || $0.funderId == "bank-c") })
        #expect(record.tranches.contains { $0.state == .funded && $0.funderId == "bank-b" })
        #expect(webhook(h, "L-2")?.type == "loan.funded")
    }

    @Test func lostCallbackIsRecoveredByAStatusQueryOnceOverdue() async throws {
        var lost = PartnerSimulator.Faults()
        lost.lostCallbackPercent = 100
        let h = try await GatewayHarness(faults: ["bank-a": lost, "bank-b": lost, "bank-c": lost]) { $0.callbackOverdueSeconds = 60 }
        defer { h.stop() }
        #expect(try await h.postLoan(GatewayHarness.loan(3, approvedAt: h.clock.now)) == 201)
        // The partner decided but never called back: nothing changes before the query is due.
        #expect(await h.waitUntil(seconds: 5) { h.simulators.values.contains { $0.stats.callbacksLost == 1 } })
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(try await h.loanState("L-3")?.state == .awaitingFunding)
        h.clock.advance(61)
        #expect(await h.waitUntil { (try? await h.loanState("L-3"))?.state == .funded })
        #expect(h.simulators.values.reduce(0) { $0 + $1.stats.statusQueries } >= 1)
        #expect(await h.waitUntil { webhook(h, "L-3")?.type == "loan.funded" })
    }

    @Test func serverErrorsAndTimeoutsAreRetriedUntilThePartnerTakesTheRequest() async throws {
        var flaky = PartnerSimulator.Faults()
        flaky.serverErrorPercent = 60
        flaky.timeoutPercent = 20
        flaky.timeoutHoldMilliseconds = 400
        let h = try await GatewayHarness(faults: ["bank-a": flaky, "bank-b": flaky, "bank-c": flaky], seed: 7) {
            $0.requestTimeoutMilliseconds = 150
            $0.breaker.requestsMin = 1_000  // keep the breaker out of this test
            $0.breaker.windowRequests = 1_000
        }
        defer { h.stop() }
        for n in 10..<16 { #expect(try await h.postLoan(GatewayHarness.loan(n, approvedAt: h.clock.now)) == 201) }
        let allFunded = await h.waitUntil(seconds: 30) {
            h.clock.advance(30)  // backoff is in clock seconds: let retries fall due
            return h.platform.webhooks.count == 6
        }
        #expect(allFunded)
        #expect(h.platform.webhooks.allSatisfy { $0.type == "loan.funded" })
        let injected = h.simulators.values.reduce(0) { $0 + $1.stats.serverErrorsInjected + $1.stats.timeoutsInjected }
        #expect(injected > 0, "seed 7 should inject faults")
    }

    @Test func unreachablePartnerEndsTheLoanUnfundedAtItsDeadlineAndCancelsTheReleasedTranche() async throws {
        let h = try await GatewayHarness(extraRules: [GatewayHarness.twoBankRule], deadPartners: ["bank-a"]) {
            $0.requestTimeoutMilliseconds = 200
        }
        defer { h.stop() }
        let approvedAt = h.clock.now
        #expect(try await h.postLoan(GatewayHarness.loan(20, approvedAt: approvedAt, product: "twobank")) == 201)
        // bank-b funds its tranche; bank-a never answers.
        #expect(await h.waitUntil { (try? await h.loanState("L-20"))?.tranches.contains { $0.funderId == "bank-b" && $0.state == .funded } == true })
        h.clock.advance(7_200)
        #expect(await h.waitUntil { webhook(h, "L-20") != nil })
        let w = try #require(webhook(h, "L-20"))
        #expect(w.type == "loan.unfunded" && w.state == "unfunded")
        #expect(w.body["reason"] == .string("deadline_passed"))
        let record = try #require(try await h.loanState("L-20"))
        #expect(record.tranches.first { $0.funderId == "bank-b" }?.state == .released)
        #expect(record.tranches.first { $0.funderId == "bank-a" }?.state == .expired)
        #expect(await h.waitUntil { h.simulators["bank-b"]?.stats.cancellations == 1 })
    }

    @Test func openBreakerHoldsRequestsBackWithoutSpendingAttemptsThenLetsOneProbeThrough() async throws {
        let h = try await GatewayHarness(extraRules: [GatewayHarness.twoBankRule], deadPartners: ["bank-a"]) {
            $0.requestTimeoutMilliseconds = 200
            $0.breaker.windowRequests = 4
            $0.breaker.requestsMin = 4
            $0.breaker.openSeconds = 600
            $0.backoffBaseSeconds = 100  // no retry falls due on its own while the test looks
        }
        defer { h.stop() }
        let store = h.gateway.store
        func attemptsToBankA() throws -> Int64 {
            try store.read { try $0.fetchInt64("SELECT COALESCE(SUM(attempts), 0) FROM outbox WHERE destination = 'partner:bank-a'") ?? -1 }
        }
        for n in 30..<36 { #expect(try await h.postLoan(GatewayHarness.loan(n, approvedAt: h.clock.now, product: "twobank")) == 201) }
        #expect(await h.waitUntil { h.gateway.dispatcher.breakerState(partnerId: "bank-a") == .open })
        try await Task.sleep(nanoseconds: 300_000_000)
        let spent = try attemptsToBankA()
        #expect((4...6).contains(spent), "four failures open the breaker; calls already under way may add up to two (spent \(spent))")
        h.clock.advance(200)  // the retries fall due, and meet the open breaker
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(try attemptsToBankA() == spent, "refused by the breaker, no attempt is spent")
        h.clock.advance(600)  // open period over: one probe, which fails and reopens
        #expect(await h.waitUntil { (try? attemptsToBankA()) == spent + 1 })
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(try attemptsToBankA() == spent + 1, "only the probe went out")
        #expect(h.gateway.dispatcher.breakerState(partnerId: "bank-a") == .open)
        #expect(h.simulators["bank-b"].map { $0.stats.fundingRequests } == 6, "the other partner is not held back")
    }

    /// Something on the path (a proxy, a wrong base URL, an attacker) answers bank-a's funding
    /// requests with an unsigned 404. It must not end the request: it is retried like a 5xx.
    /// A 404 signed with bank-a's own key is no answer to a funding request either (a wrong
    /// path, the bank's own fault): retried, never taken as the end of the request.
    @Test(arguments: [false, true]) func notFoundToAFundingRequestEndsNothing(signed: Bool) async throws {
        let calls = Atomic<Int>(0)
        let contract = try PartnerContract.load(file: "\(GatewayHarness.repoRoot)/Contracts/bank-a/partner.json")
        let bankSigner = try PartnerSigner(scheme: contract.scheme, keyRing: try #require(contract.simulatorKeys).partnerSigningKeys)
        var router = HTTP.Router()
        router.onSync(.POST, "/v1/funding-requests") { _, _ in
            calls.add(1, ordering: .relaxed)
            guard signed else { throw HTTPError(.notFound, code: "not_found", message: "nope") }
            let m = try PartnerWire.sign(.response, method: .POST, target: "", body: .object([("error", .string("not_found"))]), signer: bankSigner,
                                         timestamp: Int64(Date().timeIntervalSince1970), nonce: PartnerSigner.makeNonce())
            return Response.json(bytes: m.body, status: .notFound, adding: m.headers.filter { $0.name.lowercased() != "content-type" })
        }
        var config = HTTPServer.Configuration()
        config.port = 0
        config.eventLoopCount = 1
        let impostor = HTTPServer(configuration: config, responder: try router.freeze(), logger: GatewayHarness.quietLogger)
        try impostor.start()
        defer { impostor.shutdown(graceMilliseconds: 100) }
        let h = try await GatewayHarness(extraRules: [GatewayHarness.twoBankRule], baseURLs: ["bank-a": "http://127.0.0.1:\(impostor.port)"]) {
            $0.breaker.requestsMin = 1_000  // keep the breaker out of this test
            $0.breaker.windowRequests = 1_000
        }
        defer { h.stop() }
        #expect(try await h.postLoan(GatewayHarness.loan(40, approvedAt: h.clock.now, product: "twobank")) == 201)
        #expect(await h.waitUntil { calls.load(ordering: .relaxed) >= 1 })
        // Retries fall due as the clock moves; before the fix the first 404 ended the request.
        let retried = await h.waitUntil(seconds: 10) {
            h.clock.advance(30)
            return calls.load(ordering: .relaxed) >= 3
        }
        #expect(retried, "a 404 (signed: \(signed)) ended the funding request after \(calls.load(ordering: .relaxed)) call(s)")
        let pending = try h.gateway.store.read {
            try $0.fetchInt64("SELECT COUNT(*) FROM outbox WHERE destination = 'partner:bank-a' AND state IN (0, 2)") ?? -1
        }
        #expect(pending == 1, "the funding request is still due")
        #expect(try await h.loanState("L-40")?.tranches.first { $0.funderId == "bank-a" }?.state == .requested)
    }

    /// The simulated bank's "no such request" is signed, so the gateway can act on it.
    @Test func simulatedBanksNotFoundIsSignedAndVerifies() async throws {
        let h = try await GatewayHarness()
        defer { h.stop() }
        for id in GatewayHarness.partnerIds {
            let sim = try #require(h.simulators[id])
            let wire = try PartnerWire(contract: sim.contract)
            let m = try wire.statusQuery(.init(trancheId: 987_654, loanId: "L-none", amountMinor: 100, currency: "CNY"), signer: try sim.contract.makeSigner(),
                                         timestamp: h.clock.now, nonce: "statusNonce\(id.count)0000000001")
            let r = try await h.client.execute(HTTPClient.Request(method: m.method, host: "127.0.0.1", port: sim.port, target: m.target, headers: m.headers, body: m.body),
                                               timeoutMilliseconds: 5_000)
            #expect(r.status == 404, "\(id)")
            let verifier = try sim.contract.makeVerifier(replayGuard: NonceReplayGuard())
            #expect(throws: Never.self, "\(id)") { try verifier.verify(.response, headers: r.headers.fields, body: r.body, now: h.clock.now) }
        }
    }

    @Test func simulatedBankRejectsAnUnsignedOrForgedRequestLikeTheBankWould() async throws {
        let h = try await GatewayHarness()
        defer { h.stop() }
        let sim = try #require(h.simulators["bank-b"])
        let body = Array(#"{"out_trade_no":"JLT1","tranche_id":1,"loan_no":"L-1","amount_fen":100,"currency":"CNY"}"#.utf8)
        let unsigned = try await h.client.execute(HTTPClient.Request(method: .POST, host: "127.0.0.1", port: sim.port, target: "/v3/jointloan/fundings", body: body),
                                                  timeoutMilliseconds: 5_000)
        #expect(unsigned.status == 401)
        // Signed by the gateway's key, then the amount changed in transit.
        let wire = try PartnerWire(contract: sim.contract)
        var m = try wire.fundingRequest(.init(trancheId: 1, loanId: "L-1", amountMinor: 100, currency: "CNY"), signer: try sim.contract.makeSigner(),
                                        timestamp: h.clock.now, nonce: "forgedRequestNonce0001")
        m.body = Array(String(decoding: m.body, as: UTF8.self).replacingOccurrences(of: "100", with: "999").utf8)
        let forged = try await h.client.execute(HTTPClient.Request(method: m.method, host: "127.0.0.1", port: sim.port, target: m.target, headers: m.headers, body: m.body),
                                                timeoutMilliseconds: 5_000)
        #expect(forged.status == 401)
        #expect(sim.stats.signatureRejections == 2 && sim.stats.fundingRequests == 0)
    }
}
