import Foundation
import Testing
import PartnerSigning
@testable import Gateway
@testable import LendingCore
import Storage

@Suite struct ConfigTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test func shippedConfigurationLoadsAndUsesEveryFundingMode() throws {
        let config = try GatewayConfig.load(path: "\(Self.repoRoot)/Config/gateway.json")
        #expect(config.funders.filter { $0.kind == .pool }.count >= 2)
        #expect(config.funders.filter { $0.kind == .partner }.count >= 3)
        let modes = (config.ruleSet.rules + [config.ruleSet.defaultRule].compactMap { $0 }).map { rule -> String in
            switch rule.mode {
            case .coFunding: return "coFunding"
            case .allocation: return "allocation"
            case .mixed: return "mixed"
            }
        }
        #expect(Set(modes) == ["coFunding", "allocation", "mixed"])
        #expect(config.jurisdiction == .cn)
        #expect(config.ruleSet.defaultRule != nil)
    }

    @Test func shippedExampleLoanRoutesToAPlan() throws {
        let config = try GatewayConfig.load(path: "\(Self.repoRoot)/Config/gateway.json")
        let loan = try LoanCodec.decodeLoan(Array(try Data(contentsOf: URL(fileURLWithPath: "\(Self.repoRoot)/Config/examples/loan.json"))))
        let decision = config.makeRouter().route(loan: loan, capacities: config.openingCapacities(), allocations: .init(), now: loan.approvedAt)
        let json = JSONWriter.string(LoanCodec.encode(decision))
        #expect(json == #"{"decision":"planned","ruleId":"prime-mixed","ruleVersion":1,"reason":null,"tranches":[{"funderId":"pool-main","shareBps":3000,"amountMinor":300000},{"funderId":"bank-a","shareBps":7000,"amountMinor":700001}]}"#)
    }

    func problems(_ json: String) -> [String] {
        do {
            _ = try GatewayConfig.decode(Array(json.utf8), file: "test.json")
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test func everyProblemIsReportedWithItsPath() {
        let json = """
            {"jurisdiction":"XX","currency":"CNY","extra":1,
             "funders":[{"id":"pool-main","kind":"pool","name":"P","initialBalanceMinor":-1},
                        {"id":"bank-a","kind":"bank","name":"A"},
                        {"id":"bank-b","kind":"partner","name":"B","licenceNumber":"L","limits":{"dailyQuotaMinor":"lots"},"risk":{"guaranteeCapBps":20000}},
                        {"id":"pool-main","kind":"pool","name":"dup","initialBalanceMinor":5}],
             "ruleSet":{"version":1,"rules":[{"id":"r1","funding":{"mode":"coFunding","shares":[{"funderId":"pool-main","bps":3000},{"funderId":"ghost","bps":6000}]}}],
                        "defaultRule":{"id":"d","funding":{"mode":"split"}}}}
            """
        let p = problems(json)
        #expect(p.contains("$.extra: unknown field (expected one of: businessDayUtcOffsetSeconds, contractsDir, currency, dataDir, funders, fundingDeadlineSeconds, jurisdiction, outbox, platform, rateLimits, ruleSet, server, store)"))
        #expect(p.contains("$.jurisdiction: unknown jurisdiction; expected CN, IN or NONE"))
        #expect(p.contains("$.funders[0].initialBalanceMinor: must be 0...\(Int64.max / 4)"))
        #expect(p.contains("$.funders[1].kind: expected \"pool\" or \"partner\""))
        #expect(p.contains("$.funders[2].limits.dailyQuotaMinor: expected an integer, found string"))
        #expect(p.contains("$.funders[2].risk.guaranteeCapBps: must be 0...10000"))
        #expect(p.contains("$.funders[3].id: duplicate funder id 'pool-main'"))
        #expect(p.contains("$.ruleSet.rules[0].funding.shares[1].funderId: unknown funder 'ghost'"))
        #expect(p.contains("$.ruleSet.rules[0].funding.shares: bps sum to 9000, expected 10000"))
        #expect(p.contains("$.ruleSet.defaultRule.funding.mode: expected \"coFunding\", \"allocation\" or \"mixed\""))
    }

    /// The shipped configuration's text with one more top-level member.
    func shippedJSON(adding member: String, _ value: String) throws -> String {
        let shipped = try String(contentsOfFile: "\(Self.repoRoot)/Config/gateway.json", encoding: .utf8)
        let end = try #require(shipped.lastIndex(of: "}"))
        return String(shipped[..<end]) + #","\#(member)":\#(value)}"#
    }

    /// That configuration loaded as a file.
    func shippedConfig(adding member: String, _ value: String) throws -> GatewayConfig {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("settings-\(UInt32.random(in: 0...UInt32.max)).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try shippedJSON(adding: member, value).write(toFile: path, atomically: true, encoding: .utf8)
        return try GatewayConfig.load(path: path)
    }

    @Test func storeSettingsAreReadAndCheckedByName() throws {
        func load(_ store: String) throws -> GatewayConfig { try shippedConfig(adding: "store", store) }
        let config = try load(#"{"pipelinedSync":false,"pipelinedBatchCommandsMin":24,"batchCommandsMax":512,"checkpointIntervalMilliseconds":40}"#)
        #expect(config.runtime.storeCheckpointIntervalMilliseconds == 40)
        #expect(try load("{}").runtime.storeCheckpointIntervalMilliseconds == StoreConfiguration.defaultCheckpointIntervalMilliseconds)
        #expect(throws: ConfigError.self) { try load(#"{"checkpointIntervalMilliseconds":-1}"#) }
        #expect(config.runtime.storePipelinesSync == false)
        #expect(config.runtime.storePipelinedBatchCommandsMin == 24)
        #expect(try load("{}").runtime.storePipelinedBatchCommandsMin == StoreConfiguration.defaultPipelinedBatchCommandsMin)
        #expect(config.runtime.storeBatchCommandsMax == 512)
        #expect(try load("{}").runtime.storePipelinesSync == true)
        #expect(throws: ConfigError.self) { try load(#"{"pipelinedBatchCommandsMin":0}"#) }
        #expect(throws: ConfigError.self) { try load(#"{"pipelinedSync":"yes"}"#) }
        #expect(throws: ConfigError.self) { try load(#"{"pipelineSync":true}"#) }
    }

    @Test func replayGuardSizeIsReadAndBounded() throws {
        #expect(try shippedConfig(adding: "server", #"{"replayNoncesMax":20000000}"#).runtime.replayNoncesMax == 20_000_000)
        #expect(try shippedConfig(adding: "server", "{}").runtime.replayNoncesMax == NonceReplayGuard.Configuration.defaultEntriesMax)
        // Out of range or not a number: refused, naming the field.
        #expect(problems(try shippedJSON(adding: "server", #"{"replayNoncesMax":999}"#)).contains { $0.hasPrefix("$.server.replayNoncesMax:") })
        #expect(problems(try shippedJSON(adding: "server", #"{"replayNoncesMax":"many"}"#)).contains { $0.hasPrefix("$.server.replayNoncesMax:") })
        #expect(problems(try shippedJSON(adding: "server", #"{"replayNoncesMax":5000}"#)) == [])
    }

    @Test func guaranteeCapAboveTheJurisdictionMaximumIsRefused() {
        let json = """
            {"jurisdiction":"IN","currency":"INR","funders":[{"id":"nbfc","kind":"partner","name":"N","licenceNumber":"L","risk":{"guaranteeCapBps":600}}],
             "ruleSet":{"version":1,"rules":[],"defaultRule":{"id":"d","funding":{"mode":"coFunding","shares":[{"funderId":"nbfc","bps":10000}]}}}}
            """
        #expect(problems(json) == ["$.funders[0].risk.guaranteeCapBps: exceeds the IN maximum of 500 bps"])
    }

    /// DOMAIN.md, IN: the partner commits within 15 days or the deal becomes a loan transfer.
    @Test func indiaRefusesAFundingDeadlineBeyondFifteenDays() throws {
        func deadlineProblems(_ jurisdiction: String, _ seconds: Int) throws -> [String] {
            let shipped = try String(contentsOfFile: "\(Self.repoRoot)/Config/gateway.json", encoding: .utf8)
            let json = shipped.replacingOccurrences(of: #""jurisdiction": "CN""#, with: #""jurisdiction": "\#(jurisdiction)""#)
                .replacingOccurrences(of: #""fundingDeadlineSeconds": 7200"#, with: #""fundingDeadlineSeconds": \#(seconds)"#)
            #expect(json.contains("\(seconds)") && json.contains(jurisdiction))
            return problems(json).filter { $0.contains("fundingDeadlineSeconds") }
        }
        #expect(try deadlineProblems("IN", 15 * 86_400).isEmpty)
        #expect(try deadlineProblems("IN", 15 * 86_400 + 1).count == 1)
        #expect(try deadlineProblems("CN", 30 * 86_400).isEmpty)
    }

    @Test func pathsResolveWithoutDotSteps() {
        #expect(GatewayConfig.lexicallyNormal("Config/../data") == "data")
        #expect(GatewayConfig.lexicallyNormal("./Config/./keys/../data/") == "Config/data")
        #expect(GatewayConfig.lexicallyNormal("Config/../../data") == "../data")
        #expect(GatewayConfig.lexicallyNormal("/srv/jl/../data") == "/srv/data")
        #expect(GatewayConfig.lexicallyNormal("/..") == "/")
        #expect(GatewayConfig.lexicallyNormal("Config/..") == ".")
    }

    @Test func malformedJSONIsOneProblemAtTheRoot() {
        #expect(problems("{\"funders\": [") == ["$: invalid JSON at byte 13: unexpected end of input"])
        #expect(problems("[]") == ["$: expected an object, found array"])
    }

    @Test func missingFileIsAProblemNotACrash() {
        #expect(throws: ConfigError.self) { try GatewayConfig.load(path: "/nonexistent/gateway.json") }
    }
}

@Suite struct LoanCodecTests {
    static let valid = #"{"loanId":"L-1","borrowerRef":"B-1","amountMinor":100,"currency":"CNY","termMonths":12,"annualRateBps":1800,"product":"consumer","riskGrade":"A","region":"GD","channel":"app","approvedAt":1800000000}"#

    func error(_ json: String) -> String? {
        do { _ = try LoanCodec.decodeLoan(Array(json.utf8)); return nil } catch { return error.description }
    }

    @Test func validLoanRoundTrips() throws {
        let loan = try LoanCodec.decodeLoan(Array(Self.valid.utf8))
        #expect(loan.amountMinor == 100 && loan.currency == .cny && loan.riskGrade == "A")
        #expect(JSONWriter.string(LoanCodec.encode(loan)) == Self.valid)
    }

    @Test func badInputNamesTheField() {
        #expect(error(Self.valid.replacingOccurrences(of: #""amountMinor":100"#, with: #""amountMinor":-100"#)) == "$.amountMinor: must be 1...1000000000000")
        #expect(error(Self.valid.replacingOccurrences(of: #""amountMinor":100"#, with: #""amountMinor":1.5"#)) == "$.amountMinor: expected an integer (minor units), found a fraction or exponent")
        #expect(error(Self.valid.replacingOccurrences(of: #""amountMinor":100"#, with: #""amountMinor":"100""#)) == "$.amountMinor: expected an integer, found string")
        #expect(error(Self.valid.replacingOccurrences(of: #""currency":"CNY""#, with: #""currency":"XBT""#))?.hasPrefix("$.currency: unknown currency") == true)
        #expect(error(Self.valid.replacingOccurrences(of: #""riskGrade":"A""#, with: #""riskGrade":"Z""#)) == "$.riskGrade: must be one of A, B, C, D, E")
        #expect(error(Self.valid.replacingOccurrences(of: #""loanId":"L-1","#, with: "")) == "$.loanId: missing required field")
        #expect(error(Self.valid.replacingOccurrences(of: #""loanId":"L-1""#, with: #""loanId":"L 1""#)) == "$.loanId: may contain only A-Z a-z 0-9 - _ . :")
        #expect(error(Self.valid.replacingOccurrences(of: "}", with: #","color":"red"}"#))?.hasPrefix("$.color: unknown field") == true)
        #expect(error(Self.valid.replacingOccurrences(of: #""amountMinor":100"#, with: #""amountMinor":99999999999999999999"#)) == "$.amountMinor: integer out of range")
    }

    @Test func errorsNeverEchoTheValue() {
        let secretish = Self.valid.replacingOccurrences(of: #""borrowerRef":"B-1""#, with: #""borrowerRef":"张三 110101199003077777""#)
        let e = error(secretish) ?? ""
        #expect(e.hasPrefix("$.borrowerRef"))
        #expect(!e.contains("110101199003077777"))
    }
}

@Suite struct JSONParserTests {
    @Test func strictnessAndLimits() {
        func fails(_ s: String, _ limits: JSONParser.Limits = .init()) -> Bool {
            (try? JSONParser.parse(s, limits: limits)) == nil
        }
        #expect(fails(#"{"a":1,"a":2}"#), "duplicate names are ambiguous")
        #expect(fails("[1,]"))
        #expect(fails("01"))
        #expect(fails("\"\u{01}\""))
        #expect(fails(#""\ud800""#))
        #expect(fails("[1] x"))
        var shallow = JSONParser.Limits()
        shallow.depthMax = 3
        #expect(fails("[[[[[1]]]]]", shallow))
        #expect(fails(String(repeating: "[", count: 100_000)), "deep nesting is refused, not a stack overflow")
        var small = JSONParser.Limits()
        small.bytesMax = 10
        #expect(fails(#"{"abcdefgh":1}"#, small))
    }

    @Test func numbersStayExactAndStringsDecode() throws {
        let v = try JSONParser.parse(#"{"n":9007199254740993,"s":"a\u00e9\n\ud83d\ude00","t":[true,false,null]}"#)
        #expect(v["n"] == .number("9007199254740993"))
        #expect(v["s"] == .string("aé\n😀"))
        #expect(JSONWriter.string(v) == #"{"n":9007199254740993,"s":"aé\n😀","t":[true,false,null]}"#)
    }
}
