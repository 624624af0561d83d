import Foundation
import Gateway
import HTTP

/// `jointlend partner-sim`: plays one partner bank from its contract folder, with faults.
enum PartnerSimCommand {
    static let help = """
        USAGE: jointlend partner-sim --contract DIR --listen HOST:PORT --gateway URL [fault options]

        Plays the partner bank of Contracts/<partnerId> (DIR): verifies the gateway's signatures
        (401 on a bad one), accepts funding requests, posts signed confirmations to URL after a
        delay, answers status queries and cancellations. Runs until SIGTERM/SIGINT.
          --callback-delay-ms N          delay before the confirmation (default 10)
          --decline-rate PCT             share of requests declined (default 0)
          --error-rate PCT               requests answered 503 and not processed
          --timeout-rate PCT             requests processed but answered after --timeout-hold-ms
          --timeout-hold-ms N            (default 3000)
          --latency-ms N                 added before every answer
          --lost-callback-rate PCT       confirmations never sent (status queries find them)
          --duplicate-callback-rate PCT  confirmations sent twice
          --seed N                       fault randomness (default 1); same seed, same draws
        """

    static func run(_ args: ArraySlice<String>) -> Int32 {
        if args.contains("--help") { print(help); return 0 }
        let rates = ["decline-rate", "error-rate", "timeout-rate", "lost-callback-rate", "duplicate-callback-rate"]
        let counts = ["callback-delay-ms", "timeout-hold-ms", "latency-ms"]
        let simulator: PartnerSimulator
        do {
            let opts = try Options(args, valued: Set(["contract", "listen", "gateway", "seed"] + rates + counts))
            let folder = try opts.required("contract")
            var c = PartnerSimulator.Configuration()
            (c.host, c.port) = try ServeCommand.parseListen(try opts.required("listen"))
            c.gatewayURL = try opts.required("gateway")
            func percent(_ name: String) throws(UsageError) -> Double {
                guard let text = opts.value(name) else { return 0 }
                guard let v = Double(text), v >= 0, v <= 100 else { throw UsageError("--\(name): expected a percentage 0...100") }
                return v
            }
            func milliseconds(_ name: String, _ fallback: Int) throws(UsageError) -> Int {
                guard let text = opts.value(name) else { return fallback }
                guard let v = Int(text), (0...600_000).contains(v) else { throw UsageError("--\(name): expected milliseconds 0...600000") }
                return v
            }
            c.faults.declinePercent = try percent("decline-rate")
            c.faults.serverErrorPercent = try percent("error-rate")
            c.faults.timeoutPercent = try percent("timeout-rate")
            c.faults.lostCallbackPercent = try percent("lost-callback-rate")
            c.faults.duplicateCallbackPercent = try percent("duplicate-callback-rate")
            c.faults.latencyMilliseconds = try milliseconds("latency-ms", 0)
            c.faults.timeoutHoldMilliseconds = try milliseconds("timeout-hold-ms", 3_000)
            c.callbackDelayMilliseconds = try milliseconds("callback-delay-ms", 10)
            if let s = opts.value("seed") {
                guard let seed = UInt64(s) else { throw UsageError("--seed: expected an unsigned integer") }
                c.seed = seed
            }
            let contract: PartnerContract
            do { contract = try PartnerContract.load(file: "\(folder)/partner.json") } catch {
                writeStderr("jointlend partner-sim: invalid contract\n\(error)")
                return 2
            }
            simulator = try PartnerSimulator(contract: contract, configuration: c, clock: { Int64(Date().timeIntervalSince1970) },
                                             logger: HTTP.Logger(label: "partner-sim.\(contract.partnerId)"))
        } catch {
            writeStderr("jointlend partner-sim: \(error)")
            return 2
        }
        do { try simulator.start() } catch {
            writeStderr("jointlend partner-sim: cannot listen: \(error)")
            return 1
        }
        FileHandle.standardOutput.write(Data("partner-sim \(simulator.contract.partnerId) listening on http://\(simulator.configuration.host):\(simulator.port) (seed \(simulator.configuration.seed))\n".utf8))
        simulator.runUntilTerminated()
        let s = simulator.stats
        FileHandle.standardOutput.write(Data("partner-sim \(simulator.contract.partnerId): requests \(s.fundingRequests), duplicates \(s.duplicateRequests), funded \(s.funded), declined \(s.declined), 5xx \(s.serverErrorsInjected), timeouts \(s.timeoutsInjected), lost callbacks \(s.callbacksLost), duplicated callbacks \(s.callbacksDuplicated), status queries \(s.statusQueries), cancellations \(s.cancellations), bad signatures \(s.signatureRejections)\n".utf8))
        simulator.stop()
        return 0
    }
}
