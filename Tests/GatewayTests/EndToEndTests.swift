import Foundation
import HTTP
import LendingCore
import PartnerSigning
import Testing
@testable import Gateway

/// The whole flow over real sockets: approved loan → plan → partner confirmation → funded loan.
@Suite(.serialized) struct EndToEndTests {
    @Test func approvedLoanIsPlannedConfirmedAndFunded() async throws {
        let h = try await LoopbackGateway()
        defer { h.stop() }
        let body = LoopbackGateway.loan("E2E-1", approvedAt: h.now)
        let created = try await h.platform(.POST, "/v1/loans", body: body)
        #expect(created.status == 201, "\(created.text)")
        let plan = try #require(created.json)
        #expect(plan["state"] == .string("awaiting_funding"))
        guard case .array(let tranches)? = plan["tranches"], tranches.count == 2 else { Issue.record("plan: \(created.text)"); return }
        #expect(tranches[0]["funderId"] == .string("pool-main") && tranches[0]["amountMinor"] == .number("300000") && tranches[0]["state"] == .string("funded"))
        #expect(tranches[1]["funderId"] == .string("bank-a") && tranches[1]["amountMinor"] == .number("700001") && tranches[1]["state"] == .string("requested"))
        guard case .number(let trancheId)? = tranches[1]["trancheId"] else { Issue.record("no tranche id"); return }

        // The same loan again: the first answer again, nothing new.
        let replay = try await h.platform(.POST, "/v1/loans", body: body)
        #expect(replay.status == 201 && replay.body == created.body)
        // The same id with another body: 409, nothing changes.
        let conflict = try await h.platform(.POST, "/v1/loans", body: LoopbackGateway.loan("E2E-1", amount: 5, approvedAt: h.now))
        #expect(conflict.status == 409 && conflict.json?["error"]?["code"] == .string("idempotency_conflict"))

        // Bank A confirms in its own scheme (jl1 + HMAC); its field for the outcome is "result".
        let confirmation: JSONValue = .object([("serial", .string("A-0001")), ("trancheId", .number(trancheId)), ("result", .string("FUNDED"))])
        let ack = try await h.confirm("bank-a", body: confirmation)
        #expect(ack.status == 200, "\(ack.text)")
        #expect(ack.json?["loanState"] == .string("funded") && ack.json?["trancheState"] == .string("funded"))
        // The ack is signed by the gateway in bank A's scheme: bank A can verify it.
        let contract = try PartnerContract.load(file: "\(LoopbackGateway.repoRoot)/Contracts/bank-a/partner.json")
        let secret = Array(FileManager.default.contents(atPath: "\(contract.directory)/keys/shared/secret")!)
        let bankSide = try PartnerVerifier(scheme: contract.scheme, keyRing: VerifyingKeyRing([.init(id: "bank-a-2026", key: try VerifyingKey(algorithm: .hmacSHA256, material: secret))]), replayGuard: NonceReplayGuard())
        #expect(throws: Never.self) { try bankSide.verify(.response, headers: ack.headers.fields, body: ack.body, now: h.now) }

        // A duplicate callback (same serial, same body) answers the same and changes nothing.
        let duplicate = try await h.confirm("bank-a", body: confirmation)
        #expect(duplicate.status == 200 && duplicate.json?["loanState"] == .string("funded"))

        let loan = try await h.platform(.GET, "/v1/loans/E2E-1")
        #expect(loan.status == 200 && loan.json?["state"] == .string("funded"))
        guard case .array(let history)? = loan.json?["history"] else { Issue.record("no history: \(loan.text)"); return }
        #expect(history.map { $0["event"] } == ["approved", "routed", "tranche.funded", "tranche.funded", "loan.funded"].map { JSONValue.string($0) })
        #expect(try await h.server.store.verifyLedger() == nil)
        #expect(try await h.server.store.verifyAudit() == nil)
    }

