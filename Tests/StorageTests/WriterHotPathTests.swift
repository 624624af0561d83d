import Foundation
import LendingCore
import PartnerSigning
import Synchronization
import Testing
@testable import Storage

/// The writer's hot-path machinery: statement reuse without clearing bindings, the static
/// statement cache, the probing tables behind balance deltas and account ids, the audit chain's
/// reusable hash input, and batched outbox completions.
@Suite struct WriterHotPathTests {
    typealias F = StoreFixture

    static func scratchDatabase(cachedStatementsMax: Int = 256) throws -> Database {
        var configuration = Database.Configuration()
        configuration.cachedStatementsMax = cachedStatementsMax
        let db = try Database(path: F.temporaryPath(), configuration: configuration)
        try db.execute("CREATE TABLE t(a, b, c)")
        return db
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    // MARK: Statement

    @Test func parameterNotBoundAgainAfterResetIsNull() throws {
        let db = try Self.scratchDatabase()
        defer { db.close() }
        let insert = try db.cachedStatement(static: "INSERT INTO t(a, b, c) VALUES (?, ?, ?)")
        insert.reset()
        insert.bind(Int64(1), at: 1)
        insert.bind("kept text", at: 2)
        insert.bind([1, 2, 3], at: 3)
        try insert.step()
        // Second use binds only the first parameter: the others must be NULL, not last row's values.
        insert.reset()
        insert.bind(Int64(2), at: 1)
        try insert.step()
        insert.reset([.integer(3)])
        try insert.step()
        let rows = try db.makeStatement("SELECT a, b IS NULL, c IS NULL FROM t ORDER BY a").fetchAll { ($0.int64(0), $0.int64(1), $0.int64(2)) }
        #expect(rows.map(\.0) == [1, 2, 3])
        #expect(rows.map(\.1) == [0, 1, 1])
        #expect(rows.map(\.2) == [0, 1, 1])
    }

    @Test func textBindsByLengthKeepingEmptyAndEmbeddedNulAndNonASCII() throws {
        let db = try Self.scratchDatabase()
        defer { db.close() }
        let insert = try db.cachedStatement(static: "INSERT INTO t(a, b) VALUES (?, ?)")
        let texts = ["", "a\u{0}b", "借款人-Ω-🚀", String(repeating: "long text ", count: 40)]
        for (index, text) in texts.enumerated() {
            insert.reset()
            insert.bind(Int64(index), at: 1)
            insert.bind(text, at: 2)
            try insert.step()
        }
        let read = try db.makeStatement("SELECT b, typeof(b), length(CAST(b AS BLOB)) FROM t ORDER BY a").fetchAll { ($0.text(0), $0.text(1), $0.int(2)) }
        #expect(read.map(\.0) == texts)
        #expect(read.allSatisfy { $0.1 == "text" }, "an empty text must not bind as NULL")
        #expect(read.map(\.2) == texts.map(\.utf8.count))
    }

    static func readBack(_ db: Database) throws -> [DatabaseValue] {
        try db.makeStatement("SELECT b, typeof(b) FROM t ORDER BY a").fetchAll { s -> DatabaseValue in
            switch s.text(1) {
            case "null": .null
            case "integer": .integer(s.int64(0))
            case "text": .text(s.text(0))
            default: .blob(s.blob(0))
            }
        }
    }

    @Test func boundCopiesAreReusedAcrossSizesKindsAndLargeValues() throws {
        let db = try Self.scratchDatabase()
        defer { db.close() }
        let insert = try db.cachedStatement(static: "INSERT INTO t(a, b) VALUES (?, ?)")
        let values: [DatabaseValue] = [
            .text(String(repeating: "x", count: 10)), .blob((0..<200).map { UInt8($0) }), .text(""),
            .text(String(repeating: "long", count: 500)), .blob([9, 8, 7, 6, 5]), .text(String(repeating: "m", count: 100)),
            .null, .blob([]), .text("short again"), .blob(Array(repeating: 0xEE, count: 4_000)), .integer(-1), .text("後"),
        ]
        for (index, value) in values.enumerated() {
            insert.reset([.integer(Int64(index)), value])
            try insert.step()
        }
        #expect(try Self.readBack(db) == values)
    }

    @Test func aBindRefusedOnARunningStatementLeavesItsCurrentValueIntact() throws {
        let db = try Self.scratchDatabase()
        defer { db.close() }
        let echo = try db.cachedStatement(static: "SELECT ?1 UNION ALL SELECT ?1")
        echo.reset()
        echo.bind("first value", at: 1)
        #expect(try echo.step())
        // Not reset: SQLite refuses the bind; the row still in progress must not change under it.
        echo.bind("other value", at: 1)
        #expect(echo.text(0) == "first value")
        #expect(try echo.step())
        #expect(echo.text(0) == "first value")
        echo.reset()
        echo.bind("other value", at: 1)
        #expect(try echo.fetchCurrent { $0.text(0) } == "other value")
    }

    @Test func staticStatementCacheRefillsPastItsBound() throws {
        let db = try Self.scratchDatabase(cachedStatementsMax: 2)
        defer { db.close() }
        for round in 0..<3 {
            // Three literals through a cache of two: every lookup still runs its own SQL.
            let one = try db.cachedStatement(static: "SELECT 1")
            let two = try db.cachedStatement(static: "SELECT 2")
            let three = try db.cachedStatement(static: "SELECT 3")
            #expect(try three.fetchOne { $0.int64(0) } == 3, "round \(round)")
            #expect(try db.cachedStatement(static: "SELECT 1").fetchOne { $0.int64(0) } == 1)
            #expect(try db.cachedStatement(static: "SELECT 2").fetchOne { $0.int64(0) } == 2)
            _ = (one, two)
        }
        // The same literal twice is one prepared statement.
        #expect(try db.cachedStatement(static: "SELECT 3") === db.cachedStatement(static: "SELECT 3"))
    }

    // MARK: ProbingTable

    @Test(arguments: [UInt64(0xC0FFEE), 7, 1_234_567])
    func probingTableAgreesWithDictionary(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var table = ProbingTable<Int64, Int64>(minimumCapacity: 2)
        var reference: [Int64: Int64] = [:]
        for step in 0..<20_000 {
            // Keys from a small range so hits, misses and collisions all happen; clustered ids too.
            let key = Int64(random.next() % 600) * (step % 3 == 0 ? 1 : 4_096)
            let hash = ProbingTable<Int64, Int64>.hash(UInt64(bitPattern: key))
            if random.next() % 500 == 0 {
                table.removeAll()
                reference.removeAll()
                continue
            }
            let amount = Int64(random.next() % 1_000) - 500
            if let index = table.index(of: key, hash: hash) {
                table.setValue(table.entries[index].value + amount, at: index)
            } else {
                table.append(key, amount, hash: hash)
            }
            reference[key, default: 0] += amount
            let probe = Int64(random.next() % 600)
            let probeHash = ProbingTable<Int64, Int64>.hash(UInt64(bitPattern: probe))
            guard table.value(for: probe, hash: probeHash) == reference[probe], table.count == reference.count else {
                Issue.record("probing table diverged from Dictionary at step \(step) (seed \(seed))")
                return
            }
        }
        let entries = Dictionary(uniqueKeysWithValues: table.entries.map { ($0.key, $0.value) })
        #expect(entries == reference, "seed \(seed)")
    }

    @Test func roleKeysOfDifferentFundersAndRolesDoNotCollide() {
        var table = ProbingTable<Ledger.RoleKey, LedgerAccountRef>()
        let funders = (0..<300).map { "F\($0)" } + ["", "a", "ab", "b", "ba", "pool-main", "pool-main2"]
        let roles: [Ledger.Role] = [.poolReserved, .poolDeployed, .partnerCapital, .partnerDeployed]
        var id: Int64 = 0
        for funder in funders {
            for role in roles {
                id += 1
                let key = Ledger.RoleKey(funderId: funder, role: role)
                table.append(key, LedgerAccountRef(id: id, currency: "CNY"), hash: key.hash)
            }
        }
        id = 0
        for funder in funders {
            for role in roles {
                id += 1
                let key = Ledger.RoleKey(funderId: funder, role: role)
                #expect(table.value(for: key, hash: key.hash)?.id == id, "\(funder) \(role)")
            }
        }
        #expect(table.value(for: Ledger.RoleKey(funderId: "F300", role: .poolReserved), hash: Ledger.RoleKey(funderId: "F300", role: .poolReserved).hash) == nil)
    }

    // MARK: Audit chain format

    /// Pinned vectors (computed apart from this code, with Python's hashlib, over the documented
    /// layout): a change of the chain's byte format would stop existing databases verifying.
    @Test func chainHashFormatIsUnchanged() {
        let first = AuditLog.chainHash(previous: Array(0..<32), sequence: 42, at: 1_763_700_060, actor: "partner:BA", action: "tranche.funded",
                                       payload: Array("tranche=7 loan=L-1 serial=S-1".utf8))
        #expect(Self.hex(first) == "8accf9e2dd8a71c44cd24347b14d3a4360db628c92bf8e0818fae1f979a9ab71")
        var reused: [UInt8] = Array(repeating: 0xAA, count: 500)
        let second = AuditLog.chainHash(previous: [UInt8](repeating: 0, count: 32), sequence: 1, at: -5, actor: "a", action: "b", payload: [], input: &reused)
        #expect(Self.hex(second) == "7a71647da3abb05627ccd05dc0c405d87fde763c24f7a03cfedb1501cd17f5b5")
        // The reused buffer held longer input before: it must not leak into the next hash.
        let again = AuditLog.chainHash(previous: Array(0..<32), sequence: 42, at: 1_763_700_060, actor: "partner:BA", action: "tranche.funded",
                                       payload: Array("tranche=7 loan=L-1 serial=S-1".utf8), input: &reused)
        #expect(again == first)
    }

    @Test func auditEntriesWrittenByTheWriterVerifyAndATamperedOneIsFound() async throws {
        let path = F.temporaryPath()
        let store = try SQLiteStore(configuration: F.configuration(path: path))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<200 {
                group.addTask {
                    try await store.appendAudit(actor: "actor-\(n % 7)", action: n % 2 == 0 ? "x" : "a.longer.action", payload: Array(repeating: UInt8(n % 251), count: n * 13), now: F.now + Int64(n))
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.verifyAudit() == nil)
        store.close()
        let raw = try Database(path: path)
        defer { raw.close() }
        try raw.execute("UPDATE audit_log SET payload = X'00' WHERE seq = 100")
        #expect(try AuditLog.verify(raw)?.contains("audit entry 100") == true)
    }

    // MARK: Balances over many accounts in one batch

    @Test func balancesOfManyAccountsInOneBatchMatchTheirPostings() async throws {
        let store = try SQLiteStore(configuration: F.configuration())
        defer { store.close() }
        // More distinct accounts than the delta table starts with, so it grows mid-batch; one
        // command in each ten fails after validation, so its deltas must be undone.
        let accounts = (0..<150).map { "acct:\($0)" }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<600 {
                group.addTask {
                    let from = accounts[n % accounts.count]
                    let to = accounts[(n * 7 + 3) % accounts.count]
                    guard from != to else { return }
                    if n % 10 == 0 {
                        _ = try? await store.write { context in
                            try Ledger.post(context, .transfer(kind: "t", reference: "r\(n)", at: F.now, from: from, to: to, currency: "CNY", amountMinor: Int64(n + 1)))
                            throw StoreError.invalidCommand(field: "test", reason: "fails after posting")
                        }
                    } else {
                        _ = try await store.post(.transfer(kind: "t", reference: "r\(n)", at: F.now, from: from, to: to, currency: "CNY", amountMinor: Int64(n + 1)))
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.verifyLedger() == nil)
        var expected: [String: Int64] = [:]
        for n in 0..<600 where n % 10 != 0 {
            let from = accounts[n % accounts.count]
            let to = accounts[(n * 7 + 3) % accounts.count]
            guard from != to else { continue }
            expected[to, default: 0] += Int64(n + 1)
            expected[from, default: 0] -= Int64(n + 1)
        }
        for account in accounts {
            #expect(try await store.balance(account: account) == expected[account, default: 0], "\(account)")
        }
    }

    // MARK: Jobs run twice

    /// A command failing after it wrote makes the writer run its batch again with savepoints;
    /// the commands before it then run twice, and each caller must get its last run's answer.
    @Test func aBatchRunAgainAnswersEachCallerFromItsLastRun() async throws {
        let store = try SQLiteStore(configuration: F.configuration())
        defer { store.close() }
        try await store.write { try $0.db.execute("CREATE TABLE scratch(id INTEGER PRIMARY KEY, label TEXT NOT NULL)") }
        let runs = RunCounts()
        let redoneBefore = store.writerRedoneBatchesCount
        let answers = try await withThrowingTaskGroup(of: (n: Int, answer: (row: Int64, run: Int)?).self) { group in
            for n in 0..<64 {
                group.addTask {
                    do {
                        let answer = try await store.write { context -> (row: Int64, run: Int) in
                            let run = runs.counted(n)
                            try context.db.execute("INSERT INTO scratch(label) VALUES (?)", [.text("job-\(n)")])
                            if n % 16 == 5 { throw StoreError.invalidCommand(field: "test", reason: "fails after writing") }
                            return (context.db.lastInsertedRowID, run)
                        }
                        return (n, answer)
                    } catch {
                        return (n, nil)
                    }
                }
            }
            var all: [(n: Int, answer: (row: Int64, run: Int)?)] = []
            for try await answer in group { all.append(answer) }
            return all
        }
        #expect(store.writerRedoneBatchesCount > redoneBefore, "the test needs a batch run again")
        let runCounts = runs.snapshot
        #expect(runCounts.values.contains { $0 > 1 }, "some command must have run twice")
        let stored = try store.read { db in
            try db.makeStatement("SELECT id, label FROM scratch").fetchAll { ($0.int64(0), $0.text(1)) }
        }
        let labelById = Dictionary(uniqueKeysWithValues: stored)
        for (n, answer) in answers {
            if let answer {
                #expect(answer.run == runCounts[n], "job \(n) was answered from run \(answer.run) of \(runCounts[n] ?? 0)")
                #expect(labelById[answer.row] == "job-\(n)", "job \(n) was answered row \(answer.row)")
            } else {
                #expect(!labelById.values.contains("job-\(n)"), "job \(n) failed but left its row")
            }
        }
        #expect(stored.count == answers.filter { $0.answer != nil }.count)
    }

    // MARK: Batched outbox completions

    static func enqueue(_ store: SQLiteStore, _ count: Int) async throws -> [Int64] {
        var ids: [Int64] = []
        for n in 0..<count {
            ids.append(try await store.enqueueOutbox(destination: "platform", payload: Array("{\"n\":\(n)}".utf8), notBefore: F.now))
        }
        return ids
    }

    @Test func batchedCompletionMarksEveryOpenMessageSentOnceInOneCommand() async throws {
        let store = try SQLiteStore(configuration: F.configuration())
        defer { store.close() }
        let ids = try await Self.enqueue(store, 50)
        let claimed = try await store.claimDueOutbox(now: F.now, limit: 50)
        #expect(claimed.count == 50)
        let commandsBefore = store.writerStatistics.commands
        let completed = try await store.completeOutbox(ids: ids)
        #expect(store.writerStatistics.commands - commandsBefore == 1)
        #expect(completed == ids)
        for id in ids {
            let message = try #require(try await store.outboxMessage(id: id))
            #expect(message.state == .sent && message.attempts == 1, "message \(id)")
        }
        // Again: nothing is completed twice, attempts stay at one.
        #expect(try await store.completeOutbox(ids: ids).isEmpty)
        #expect(try await store.outboxMessage(id: ids[0])?.attempts == 1)
        #expect(try store.outboxCountsByState()[.sent] == 50)
    }

    @Test func finalUnknownAndRepeatedIdsDoNotStopTheOthers() async throws {
        let store = try SQLiteStore(configuration: F.configuration())
        defer { store.close() }
        let ids = try await Self.enqueue(store, 5)
        try await store.completeOutbox(id: ids[1])
        #expect(try await store.retryOutbox(id: ids[2], nextAttemptAt: F.now, attemptsMax: 0) == .dead)
        #expect(try await store.retryOutbox(id: ids[3], nextAttemptAt: F.now, attemptsMax: 10) == .failed)
        let completed = try await store.completeOutbox(ids: [ids[0], 999_999, ids[1], ids[2], ids[3], ids[0], ids[4]])
        #expect(completed == [ids[0], ids[3], ids[4]])
        let states = try await ids.asyncMap { try await store.outboxMessage(id: $0)?.state }
        #expect(states == [.sent, .sent, .dead, .sent, .sent])
        #expect(try await store.outboxMessage(id: ids[1])?.attempts == 1, "already sent: not counted again")
        #expect(try await store.outboxMessage(id: ids[3])?.attempts == 2, "a failed message completes with its retry counted")
    }

    @Test func tooManyIdsInOneCompletionAreRefusedAndChangeNothing() async throws {
        let store = try SQLiteStore(configuration: F.configuration())
        defer { store.close() }
        let ids = try await Self.enqueue(store, 1)
        let oversized = ids + (1...Int64(SQLiteStore.outboxCompletionsPerCommandMax)).map { $0 + 1_000_000 }
        await #expect(throws: StoreError.invalidCommand(field: "outbox.ids", reason: "must hold at most \(SQLiteStore.outboxCompletionsPerCommandMax) ids")) {
            _ = try await store.completeOutbox(ids: oversized)
        }
        #expect(try await store.outboxMessage(id: ids[0])?.state == .pending)
        #expect(try await store.completeOutbox(ids: []).isEmpty)
    }
}

/// How many times each job ran, across threads.
private final class RunCounts: Sendable {
    private let counts = Mutex<[Int: Int]>([:])

    /// Counts one more run of `job`; returns its run number.
    func counted(_ job: Int) -> Int {
        counts.withLock { counts in
            counts[job, default: 0] += 1
            return counts[job, default: 0]
        }
    }

    var snapshot: [Int: Int] { counts.withLock { $0 } }
}

private extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
