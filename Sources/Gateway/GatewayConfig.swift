import Foundation
import LendingCore

/// Everything the gateway runs with, loaded from `Config/gateway.json` and validated as a whole.
/// A configuration with any problem never starts anything: `load` throws every problem at once.
public struct GatewayConfig: Sendable {
    public var jurisdiction: JurisdictionProfile
    public var currency: Currency
    /// A loan must reach a final funding state this long after approval (default 2 hours).
    public var fundingDeadlineSeconds: Int64
    /// Partners' business day for daily quotas: UTC offset (Asia/Shanghai: +28800, no DST).
    public var businessDayUtcOffsetSeconds: Int64
    /// Funders in configuration order.
    public var funders: [Funder]
    /// Pools' opening balances.
    public var poolBalancesMinor: [String: Int64]
    public var ruleSet: RuleSet
    /// How the gateway runs: listener, limits, the platform's key, where contracts and data live.
    public var runtime = RuntimeSettings()
    /// The folder holding the configuration file: relative paths in it resolve against this.
    public var baseDirectory = "."

    public var fundersById: [String: Funder] { Dictionary(uniqueKeysWithValues: funders.map { ($0.id, $0) }) }

    public func makeRouter() -> Router {
        Router(ruleSet: ruleSet, funders: fundersById, jurisdiction: jurisdiction, fundingDeadlineSeconds: fundingDeadlineSeconds)
    }

    /// Capacities as configured, before anything was funded: pools at their opening balance,
    /// partners with nothing used.
    public func openingCapacities() -> CapacitySnapshot {
        var caps: [String: FunderCapacity] = [:]
        for f in funders { caps[f.id] = FunderCapacity(availableMinor: poolBalancesMinor[f.id] ?? 0) }
        return CapacitySnapshot(funders: caps)
    }

    /// Named bounds on the configuration itself.
    public enum Limits {
        public static let fileBytesMax = 4 << 20
        public static let fundersMax = 256
    }

    // MARK: - Loading

