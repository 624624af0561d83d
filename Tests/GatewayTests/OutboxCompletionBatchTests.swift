import Foundation
import Testing
@testable import Gateway
import HTTP
import LendingCore
import Storage

/// The dispatcher writes the completions of delivered messages (those with no follow-up) as one
/// store command per poll, or as soon as `completionBatchMax` wait, instead of one each.
/// Platform messages about loans the store does not know stand in for delivered messages here:
/// with a webhook configured they are done without a request (there is nothing to tell).
@Suite struct OutboxCompletionBatchTests {
    static let now: Int64 = 1_763_700_000

    static func makeStore(path: String) throws -> SQLiteStore {
        let funders: [String: Funder] = ["P1": Funder(id: "P1", kind: .pool, name: "Pool")]
        let rule = RatioRule(id: "pool", mode: .coFunding([Share("P1", 10_000)]))
        let router = Router(ruleSet: RuleSet(version: 1, rules: [], defaultRule: rule), funders: funders, jurisdiction: .cn)
        return try SQLiteStore(configuration: StoreConfiguration(path: path, router: router))
    }

    static func temporaryPath() -> String {
        NSTemporaryDirectory() + "jl-outbox-batch-\(UUID().uuidString).sqlite"
    }

    /// Platform notifications about loans the store does not hold.
    static func enqueueNotifications(_ store: SQLiteStore, _ count: Int) async throws -> [Int64] {
        var ids: [Int64] = []
        for n in 0..<count {
            ids.append(try await store.enqueueOutbox(destination: "platform", payload: Array("{\"type\":\"loan.funded\",\"loanId\":\"L-\(n)\"}".utf8),
                                                     notBefore: now))
        }
        return ids
    }

    /// With `platformWebhookURL` nil, platform messages are dropped by the claim.
    static func makeDispatcher(_ store: SQLiteStore, completionBatchMax: Int,
                               platformWebhookURL: String? = "http://127.0.0.1:9/webhook") throws -> OutboxDispatcher {
        var configuration = OutboxDispatcher.Configuration()
        configuration.completionBatchMax = completionBatchMax
        configuration.jitterSeed = 1
        configuration.platformWebhookURL = platformWebhookURL
        return try OutboxDispatcher(configuration: configuration, store: store, contracts: [], platformKeyId: "k",
                                    platformSecret: Array(repeating: 7, count: 32), clock: { now },
                                    logger: HTTP.Logger(label: "test", logLevel: .critical))
    }

