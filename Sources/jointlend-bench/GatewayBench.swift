import Foundation
import Gateway
import HTTP
import LendingCore
import PartnerSigning
import Storage

/// `jointlend-bench gateway [--requests N]`: the API layer's own cost per signed confirmation —
/// signature verification, decoding, the ack and its signature, metrics and logging — through the
/// responder with no socket and a store that answers at once. Shows how much of a core the
/// gateway needs beside the store's writer.
enum GatewayBench {
    /// Answers every confirmation as funded, instantly.
    struct InstantStore: Store {
        func intake(_ loan: Loan, now: Int64) async throws -> IntakeResult { .rejected(Rejection(.noCapacity, "bench")) }
        func confirm(_ c: FundingConfirmation, now: Int64) async throws -> ConfirmationResult {
            ConfirmationResult(trancheId: c.trancheId, trancheState: .funded, loanId: "L", loanState: .funded)
        }
        func expireOverdue(now: Int64, limit: Int) async throws -> [ExpiryResult] { [] }
        func recordRepayment(_ repayment: Repayment, now: Int64) async throws -> RepaymentResult { throw StoreError.closed }
        func depositToPool(funderId: String, amountMinor: Int64, reference: String, now: Int64) async throws {}
        func claimDueOutbox(now: Int64, limit: Int) async throws -> [OutboxMessage] { [] }
        func markOutboxSent(id: Int64) async throws {}
        func markOutboxFailed(id: Int64, now: Int64) async throws -> OutboxMessage.State { .dead }
        func post(_ transaction: LedgerTransaction) async throws -> Int64 { 0 }
        func appendAudit(actor: String, action: String, payload: [UInt8], now: Int64) async throws {}
        func loan(id: String) async throws -> LoanRecord? { nil }
        func balance(account: String) async throws -> Int64 { 0 }
        func outboxMessage(id: Int64) async throws -> OutboxMessage? { nil }
        func verifyLedger() async throws -> String? { nil }
        func verifyAudit() async throws -> String? { nil }
        func close() {}
    }

    static func run(_ args: ArraySlice<String>) -> Int32 {
        var requests = 200_000
        if let i = args.firstIndex(of: "--requests"), i + 1 < args.endIndex, let n = Int(args[i + 1]), n > 0 { requests = n }
        let total = requests
        return runBlockingBench { () async -> Int32 in
            do {
                var config = try GatewayConfig.load(path: "Config/gateway.json")
                // The limiter still runs for every request, but must not refuse: faster than the
                // configured partner rate, the bench would otherwise time 429s.
                config.runtime.partnerRateLimit.ratePerSecond = 10_000_000
                config.runtime.partnerRateLimit.burst = 10_000_000
                let contracts = try PartnerContract.loadAll(directory: "Contracts")
                guard let contract = contracts.first(where: { $0.partnerId == "bank-a" }) else { return 2 }
                let now = Int64(Date().timeIntervalSince1970)
                let api = try GatewayAPI(config: config, store: InstantStore(), contracts: contracts, platformSecret: Array(repeating: 7, count: 32),
                                         clock: { now })
                let responder = try api.makeResponder()
                let signer = try Demo.partnerSigner(contract)
                let target = "/v1/partners/bank-a/confirmations"
                var prepared: [Request] = []
                prepared.reserveCapacity(total)
                for n in 0..<total {
                    let body = Array(#"{"serial":"S\#(n)","trancheId":\#(n + 1),"result":"FUNDED"}"#.utf8)
                    let signed = try signer.sign(.callback, method: "POST", pathAndQuery: target, body: body, timestamp: now, nonce: "gwbench\(now)n\(n)")
                    prepared.append(Request(method: .POST, path: target, headers: HTTPHeaders(signed.headers.map { ($0.name, $0.value) }), body: body))
                }
                let logger = HTTP.Logger(label: "bench", logLevel: .warning)
                var failures = 0
                let start = monotonicNanoseconds()
                for (n, request) in prepared.enumerated() {
                    let r = await responder.respond(to: request, context: RequestContext(requestID: "r\(n)", logger: logger))
                    api.observe(RequestMetrics(method: .POST, routePattern: "/v1/partners/{partnerId}/confirmations", status: r.status.code, durationNanoseconds: 1_000))
                    if r.status.code != 200 {
                        failures += 1
                        if failures == 1 { print("first failure: \(r.status.code) \(String(decoding: r.body, as: UTF8.self))") }
                    }
                }
                let seconds = Double(monotonicNanoseconds() - start) / 1e9
                print("gateway layer: \(total) signed confirmations (bank-a, jl1 HMAC) in \(String(format: "%.2f", seconds)) s on one task: \(Int(Double(total) / seconds))/s, \(String(format: "%.1f", seconds * 1e6 / Double(total))) µs each; failures \(failures)")
                return failures == 0 ? 0 : 1
            } catch {
                print("gateway bench: \(error)")
                return 1
            }
        }
    }
}
