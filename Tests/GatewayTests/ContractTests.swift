import Foundation
import Testing
@testable import Gateway
import PartnerSigning
import HTTP
import Storage

/// Contract tests discovered per partner folder: a new `Contracts/<partnerId>/` brings its
/// tests with no code change (the folder list is the test's arguments).
@Suite struct ContractTests {
    static let contractsDirectory = "\(GatewayHarness.repoRoot)/Contracts"
    static var partnerFolders: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: contractsDirectory)) ?? []).sorted()
            .filter { FileManager.default.fileExists(atPath: "\(contractsDirectory)/\($0)/partner.json") }
    }

    @Test func atLeastTheThreeSchemesAreCovered() throws {
        let contracts = try PartnerContract.loadAll(directory: Self.contractsDirectory)
        let schemes = Set(contracts.map { "\($0.scheme.format.rawValue)+\($0.scheme.algorithm.rawValue)" })
        #expect(schemes.isSuperset(of: ["jl1+HMAC-SHA256", "wechatpay-v3+RSA-SHA256", "sorted-params+SM2-SM3"]))
    }

    @Test(arguments: partnerFolders) func contractHoldsAgainstItsPacts(_ folder: String) throws {
        let contract = try PartnerContract.load(file: "\(Self.contractsDirectory)/\(folder)/partner.json")
        let findings = ContractVerifier(contract: contract).verifyAll()
        for f in findings where !f.passed { Issue.record("\(folder): \(f)") }
        // Structure ×2, three outbound, four inbound with their mutations, mappings.
        #expect(findings.count == 2 + 3 + 4 * 2 + 1)
    }

    @Test(arguments: partnerFolders) func regeneratedPactsMatchTheCommittedOnesForDeterministicSchemes(_ folder: String) throws {
        let contract = try PartnerContract.load(file: "\(Self.contractsDirectory)/\(folder)/partner.json")
        guard contract.scheme.algorithm != .sm2SM3 else { return }  // randomised signatures: verified instead, above
        let verifier = ContractVerifier(contract: contract)
        for (path, json) in try ContractPacts.generate(contract) {
            #expect(try verifier.pact(path) == json, "\(folder)/\(path) is stale: run `jointlend contracts pacts --write`")
        }
    }

    @Test(arguments: partnerFolders) func keysFolderSaysTestOnly(_ folder: String) throws {
        let readme = try String(contentsOfFile: "\(Self.contractsDirectory)/\(folder)/keys/README.md", encoding: .utf8)
        #expect(readme.contains("TEST-ONLY"))
    }

    /// The verifier must fail when an example drifts from what the gateway sends.
    @Test func tamperedOutboundExampleIsCaught() throws {
        let source = "\(Self.contractsDirectory)/bank-a"
        let copy = NSTemporaryDirectory() + "jl-contract-\(UUID().uuidString)/bank-a"
        try FileManager.default.createDirectory(atPath: (copy as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: (copy as NSString).deletingLastPathComponent) }
        try FileManager.default.copyItem(atPath: source, toPath: copy)
        let pactPath = "\(copy)/pacts/jointlend-gateway-bank-a.json"
        let text = try String(contentsOfFile: pactPath, encoding: .utf8)
        #expect(text.contains("\"amountMinor\": 700001"))
        try text.replacingOccurrences(of: "\"amountMinor\": 700001", with: "\"amountMinor\": 700002").write(toFile: pactPath, atomically: true, encoding: .utf8)
        let contract = try PartnerContract.load(file: "\(copy)/partner.json")
        let failed = ContractVerifier(contract: contract).verifyAll().filter { !$0.passed }.map(\.check)
        #expect(failed.contains { $0.contains("outbound 'a funding request") })
        #expect(failed.contains { $0.contains("inbound answer to 'a funding request") }, "the answer's body changed under its signature")
    }

    @Test func mutationsCoverEveryBodyFieldAndSigningHeader() throws {
        let m = ContractPacts.ExampleMessage(method: "POST", target: "/x", headers: [("Content-Type", "application/json"),
            ("Authorization", #"JL1-HMAC-SHA256 keyid="k1",nonce="n123456789012345",timestamp="1",signature="c2ln""#)],
            body: Array(#"{"a":"x","b":2}"#.utf8), status: nil)
        let names = ContractVerifier.mutations(of: m).map(\.0)
        #expect(names == ["body.a", "body.b", "header Authorization", "Authorization keyid", "Authorization nonce", "Authorization timestamp", "Authorization signature"])
    }

    @Test func lintReportsTheFileAndPathOfEachProblem() throws {
        let dir = NSTemporaryDirectory() + "jl-lint-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: "\(dir)/bank-z", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"partnerId":"bank-y","name":"Z","licenceNumber":"L","signing":{"format":"jl2","algorithm":"HMAC-SHA256"},"endpoints":{"baseUrl":"ftp://x","fundingRequest":"f","statusQuery":"/s","cancellation":"/c"},"fieldMappings":{},"resultCodes":{"OK":"funded"}}"#
            .write(toFile: "\(dir)/bank-z/partner.json", atomically: true, encoding: .utf8)
        do {
            _ = try PartnerContract.load(file: "\(dir)/bank-z/partner.json")
            Issue.record("a broken contract loaded")
        } catch {
            let p = error.problems.map(\.description)
            #expect(p.contains { $0.hasPrefix("$.partnerId:") && $0.contains("bank-z") })
            #expect(p.contains { $0.hasPrefix("$.signing.format:") })
            #expect(p.contains { $0.hasPrefix("$.endpoints.baseUrl:") })
            #expect(p.contains { $0.hasPrefix("$.endpoints.fundingRequest:") })
            #expect(p.contains { $0.hasPrefix("$.resultCodes:") })
        }
    }
}

@Suite(.serialized) struct ContractProviderStateTests {
    @Test func providerStateEndpointIsAbsentOutsideTestMode() async throws {
        let h = try await GatewayHarness()
        defer { h.stop() }
        let r = try await h.send(.POST, "/_test/pact/provider-states", body: Array(#"{"state":"tranche 41 is requested from bank-b","params":{}}"#.utf8))
        #expect(r.status == 404)
    }

    /// What the Pact verifier does, by hand: set up the state, send the confirmation with the
    /// injected values, get a signed ack and a funded tranche.
    @Test(arguments: ["bank-a", "bank-b", "bank-c"]) func providerStateValuesMakeAConfirmationTheGatewayAccepts(_ partner: String) async throws {
        let h = try await GatewayHarness(testMode: true)
        defer { h.stop() }
        let setup = try await h.send(.POST, "/_test/pact/provider-states", body: Array("{\"state\":\"tranche 41 is requested from \(partner)\",\"params\":{}}".utf8))
        #expect(setup.status == 200)
        let values = try JSONParser.parse(setup.body)
        guard case .string(let body)? = values["body"], case .number(let id)? = values["trancheId"], let trancheId = Int64(id) else {
            Issue.record("setup answered no body or tranche id")
            return
        }
        var headers: HTTPHeaders = ["Content-Type": "application/json"]
        switch partner {
        case "bank-a":
            if case .string(let a)? = values["authorization"] { headers.add(name: "Authorization", value: a) }
        case "bank-b":
            for (name, key) in [("Wechatpay-Timestamp", "timestamp"), ("Wechatpay-Nonce", "nonce"), ("Wechatpay-Signature", "signature")] {
                if case .string(let v)? = values[key] { headers.add(name: name, value: v) }
            }
            headers.add(name: "Wechatpay-Serial", value: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1")
            headers.add(name: "Wechatpay-Signature-Type", value: "WECHATPAY2-SHA256-RSA2048")
        default: break
        }
        // The partner pact's request is signed over the body exactly as the state answered it.
        let r = try await h.send(.POST, "/v1/partners/\(partner)/confirmations", headers: headers, body: Array(body.utf8))
        #expect(r.status == 200, "\(String(decoding: r.body, as: UTF8.self))")
        let record = try await h.gateway.store.loan(id: GatewayHarness.loanIdOf(trancheId: trancheId, in: h.gateway.store) ?? "")
        #expect(record?.tranches.first { $0.id == trancheId }?.state == .funded)
    }
}