    static func waitUntil(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<2_000 {
            if condition() { return true }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        return condition()
    }

    static func states(_ store: SQLiteStore, _ ids: [Int64]) async throws -> [OutboxMessage.State?] {
        var out: [OutboxMessage.State?] = []
        for id in ids { out.append(try await store.outboxMessage(id: id)?.state) }
        return out
    }

    @Test func deliveredMessagesAreCompletedTogetherAtTheNextPoll() async throws {
        let store = try Self.makeStore(path: Self.temporaryPath())
        defer { store.close() }
        let ids = try await Self.enqueueNotifications(store, 40)
        let dispatcher = try Self.makeDispatcher(store, completionBatchMax: 1_000)
        #expect(await dispatcher.runOnce() == 40)
        #expect(await Self.waitUntil { dispatcher.completionsPending == 40 })
        // Delivered but not yet written: still open in the store, and still held in memory so
        // this process cannot claim and send them again.
        #expect(try await Self.states(store, ids).allSatisfy { $0 == .pending })
        #expect(dispatcher.messagesInFlight == 40)
        let commandsBefore = store.writerStatistics.commands
        #expect(await dispatcher.runOnce() == 0)
        #expect(store.writerStatistics.commands - commandsBefore == 1, "forty completions, one writer command")
        #expect(dispatcher.completionsPending == 0 && dispatcher.messagesInFlight == 0)
        for id in ids {
            let message = try #require(try await store.outboxMessage(id: id))
            #expect(message.state == .sent && message.attempts == 1, "message \(id)")
        }
    }

    @Test func aFullBatchIsWrittenWithoutWaitingForThePoll() async throws {
        let store = try Self.makeStore(path: Self.temporaryPath())
        defer { store.close() }
        let ids = try await Self.enqueueNotifications(store, 40)
        let dispatcher = try Self.makeDispatcher(store, completionBatchMax: 16)
        let commandsBefore = store.writerStatistics.commands
        #expect(await dispatcher.runOnce() == 40)
        // 40 = 16 + 16 written as they fill, 8 left for the next poll.
        #expect(await Self.waitUntil { dispatcher.completionsPending == 8 && dispatcher.messagesInFlight == 8 })
        #expect(try store.outboxCountsByState()[.sent] == 32)
        // Claim (1) + two full batches.
        #expect(store.writerStatistics.commands - commandsBefore == 3)
        await dispatcher.flushCompletions()
        #expect(try await Self.states(store, ids).allSatisfy { $0 == .sent })
        #expect(try store.outboxCountsByState()[.sent] == 40)
    }

    @Test func aBatchThatCannotBeWrittenLeavesItsMessagesOpenForRedelivery() async throws {
        let path = Self.temporaryPath()
        let store = try Self.makeStore(path: path)
        let ids = try await Self.enqueueNotifications(store, 10)
        let dispatcher = try Self.makeDispatcher(store, completionBatchMax: 1_000)
        #expect(await dispatcher.runOnce() == 10)
        #expect(await Self.waitUntil { dispatcher.completionsPending == 10 })
        store.close()
        await dispatcher.flushCompletions()
        // Nothing was written; memory lets go, so a later claim (after the lease) sends them again.
        #expect(dispatcher.completionsPending == 0 && dispatcher.messagesInFlight == 0)
        let reopened = try Self.makeStore(path: path)
        defer { reopened.close() }
        #expect(try await Self.states(reopened, ids).allSatisfy { $0 == .pending })
        let lease = OutboxPolicy().claimLeaseSeconds
        #expect(try await reopened.claimDueOutbox(now: Self.now + lease, limit: 100).map(\.id) == ids)
    }
}

/// With no platform webhook, platform messages are dropped by the claim itself (one write each,
/// no task, no decoding, no completion) and counted per type as a delivery would count them.
@Suite struct PlatformDropTests {
    @Test func theClaimSettlesPlatformMessagesInOneCommand() async throws {
        let store = try OutboxCompletionBatchTests.makeStore(path: OutboxCompletionBatchTests.temporaryPath())
        defer { store.close() }
        var ids = try await OutboxCompletionBatchTests.enqueueNotifications(store, 3)
        for n in 0..<2 {
            ids.append(try await store.enqueueOutbox(destination: "platform",
                                                     payload: Array("{\"type\":\"loan.unfunded\",\"loanId\":\"U-\(n)\",\"reason\":\"deadline_passed\"}".utf8),
                                                     notBefore: OutboxCompletionBatchTests.now))
        }
        // Not a message the store writes: with nowhere to send it, it is dropped too, as "unknown".
        let odd = try await store.enqueueOutbox(destination: "platform", payload: Array(#"{"loanId":"X"}"#.utf8), notBefore: OutboxCompletionBatchTests.now)
        // A partner message beside them is leased as usual (its partner is unknown here, so it
        // is not delivered; it is not marked sent).
        let partner = try await store.enqueueOutbox(destination: "partner:bank-z", payload: Array(#"{"type":"funding.request"}"#.utf8),
                                                    notBefore: OutboxCompletionBatchTests.now)
        let dispatcher = try OutboxCompletionBatchTests.makeDispatcher(store, completionBatchMax: 1_000, platformWebhookURL: nil)
        let commandsBefore = store.writerStatistics.commands
        #expect(await dispatcher.runOnce() == 7)
        // Sent by the claim, one attempt each; nothing held in memory, no completion to write.
        for id in ids + [odd] {
            let message = try #require(try await store.outboxMessage(id: id))
            #expect(message.state == .sent && message.attempts == 1, "message \(id)")
        }
        #expect(dispatcher.completionsPending == 0)
        #expect(store.writerStatistics.commands - commandsBefore == 1, "one claim, no completion command")
        let text = dispatcher.metrics.render()
        for (type, count) in [("loan.funded", 3), ("loan.unfunded", 2), ("unknown", 1)] {
            for result in ["dropped", "done"] {
                let line = "jointlend_outbox_deliveries_total{destination=\"platform\",type=\"\(type)\",result=\"\(result)\"} \(count)"
                #expect(text.contains(line), "missing: \(line)")
            }
        }
        #expect(try await store.outboxMessage(id: partner)?.state != .sent)
        // A later claim returns none of the settled messages.
        let later = try await store.claimDueOutbox(now: OutboxCompletionBatchTests.now + 10_000, limit: 100)
        #expect(Set(later.map(\.id)).isDisjoint(with: ids + [odd]))
    }

    @Test func onlyTheStoresPlatformTypesAreCountedByName() {
        #expect(OutboxDispatcher.platformMessageType(Array(#"{"type":"loan.funded","loanId":"L-1"}"#.utf8)) == "loan.funded")
        #expect(OutboxDispatcher.platformMessageType(Array(#"{"type":"loan.unfunded","loanId":"L-1"}"#.utf8)) == "loan.unfunded")
        #expect(OutboxDispatcher.platformMessageType(Array(#"{"type":"funding.request"}"#.utf8)) == nil)
        #expect(OutboxDispatcher.platformMessageType(Array(#"{"type":"loan.funded"#.utf8)) == nil)
        #expect(OutboxDispatcher.platformMessageType(Array(#" {"type":"loan.funded"}"#.utf8)) == nil)
        #expect(OutboxDispatcher.platformMessageType([]) == nil)
    }
}
