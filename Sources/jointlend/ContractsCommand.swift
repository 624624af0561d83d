import Foundation
import Gateway
import HTTP
import PartnerSigning

/// `jointlend contracts lint | pacts | verify`: partner contracts as onboarding artefacts.
enum ContractsCommand {
    static let help = """
        USAGE: jointlend contracts lint   [--dir DIR]
               jointlend contracts pacts  [--dir DIR] [--partner P] --write
               jointlend contracts verify [--dir DIR] [--partner P] [--against URL]

          lint     Loads every DIR/<partnerId>/partner.json (default DIR: Contracts) and checks its
                   structure, keys, endpoints and Pact files; prints each problem with its file
                   and JSON path. Exit 1 if any.
          pacts    Regenerates the Pact v4 files from the contract and its test-only keys.
          verify   Offline: every outbound example is what the gateway sends (byte-identical, or
                   verifying for SM2), every inbound example is accepted and each single-field
                   mutation rejected, mappings round-trip. With --against URL: sends the
                   contract's funding request, status query and cancellation for the example
                   tranche to a live endpoint (a bank's sandbox) and checks the signed answers.
        """

    static func run(_ args: ArraySlice<String>) -> Int32 {
        guard let sub = args.first, sub != "--help" else { print(help); return args.first == nil ? 2 : 0 }
        do {
            let opts = try Options(args.dropFirst(), valued: ["dir", "partner", "against"], switches: ["write", "help"])
            if opts.flag("help") { print(help); return 0 }
            guard opts.positionals.isEmpty else { throw UsageError("unexpected argument '\(opts.positionals[0])'") }
            let dir = opts.value("dir") ?? "Contracts"
            switch sub {
            case "lint": return lint(dir)
            case "pacts":
                guard opts.flag("write") else { throw UsageError("pacts rewrites files: pass --write") }
                return try writePacts(try contracts(dir, only: opts.value("partner")))
            case "verify":
                let selected = try contracts(dir, only: opts.value("partner"))
                if let url = opts.value("against") { return try against(url, selected) }
                return verify(selected)
            default:
                throw UsageError("unknown subcommand '\(sub)'; expected lint, pacts or verify")
            }
        } catch let e as UsageError {
            writeStderr("jointlend contracts: \(e)")
            return 2
        } catch {
            writeStderr("jointlend contracts: \(error)")
            return 2
        }
    }

    static func contracts(_ dir: String, only: String?) throws -> [PartnerContract] {
        let all = try PartnerContract.loadAll(directory: dir)
        guard let only else { return all }
        guard let c = all.first(where: { $0.partnerId == only }) else { throw UsageError("--partner: no contract '\(only)' in \(dir)") }
        return [c]
    }

    static func lint(_ dir: String) -> Int32 {
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        var problems: [String] = []
        var checked = 0
        for entry in entries {
            let folder = "\(dir)/\(entry)"
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else { continue }
            let file = "\(folder)/partner.json"
            guard FileManager.default.fileExists(atPath: file) else {
                problems.append("\(folder): no partner.json (every folder under \(dir) is a partner contract)")
                continue
            }
            checked += 1
            let contract: PartnerContract
            do { contract = try PartnerContract.load(file: file) } catch {
                problems += error.problems.map { "\(file) \($0)" }
                // The pacts cannot be checked against a contract that does not load, but their
                // files can be looked for (named by the folder), so one run reports those too.
                for path in [ContractPacts.gatewayPactFile(partnerId: entry), ContractPacts.partnerPactFile(partnerId: entry)]
                where !FileManager.default.fileExists(atPath: "\(folder)/\(path)") {
                    problems.append("\(folder)/\(path): missing (`jointlend contracts pacts --partner \(entry) --write` makes it once partner.json loads)")
                }
                continue
            }
            if FileManager.default.fileExists(atPath: "\(folder)/keys") {
                let readme = (try? String(contentsOfFile: "\(folder)/keys/README.md", encoding: .utf8)) ?? ""
                if !readme.uppercased().contains("TEST-ONLY") && !readme.lowercased().contains("tests only") {
                    problems.append("\(folder)/keys/README.md: must exist and say the keys are for tests only")
                }
            }
            if contract.simulatorKeys == nil { problems.append("\(file) $.simulator: missing (test keys the simulator and the pact examples sign with)") }
            let verifier = ContractVerifier(contract: contract)
            for path in [ContractPacts.gatewayPactFile(contract), ContractPacts.partnerPactFile(contract)] {
                do {
                    let pact = try verifier.pact(path)
                    for f in verifier.structure(pact, consumer: path.contains("-\(ContractPacts.gatewayName)") ? contract.partnerId : ContractPacts.gatewayName,
                                                provider: path.contains("-\(ContractPacts.gatewayName)") ? ContractPacts.gatewayName : contract.partnerId, file: path) where !f.passed {
                        problems.append("\(folder)/\(path) \(f.detail)")
                    }
                } catch {
                    problems.append("\(folder)/\(path): \(error)")
                }
            }
        }
        for p in problems { print(p) }
        print(problems.isEmpty ? "contracts lint: \(checked) contracts, no problems" : "contracts lint: \(problems.count) problems in \(checked) contracts")
        return problems.isEmpty ? 0 : 1
    }

