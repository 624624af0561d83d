import Foundation
import LendingCore
@testable import Storage

/// Builds stores for the tests: a fresh database file per store, a small funder set and rules.
enum StoreFixture {
    static let pool = "P1"
    static let bankA = "BA"
    static let bankB = "BB"
    /// Approval time of every fixture loan; deadlines are two hours later.
    static let approvedAt: Int64 = 1_763_700_000
    static let now: Int64 = approvedAt + 60
    static let poolCapitalMinor: Int64 = 1_000_000_000

    static var funders: [String: Funder] {
        [
            pool: Funder(id: pool, kind: .pool, name: "Platform pool"),
            bankA: Funder(id: bankA, kind: .partner, name: "Bank A", limits: FunderLimits(dailyQuotaMinor: 50_000_000_000, exposureLimitMinor: 100_000_000_000)),
            bankB: Funder(id: bankB, kind: .partner, name: "Bank B", limits: FunderLimits(dailyQuotaMinor: 50_000_000_000)),
        ]
    }

    /// Pool 30% / bank A 70%; bank B takes what bank A declines when `fallbacks` says so.
    static func router(fallbacks: [String] = [bankB]) -> Router {
        let rule = RatioRule(id: "joint", mode: .coFunding([Share(pool, 3_000), Share(bankA, 7_000)]), fallbacks: fallbacks)
        return Router(ruleSet: RuleSet(version: 1, rules: [], defaultRule: rule), funders: funders, jurisdiction: .cn)
    }

    static func temporaryPath() -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jointlend-storage-tests", isDirectory: true)
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("\(UUID().uuidString).sqlite").path
    }

    static func configuration(path: String = temporaryPath(), fallbacks: [String] = [bankB]) -> StoreConfiguration {
        StoreConfiguration(path: path, router: router(fallbacks: fallbacks))
    }

    /// DOMAIN.md's worked example: pool 30% / bank B 70%, bank B on fixedYield(800).
    static func fixedYieldConfiguration() -> StoreConfiguration {
        var all = funders
        all[bankB]?.revenueTerms = .fixedYield(yieldBps: 800)
        let rule = RatioRule(id: "joint-b", mode: .coFunding([Share(pool, 3_000), Share(bankB, 7_000)]))
        let router = Router(ruleSet: RuleSet(version: 1, rules: [], defaultRule: rule), funders: all, jurisdiction: .cn)
        return StoreConfiguration(path: temporaryPath(), router: router)
    }

    /// A SQLite store with the pool funded. The conformance suite sees only `any Store`.
    static func makeStore(_ configuration: StoreConfiguration = configuration()) async throws -> any Store {
        let store = try SQLiteStore(configuration: configuration)
        try await store.depositToPool(funderId: pool, amountMinor: poolCapitalMinor, reference: "seed", now: now)
        return store
    }

    static func loan(_ id: String, amountMinor: Int64 = 1_000_000, borrower: String = "b-1") -> Loan {
        Loan(loanId: id, borrowerRef: borrower, amountMinor: amountMinor, currency: .cny, termMonths: 12, annualRateBps: 1_800,
             product: "consumer", riskGrade: "B", region: "GD", channel: "app", approvedAt: approvedAt)
    }
}

extension IntakeResult {
    /// The tranches of a planned intake (empty when rejected).
    var tranches: [TrancheRecord] {
        if case .planned(_, _, let tranches) = self { return tranches }
        return []
    }
}