    @Test func declinedTrancheIsReroutedToTheFallbackFunder() async throws {
        let h = try await LoopbackGateway()
        defer { h.stop() }
        // An auto loan: pool-main 30% / bank-b 70% (wechatpay-v3 + RSA); fallbacks bank-a, pool-reserve.
        let created = try await h.platform(.POST, "/v1/loans", body: LoopbackGateway.loan("E2E-AUTO", amount: 2_000_000, product: "auto", approvedAt: h.now))
        #expect(created.status == 201, "\(created.text)")
        guard case .array(let tranches)? = created.json?["tranches"], case .number(let bId)? = tranches[1]["trancheId"] else { Issue.record("\(created.text)"); return }
        #expect(tranches[1]["funderId"] == .string("bank-b"))
        let decline: JSONValue = .object([("out_trade_no", .string("WX-9")), ("tranche_id", .number(bId)), ("trade_state", .string("REFUSED"))])
        let ack = try await h.confirm("bank-b", body: decline)
        #expect(ack.status == 200, "\(ack.text)")
        #expect(ack.json?["trancheState"] == .string("declined"))
        #expect(ack.json?["replacement"]?["funderId"] == .string("bank-a"))
        #expect(ack.headers["Wechatpay-Signature"] != nil && ack.headers["Wechatpay-Serial"] == "JLGW0000000000000000000000000000000000B1")
    }

    @Test func aConfirmationStatingAnotherAmountIsRefusedAndChangesNothing() async throws {
        let h = try await LoopbackGateway()
        defer { h.stop() }
        let created = try await h.platform(.POST, "/v1/loans", body: LoopbackGateway.loan("E2E-AMT", amount: 2_000_000, product: "auto", approvedAt: h.now))
        guard case .array(let tranches)? = created.json?["tranches"], case .number(let bId)? = tranches[1]["trancheId"] else { Issue.record("\(created.text)"); return }
        #expect(tranches[1]["amountMinor"] == .number("1400000"))
        func confirm(_ serial: String, amount: String, loan: String = "E2E-AMT") async throws -> HTTPClient.Response {
            try await h.confirm("bank-b", body: .object([("out_trade_no", .string(serial)), ("tranche_id", .number(bId)), ("loan_no", .string(loan)),
                                                         ("amount_fen", .number(amount)), ("trade_state", .string("SUCCESS"))]))
        }
        let wrongAmount = try await confirm("WX-A1", amount: "1400001")
        #expect(wrongAmount.status == 409 && wrongAmount.json?["error"]?["code"] == .string("confirmation_mismatch"))
        #expect(wrongAmount.json?["error"]?["field"] == .string("$.amount_fen"))
        // The refusal is signed like an ack: the bank can trust it.
        #expect(throws: Never.self) { try Self.bankSide("bank-b").verify(.response, headers: wrongAmount.headers.fields, body: wrongAmount.body, now: h.now) }
        let notANumber = try await h.confirm("bank-b", body: .object([("out_trade_no", .string("WX-A0")), ("tranche_id", .number(bId)),
                                                                    ("amount_fen", .string("1.4e6")), ("trade_state", .string("SUCCESS"))]))
        #expect(notANumber.status == 400 && notANumber.json?["error"]?["field"] == .string("$.amount_fen"))
        let wrongLoan = try await confirm("WX-A2", amount: "1400000", loan: "E2E-OTHER")
        #expect(wrongLoan.status == 409 && wrongLoan.json?["error"]?["field"] == .string("$.loan_no"))
        let loan = try await h.platform(.GET, "/v1/loans/E2E-AMT")
        guard case .array(let after)? = loan.json?["tranches"] else { Issue.record("\(loan.text)"); return }
        #expect(after[1]["state"] == .string("requested"), "nothing was applied")
        let right = try await confirm("WX-A3", amount: "1400000")
        #expect(right.status == 200 && right.json?["loanState"] == .string("funded"), "\(right.text)")
    }

    /// How the bank checks the gateway's answers: its contract's scheme, the gateway's public keys.
    static func bankSide(_ partnerId: String) throws -> PartnerVerifier {
        let contract = try PartnerContract.load(file: "\(LoopbackGateway.repoRoot)/Contracts/\(partnerId)/partner.json")
        let keys = try #require(contract.simulatorKeys)
        return try PartnerVerifier(scheme: contract.scheme, keyRing: keys.gatewayVerifyingKeys, replayGuard: NonceReplayGuard())
    }

