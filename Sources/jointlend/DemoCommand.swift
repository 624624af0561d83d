import Foundation
import Gateway

/// `jointlend demo`: the whole product in one command.
enum DemoCommand {
    static let help = """
        USAGE: jointlend demo [--config FILE] [--data-dir DIR] [--loans N] [--seed N] [--decline-percent P]

        Starts the gateway on a free loopback port, posts N (default 300) signed approved loans as
        the platform, lets each partner answer its funding requests as a simulated bank (signed
        confirmations in its own scheme; P% declines, default 10, re-routed to fallbacks), then
        prints plans, confirmations, achieved vs target ratios per rule and positions per funder,
        and verifies the ledger and the audit chain. The database stays in DIR for inspection
        (default: the configuration's dataDir, i.e. ./data).
        """

    static func run(_ args: ArraySlice<String>) -> Int32 {
        if args.contains("--help") { print(help); return 0 }
        var options = GatewayServer.Options()
        var loans = 300, seed: UInt64 = 1, decline = 10
        do {
            let opts = try Options(args, valued: ["config", "data-dir", "loans", "seed", "decline-percent"])
            options.configPath = opts.value("config") ?? options.configPath
            options.dataDirectory = opts.value("data-dir")
            if let v = opts.value("loans") { guard let n = Int(v), (1...100_000).contains(n) else { throw UsageError("--loans: expected 1...100000") }; loans = n }
            if let v = opts.value("seed") { guard let n = UInt64(v) else { throw UsageError("--seed: expected a non-negative integer") }; seed = n }
            if let v = opts.value("decline-percent") { guard let n = Int(v), (0...100).contains(n) else { throw UsageError("--decline-percent: expected 0...100") }; decline = n }
        } catch {
            writeStderr("jointlend demo: \(error)")
            return 2
        }
        options.listenHost = "127.0.0.1"
        options.listenPort = 0
        options.logger = .init(label: "demo", logLevel: .warning)
        let chosen = options, n = loans, s = seed, d = decline
        let result = runBlocking { () async -> Result<Demo.Report, any Error> in
            do { return .success(try await Demo.run(options: chosen, loans: n, seed: s, declinePercent: d)) } catch { return .failure(error) }
        }
        switch result {
        case .success(let report):
            print(Demo.render(report))
            return report.ledgerProblem == nil && report.auditProblem == nil ? 0 : 1
        case .failure(let e as ConfigError):
            writeStderr("jointlend demo: invalid configuration\n\(e)")
            return 2
        case .failure(let e):
            writeStderr("jointlend demo: \(e)")
            return 1
        }
    }
}