    /// Loads and validates `path`. Throws `ConfigError` listing every problem with its JSON path.
    public static func load(path: String) throws(ConfigError) -> GatewayConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, problems: [DecodingProblem(path: "$", message: "cannot read the file")])
        }
        guard data.count <= Limits.fileBytesMax else {
            throw ConfigError(file: path, problems: [DecodingProblem(path: "$", message: "file larger than \(Limits.fileBytesMax) bytes")])
        }
        var config = try decode(Array(data), file: path)
        config.baseDirectory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        return config
    }

    /// `path` relative to the configuration file's folder, with `.` and `name/..` steps removed
    /// so what the gateway prints is the path a reader would type (`Config/../data` → `data`).
    public func resolve(_ path: String) -> String { Self.lexicallyNormal(path.hasPrefix("/") ? path : "\(baseDirectory)/\(path)") }

    static func lexicallyNormal(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." {
                parts.removeLast()
            } else if part == "..", absolute, parts.isEmpty {
                continue  // "/.." is "/"
            } else {
                parts.append(part)
            }
        }
        let joined = parts.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    public static func decode(_ bytes: [UInt8], file: String) throws(ConfigError) -> GatewayConfig {
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            throw ConfigError(file: file, problems: [DecodingProblem(path: "$", message: error.description)])
        }
        let log = ProblemLog()
        let config = decode(json, log: log)
        if let config, log.problems.isEmpty { return config }
        throw ConfigError(file: file, problems: log.problems)
    }

    static func decode(_ json: JSONValue, log: ProblemLog) -> GatewayConfig? {
        guard let root = ObjectReader(json, path: "$", log: log) else { return nil }
        root.rejectUnknown(["jurisdiction", "currency", "fundingDeadlineSeconds", "businessDayUtcOffsetSeconds", "funders", "ruleSet",
                            "server", "platform", "contractsDir", "dataDir", "rateLimits", "store", "outbox"])
        var jurisdiction = JurisdictionProfile.none
        if let code = root.string("jurisdiction") {
            if let j = JurisdictionProfile.named(code) { jurisdiction = j } else { log.add("$.jurisdiction", "unknown jurisdiction; expected CN, IN or NONE") }
        }
        var currency = Currency.cny
        if let code = root.string("currency") {
            if let c = Currency(code: code) { currency = c } else {
                log.add("$.currency", "unsupported currency; expected one of \(Currency.supported.keys.sorted().joined(separator: ", "))")
            }
        }
        let deadline = root.int64("fundingDeadlineSeconds", required: false, in: 60...86_400 * 30) ?? 7_200
        if let commitMax = jurisdiction.partnerCommitmentSecondsMax, deadline > commitMax {
            log.add("$.fundingDeadlineSeconds", "\(jurisdiction.code) allows a partner at most \(commitMax) s to commit its tranche; the deadline must not exceed it")
        }
        let offset = root.int64("businessDayUtcOffsetSeconds", required: false, in: -50_400...50_400) ?? 28_800

        var funders: [Funder] = []
        var balances: [String: Int64] = [:]
        var seen = Set<String>()
        for (path, value) in root.array("funders", countMax: Limits.fundersMax) ?? [] {
            guard let (funder, balance) = decodeFunder(value, path: path, currency: currency, jurisdiction: jurisdiction, log: log) else { continue }
            if !seen.insert(funder.id).inserted { log.add("\(path).id", "duplicate funder id '\(funder.id)'") }
            funders.append(funder)
            if let balance { balances[funder.id] = balance }
        }
        if funders.isEmpty { log.add("$.funders", "at least one funder is required") }
        let byId = Dictionary(funders.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var ruleSet = RuleSet(version: 1, rules: [], defaultRule: nil)
        if let rs = root.object("ruleSet") {
            ruleSet = decodeRuleSet(rs)
            for p in ruleSet.validationProblems(funders: byId) { log.add("$.ruleSet.\(p.path)", p.message) }
        }
        let runtime = RuntimeSettings.decode(root)
        return GatewayConfig(jurisdiction: jurisdiction, currency: currency, fundingDeadlineSeconds: deadline,
                             businessDayUtcOffsetSeconds: offset, funders: funders, poolBalancesMinor: balances, ruleSet: ruleSet,
                             runtime: runtime)
    }

    static func isIdentifier(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64 && s.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F
        }
    }

    static func decodeFunder(_ value: JSONValue, path: String, currency: Currency, jurisdiction: JurisdictionProfile, log: ProblemLog) -> (Funder, Int64?)? {
        guard let o = ObjectReader(value, path: path, log: log) else { return nil }
        o.rejectUnknown(["id", "kind", "name", "licenceNumber", "initialBalanceMinor", "limits", "accepts", "revenue", "risk"])
        let id = o.string("id", bytesMax: 64)
        if let id, !isIdentifier(id) { log.add(o.child("id"), "must be 1-64 characters of A-Z a-z 0-9 - _") }
        let kindText = o.string("kind")
        let kind = kindText.flatMap(FunderKind.init(rawValue:))
        if kindText != nil, kind == nil { log.add(o.child("kind"), "expected \"pool\" or \"partner\"") }
        let name = o.string("name", bytesMax: 128)
        let licence = o.string("licenceNumber", required: kind == .partner, bytesMax: 64)
        var balance: Int64?
        if kind == .pool {
            balance = o.int64("initialBalanceMinor", in: 0...Int64.max / 4)
        } else if o.raw("initialBalanceMinor") != nil {
            log.add(o.child("initialBalanceMinor"), "only pools have a balance")
        }
        var limits = FunderLimits()
        if let l = o.object("limits", required: false) {
            l.rejectUnknown(["perLoanMinMinor", "perLoanMaxMinor", "dailyQuotaMinor", "exposureLimitMinor"])
            let positive: ClosedRange<Int64> = 0...Int64.max / 4
            limits = FunderLimits(perLoanMinMinor: l.int64("perLoanMinMinor", required: false, in: positive),
                                  perLoanMaxMinor: l.int64("perLoanMaxMinor", required: false, in: positive),
                                  dailyQuotaMinor: l.int64("dailyQuotaMinor", required: false, in: positive),
                                  exposureLimitMinor: l.int64("exposureLimitMinor", required: false, in: positive))
            if let lo = limits.perLoanMinMinor, let hi = limits.perLoanMaxMinor, lo > hi {
                log.add(l.child("perLoanMinMinor"), "greater than perLoanMaxMinor")
            }
        }
        var eligibility = Eligibility()
        if let a = o.object("accepts", required: false) {
            a.rejectUnknown(["riskGrades", "regions", "products"])
            eligibility = Eligibility(riskGrades: a.stringSet("riskGrades"), regions: a.stringSet("regions"), products: a.stringSet("products"))
        }
        var revenue = RevenueTerms.proRata
        if let r = o.object("revenue", required: false) {
            r.rejectUnknown(["type", "yieldBps"])
            switch r.string("type") {
            case "proRata": revenue = .proRata
            case "fixedYield": revenue = .fixedYield(yieldBps: r.int("yieldBps", in: 0...100_000) ?? 0)
            case nil: break
            default: log.add(r.child("type"), "expected \"proRata\" or \"fixedYield\"")
            }
        }
        var risk = RiskTerms(lossShareBps: 10_000, guaranteeCapBps: min(500, jurisdiction.guaranteeCapBpsMax))
        if let r = o.object("risk", required: false) {
            r.rejectUnknown(["lossShareBps", "guaranteeCapBps"])
            risk = RiskTerms(lossShareBps: r.int("lossShareBps", required: false, in: 0...10_000) ?? 10_000,
                             guaranteeCapBps: r.int("guaranteeCapBps", required: false, in: 0...10_000) ?? min(500, jurisdiction.guaranteeCapBpsMax))
            if risk.guaranteeCapBps > jurisdiction.guaranteeCapBpsMax {
                log.add(r.child("guaranteeCapBps"), "exceeds the \(jurisdiction.code) maximum of \(jurisdiction.guaranteeCapBpsMax) bps")
            }
        }
        guard let id, let kind, let name else { return nil }
        return (Funder(id: id, kind: kind, name: name, licenceNumber: licence, currency: currency, limits: limits,
                       eligibility: eligibility, revenueTerms: revenue, riskTerms: risk), balance)
    }

    static func decodeRuleSet(_ o: ObjectReader) -> RuleSet {
        o.rejectUnknown(["version", "rules", "defaultRule"])
        let version = o.int("version", in: 1...Int(Int32.max)) ?? 1
        var rules: [RatioRule] = []
        for (path, value) in o.array("rules", countMax: RuleSet.rulesMax) ?? [] {
            if let r = ObjectReader(value, path: path, log: o.log).flatMap(decodeRule) { rules.append(r) }
        }
        let d = o.object("defaultRule", required: false).flatMap(decodeRule)
        return RuleSet(version: version, rules: rules, defaultRule: d)
    }

    static func decodeShares(_ o: ObjectReader, _ key: String) -> [Share] {
        var shares: [Share] = []
        for (path, value) in o.array(key, countMax: RuleSet.sharesPerRuleMax) ?? [] {
            guard let s = ObjectReader(value, path: path, log: o.log) else { continue }
            s.rejectUnknown(["funderId", "bps"])
            if let id = s.string("funderId", bytesMax: 64), let bps = s.int("bps", in: 1...10_000) { shares.append(Share(id, bps)) }
        }
        return shares
    }

    static func decodeRule(_ o: ObjectReader) -> RatioRule? {
        o.rejectUnknown(["id", "match", "funding", "fallbacks"])
        let id = o.string("id", bytesMax: 64)
        var predicate = LoanPredicate.any
        if let m = o.object("match", required: false) {
            m.rejectUnknown(["products", "amountMinMinor", "amountMaxMinor", "termMonthsMin", "termMonthsMax", "riskGrades", "regions", "channels"])
            predicate = LoanPredicate(products: m.stringSet("products"), amountMinMinor: m.int64("amountMinMinor", required: false, in: 0...Int64.max),
                                      amountMaxMinor: m.int64("amountMaxMinor", required: false, in: 0...Int64.max),
                                      termMonthsMin: m.int("termMonthsMin", required: false, in: 0...1_000), termMonthsMax: m.int("termMonthsMax", required: false, in: 0...1_000),
                                      riskGrades: m.stringSet("riskGrades"), regions: m.stringSet("regions"), channels: m.stringSet("channels"))
        }
        var mode: FundingMode?
        if let f = o.object("funding") {
            switch f.string("mode") {
            case "coFunding":
                f.rejectUnknown(["mode", "shares"])
                mode = .coFunding(decodeShares(f, "shares"))
            case "allocation":
                f.rejectUnknown(["mode", "weights"])
                mode = .allocation(decodeShares(f, "weights"))
            case "mixed":
                f.rejectUnknown(["mode", "fixed", "weights"])
                mode = .mixed(fixed: decodeShares(f, "fixed"), allocated: decodeShares(f, "weights"))
            case nil: break
            default: f.log.add(f.child("mode"), "expected \"coFunding\", \"allocation\" or \"mixed\"")
            }
        }
        var fallbacks: [String] = []
        for (path, v) in o.array("fallbacks", required: false, countMax: RuleSet.sharesPerRuleMax) ?? [] {
            if case .string(let s) = v { fallbacks.append(s) } else { o.log.add(path, "expected a funder id string, found \(v.typeName)") }
        }
        guard let id, let mode else { return nil }
        return RatioRule(id: id, predicate: predicate, mode: mode, fallbacks: fallbacks)
    }
}

/// A configuration that must not start: the file and every problem in it.
public struct ConfigError: Error, CustomStringConvertible {
    public let file: String
    public let problems: [DecodingProblem]
    public var description: String {
        problems.map { "\(file): \($0.path): \($0.message)" }.joined(separator: "\n")
    }
}