    @Test func smTwoPartnerConfirmsWithSortedParameters() async throws {
        let h = try await LoopbackGateway()
        defer { h.stop() }
        // Second prime-mixed loan goes to bank-c by largest deficit (60/40 after one to bank-a).
        _ = try await h.platform(.POST, "/v1/loans", body: LoopbackGateway.loan("E2E-P1", grade: "A", approvedAt: h.now))
        let second = try await h.platform(.POST, "/v1/loans", body: LoopbackGateway.loan("E2E-P2", grade: "A", approvedAt: h.now))
        guard case .array(let tranches)? = second.json?["tranches"], case .number(let cId)? = tranches[1]["trancheId"] else { Issue.record("\(second.text)"); return }
        #expect(tranches[1]["funderId"] == .string("bank-c"))
        let body: JSONValue = .object([("out_biz_no", .string("C-77")), ("tranche_no", .string(cId)), ("status", .string("10000"))])
        let ack = try await h.confirm("bank-c", body: body)
        #expect(ack.status == 200, "\(ack.text)")
        #expect(ack.json?["loanState"] == .string("funded"))
        #expect(ack.json?["sign"] != nil && ack.json?["sign_type"] == .string("SM2"))
        // The ack's parameters are signed with the gateway's key for bank C: bank C can verify them.
        let contract = try PartnerContract.load(file: "\(LoopbackGateway.repoRoot)/Contracts/bank-c/partner.json")
        let pem = try #require(FileManager.default.contents(atPath: "\(contract.directory)/keys/gateway/public.pem"))
        let gatewayKey = try VerifyingKey(algorithm: contract.scheme.algorithm, material: Array(pem))
        let bankSide = try PartnerVerifier(scheme: contract.scheme, keyRing: VerifyingKeyRing([.init(id: "jlgw-sm2-01", key: gatewayKey)]), replayGuard: NonceReplayGuard())
        #expect(throws: Never.self) { try bankSide.verify(.response, headers: ack.headers.fields, body: ack.body, now: h.now) }
        // An error answer is signed too, its parameters beside `error`.
        let unknown = try await h.confirm("bank-c", body: .object([("out_biz_no", .string("C-78")), ("tranche_no", .string("999999")), ("status", .string("10000"))]))
        #expect(unknown.status == 404 && unknown.json?["error"]?["code"] == .string("tranche_not_found"), "\(unknown.text)")
        #expect(throws: Never.self) { try bankSide.verify(.response, headers: unknown.headers.fields, body: unknown.body, now: h.now) }
        // And a byte changed in the ack's business fields is caught.
        let forged = Array(String(decoding: ack.body, as: UTF8.self).replacingOccurrences(of: "\"funded\"", with: "\"fundeD\"").utf8)
        #expect(forged != ack.body)
        #expect(throws: SigningError.self) { try bankSide.verify(.response, headers: ack.headers.fields, body: forged, now: h.now) }
    }

