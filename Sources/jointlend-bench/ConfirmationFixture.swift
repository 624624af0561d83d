import Foundation
import Gateway
import LendingCore
import PartnerSigning
import Storage

/// `jointlend-bench confirmations-fixture --config FILE --data-dir DIR --loans N --out FILE [--partner P]`
///
/// Prepares the HTTP confirmation benchmark: routes N loans straight into the store (as
/// `POST /v1/loans` would), then writes one validly signed, unique funding confirmation per
/// requested tranche of partner P (default bank-a), one per line as `PATH\tHEADER: VALUE|…\tBODY`,
/// for scripts/bench-http.sh's wrk script. Signatures carry the current time: run the benchmark
/// within the partner's timestamp window (300 s).
enum ConfirmationFixture {
    static func run(_ args: ArraySlice<String>) -> Int32 {
        func value(_ name: String) -> String? {
            guard let i = args.firstIndex(of: "--\(name)"), i + 1 < args.endIndex else { return nil }
            return args[i + 1]
        }
        guard let config = value("config"), let dataDir = value("data-dir"), let out = value("out"),
              let loans = Int(value("loans") ?? ""), loans > 0, loans <= 5_000_000 else {
            print("USAGE: jointlend-bench confirmations-fixture --config FILE --data-dir DIR --loans N --out FILE [--partner P]")
            return 2
        }
        let partnerId = value("partner") ?? "bank-a"
        var options = GatewayServer.Options()
        options.configPath = config
        options.dataDirectory = dataDir
        options.listenPort = 0
        let chosen = options
        let status = runBlockingBench { () async -> Int32 in
            do {
                let server = try await GatewayServer(options: chosen)
                defer { server.stop() }
                guard let contract = server.api.contracts[partnerId] else { print("no contract for \(partnerId)"); return 2 }
                let now = Int64(Date().timeIntervalSince1970)
                let start = monotonicNanoseconds()
                // Many submitters so the writer's group commit fills its batches.
                let tranches = try await withThrowingTaskGroup(of: [Int64].self) { group in
                    let workers = 256
                    for w in 0..<workers {
                        group.addTask {
                            var ids: [Int64] = []
                            var i = w
                            while i < loans {
                                let loan = Loan(loanId: "BENCH-\(now)-\(i)", borrowerRef: "B\(i)", amountMinor: 1_000_000, currency: .cny, termMonths: 12,
                                                annualRateBps: 1800, product: "consumer", riskGrade: "B", region: "GD", channel: "app", approvedAt: now)
                                if case .planned(_, _, let ts) = try await server.store.intake(loan, now: now) {
                                    ids.append(contentsOf: ts.filter { $0.funderId == partnerId && $0.state == .requested }.map(\.id))
                                }
                                i += workers
                            }
                            return ids
                        }
                    }
                    var all: [Int64] = []
                    for try await ids in group { all.append(contentsOf: ids) }
                    return all
                }
                let seconds = Double(monotonicNanoseconds() - start) / 1e9
                print("routed \(loans) loans in \(String(format: "%.1f", seconds)) s (\(Int(Double(loans) / seconds)) intakes/s); \(tranches.count) tranches of \(partnerId) to confirm")
                // Partners answer roughly in the order they were asked: tranches in request order,
                // shuffled within windows of the store bench's size (fixed seed, same every run).
                var generator = SplitMix64(seed: 0x5EED)
                var ordered: [Int64] = []
                ordered.reserveCapacity(tranches.count)
                let sorted = tranches.sorted()
                var windowStart = 0
                while windowStart < sorted.count {
                    var window = Array(sorted[windowStart..<min(windowStart + StoreBench.arrivalWindow, sorted.count)])
                    window.shuffle(using: &generator)
                    ordered += window
                    windowStart += StoreBench.arrivalWindow
                }
                let signer = try Demo.partnerSigner(contract)
                let signedAt = Int64(Date().timeIntervalSince1970)
                var text = ""
                text.reserveCapacity(tranches.count * 400)
                for (n, id) in ordered.enumerated() {
                    let target = "/v1/partners/\(partnerId)/confirmations"
                    let body = #"{"\#(contract.partnerField("serial"))":"S\#(signedAt)-\#(serialNumber(n))","\#(contract.partnerField("trancheId"))":\#(id),"\#(contract.partnerField("outcome"))":"\#(contract.resultCodes.first { $0.value == .funded }!.key)"}"#
                    let signed = try signer.sign(.callback, method: "POST", pathAndQuery: target, body: Array(body.utf8), timestamp: signedAt,
                                                 nonce: "bench\(signedAt)n\(n)")
                    text += target + "\t" + signed.headers.map { "\($0.name): \($0.value)" }.joined(separator: "|") + "\t" + body + "\n"
                }
                try text.write(toFile: out, atomically: true, encoding: .utf8)
                print("wrote \(tranches.count) signed confirmations to \(out)")
                return 0
            } catch {
                print("confirmations-fixture: \(error)")
                return 1
            }
        }
        guard status == 0 else { return status }
        // A partner answers a request it has received: by the time confirmations arrive, the
        // funding requests routing enqueued have been delivered. Record them so, or the gateway
        // under measurement would spend the run dispatching 300,000 stale requests (work of the
        // intake side, not of confirming).
        do {
            let db = try Database(path: "\(dataDir)/jointlend.sqlite")
            defer { db.close() }
            try db.execute("UPDATE outbox SET state = 1, attempts = attempts + 1 WHERE destination = ? AND state IN (0, 2)", [.text("partner:\(partnerId)")])
            print("marked \(db.changesCount) funding requests to \(partnerId) delivered")
        } catch {
            print("confirmations-fixture: \(error)")
            return 1
        }
        return 0
    }
}

/// A partner's serial numbers are issued in the order it answers, fixed width (as banks'
/// transaction references are), so they sort in that order too.
func serialNumber(_ n: Int) -> String {
    let digits = String(n)
    return String(repeating: "0", count: max(0, 10 - digits.count)) + digits
}

func runBlockingBench<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: T?  // written once by the task before the semaphore signals
    Task {
        result = await body()
        done.signal()
    }
    done.wait()
    return result!
}