    static func writePacts(_ contracts: [PartnerContract]) throws -> Int32 {
        for c in contracts {
            try FileManager.default.createDirectory(atPath: "\(c.directory)/pacts", withIntermediateDirectories: true)
            for (path, json) in try ContractPacts.generate(c) {
                try Data((ContractPacts.pretty(json) + "\n").utf8).write(to: URL(fileURLWithPath: "\(c.directory)/\(path)"))
                print("wrote \(c.directory)/\(path)")
            }
        }
        return 0
    }

    static func verify(_ contracts: [PartnerContract]) -> Int32 {
        var failed = 0
        for c in contracts {
            for f in ContractVerifier(contract: c).verifyAll() {
                print("\(c.partnerId): \(f)")
                if !f.passed { failed += 1 }
            }
        }
        print(failed == 0 ? "contracts verify: all checks passed" : "contracts verify: \(failed) checks failed")
        return failed == 0 ? 0 : 1
    }

    /// Runs the gateway side of a contract against a live partner endpoint.
    static func against(_ url: String, _ contracts: [PartnerContract]) throws -> Int32 {
        guard contracts.count == 1, let c = contracts.first else { throw UsageError("--against needs --partner P") }
        let wire: PartnerWire
        do { wire = try PartnerWire(contract: c, baseURL: url) } catch { throw UsageError("--against: \(error)") }
        let signer = try c.makeSigner()
        let verifier = try c.makeVerifier(replayGuard: NonceReplayGuard(covering: [c.scheme]))
        let client = HTTPClient()
        defer { client.shutdown() }
        let t = ContractPacts.exampleTranche
        let now = Int64(Date().timeIntervalSince1970)
        var failed = 0
        let steps: [(String, PartnerWire.Message)] = [
            ("funding request", try wire.fundingRequest(t, signer: signer, timestamp: now, nonce: PartnerSigner.makeNonce())),
            ("status query", try wire.statusQuery(t, signer: signer, timestamp: now, nonce: PartnerSigner.makeNonce())),
            ("cancellation", try wire.cancellation(t, reason: "released", signer: signer, timestamp: now, nonce: PartnerSigner.makeNonce())),
        ]
        for (name, m) in steps {
            let outcome = runBlocking { () async -> String? in
                do {
                    let r = try await client.execute(HTTPClient.Request(method: m.method, host: wire.endpoint.host, port: wire.endpoint.port, target: m.target,
                                                                        headers: m.headers, body: m.body), timeoutMilliseconds: 5_000)
                    guard (200..<300).contains(r.status) else { return "answered \(r.status)" }
                    do { try verifier.verify(.response, headers: r.headers.fields, body: r.body, now: Int64(Date().timeIntervalSince1970)) } catch let e as SigningError {
                        return "answer signature rejected: \(e.code)"
                    }
                    do { _ = try wire.answer(r.body) } catch { return "answer unreadable: \(error)" }
                    return nil
                } catch {
                    return "\(error)"
                }
            }
            print("\(c.partnerId) \(name): \(outcome.map { "FAIL \($0)" } ?? "ok")")
            if outcome != nil { failed += 1 }
        }
        return failed == 0 ? 0 : 1
    }
}