    @Test func badInputAndBadSignaturesChangeNothing() async throws {
        let h = try await LoopbackGateway()
        defer { h.stop() }
        let body = LoopbackGateway.loan("E2E-BAD", approvedAt: h.now)
        // Unsigned, tampered, stale, replayed.
        #expect(try await h.send(.POST, "/v1/loans", body: body).status == 401)
        let signed = try h.platformSigner.sign(.request, method: "POST", pathAndQuery: "/v1/loans", body: body, timestamp: h.now, nonce: "nonce-tamper-0000001")
        // Change one byte that is certainly different: the loan id's last letter.
        let tampered = Array(String(decoding: body, as: UTF8.self).replacingOccurrences(of: "E2E-BAD", with: "E2E-BAE").utf8)
        #expect(tampered != body)
        #expect(try await h.send(.POST, "/v1/loans", body: tampered, headers: signed.headers.map { ($0.name, $0.value) }).status == 401)
        #expect(try await h.platform(.POST, "/v1/loans", body: body, timestamp: h.now - 301).status == 401)
        // Invalid fields: 400 naming the field.
        let negative = try await h.platform(.POST, "/v1/loans", body: Array(String(decoding: body, as: UTF8.self).replacingOccurrences(of: "1000001", with: "-1").utf8))
        #expect(negative.status == 400 && negative.json?["error"]?["field"] == .string("$.amountMinor"))
        // Rejected for funding: 422 with the reason code (CN per-borrower cap).
        let huge = try await h.platform(.POST, "/v1/loans", body: LoopbackGateway.loan("E2E-HUGE", amount: 30_000_000, approvedAt: h.now))
        #expect(huge.status == 422 && huge.json?["error"]?["code"] == .string("borrower_limit_exceeded"))
        // Nothing was stored for any of them.
        #expect(try await h.platform(.GET, "/v1/loans/E2E-BAD").status == 404)
        // Unknown partner; unknown tranche; a confirmation signed with the wrong partner's key.
        #expect(try await h.confirm("bank-a", body: .object([("serial", .string("X")), ("trancheId", .number("999999")), ("result", .string("FUNDED"))])).status == 404)
        let wrongKey = try h.partnerSigner("bank-a")
        let target = "/v1/partners/bank-b/confirmations"
        let b = Array(#"{"out_trade_no":"W","tranche_id":1,"trade_state":"SUCCESS"}"#.utf8)
        let s = try wrongKey.sign(.callback, method: "POST", pathAndQuery: target, body: b, timestamp: h.now, nonce: PartnerSigner.makeNonce())
        let wrongScheme = try await h.send(.POST, target, body: b, headers: s.headers.map { ($0.name, $0.value) })
        #expect(wrongScheme.status == 401)
        #expect(wrongScheme.json?["error"]?["field"] == .string("Wechatpay-Signature"), "where bank-b's scheme carries its signature")
        // A malformed parameter is named, never its value.
        let repeated = #"JL1-HMAC-SHA256 keyid="platform-dev-1",nonce="n-0000000000000001",nonce="n-0000000000000002",timestamp="\#(h.now)",signature="c2ln""#
        let malformed = try await h.send(.POST, "/v1/loans", body: body, headers: [("Authorization", repeated)])
        #expect(malformed.status == 401 && malformed.json?["error"]?["code"] == .string("header_malformed"))
        #expect(malformed.json?["error"]?["field"] == .string("Authorization.nonce repeated"), "\(malformed.text)")
        #expect(!malformed.text.contains("n-0000000000000001"))
        #expect(try await h.send(.POST, "/v1/partners/bank-z/confirmations", body: b).status == 404)
        #expect(try await h.server.store.verifyLedger() == nil)
    }

    @Test func operatorEndpoints() async throws {
        let h = try await LoopbackGateway()
        defer { h.stop() }
        #expect(try await h.send(.GET, "/healthz").status == 200)
        #expect(try await h.send(.GET, "/readyz").status == 200)
        _ = try await h.platform(.POST, "/v1/loans", body: LoopbackGateway.loan("E2E-M", approvedAt: h.now))
        let metrics = try await h.send(.GET, "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.text.contains(#"jointlend_routing_decisions_total{outcome="planned"} 1"#))
        #expect(metrics.text.contains(#"jointlend_http_requests_total{method="POST",route="/v1/loans",status="201"} 1"#))
        // The loan's partner tranche and nothing else waits in the outbox; the writer has committed batches.
        #expect(metrics.text.contains("jointlend_outbox_depth 1\n"), "\(metrics.text)")
        #expect(metrics.text.contains("jointlend_store_batch_size_mean "))
        #expect(metrics.text.contains("jointlend_store_batches_overlapping_sync "))
        // Each batch's and each fsync's duration, as histograms an operator can chase a spike with.
        for name in ["jointlend_store_batch_duration_seconds", "jointlend_store_wal_sync_duration_seconds"] {
            #expect(metrics.text.contains("# TYPE \(name) histogram\n"), "\(metrics.text)")
            #expect(metrics.text.contains("\(name)_bucket{le=\"0.00025\"} "))
            #expect(metrics.text.contains("\(name)_bucket{le=\"+Inf\"} "))
            #expect(metrics.text.contains("\(name)_count "))
        }
        // One signed request so far (the loan): one nonce held, against the configured bound.
        #expect(metrics.text.contains("jointlend_replay_nonces 1\n"), "\(metrics.text)")
        #expect(metrics.text.contains("jointlend_replay_nonces_max \(NonceReplayGuard.Configuration.defaultEntriesMax)\n"))
        let partners = try await h.platform(.GET, "/v1/partners")
        guard case .array(let list)? = partners.json?["partners"] else { Issue.record("\(partners.text)"); return }
        #expect(list.count == 3)
        let position = try await h.platform(.GET, "/v1/partners/bank-a/position")
        // Requested, not yet confirmed: counted in exposure and today's quota, not yet funded principal.
        #expect(position.status == 200 && position.json?["exposureMinor"] == .number("700001"), "\(position.text)")
        #expect(position.json?["quotaUsedTodayMinor"] == .number("700001") && position.json?["fundedPrincipalMinor"] == .number("0"))
        #expect(try await h.send(.GET, "/v1/partners").status == 401)
    }
}
