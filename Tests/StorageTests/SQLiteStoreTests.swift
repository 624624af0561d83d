import Foundation
import LendingCore
import Testing
@testable import Storage
import CSQLiteVFS

/// Behaviour specific to the SQLite backend: migrations, the writer's queue and savepoints,
/// tamper detection on the raw file, and errors that never carry bound values.
@Suite struct SQLiteStoreTests {
    typealias F = StoreFixture

    /// The WAL file kept after a restart is larger than the WAL ever grows before the writer
    /// restarts it, so under steady load commits overwrite it in place instead of extending it
    /// (an extension is a block allocation and a size change that each fdatasync must journal).
    @Test func walFileKeptAfterARestartHoldsAWholeWAL() throws {
        let kept = Database.Configuration().walBytesKeptMax
        let framesMax = StoreConfiguration.walPagesMax + 1_024  // the limit plus one large commit
        #expect(kept >= framesMax * (4_096 + 24) + 32)
        let db = try Database(path: F.temporaryPath())
        defer { db.close() }
        #expect(try db.fetchInt64("PRAGMA journal_size_limit") == Int64(kept))
        #expect(try db.fetchInt64("PRAGMA page_size") == 4_096)
    }

    /// On a real WAL, the checkpointer's thread follows its cadence rule (exact below): once a
    /// pass finds a WAL past its catch-up length that grew, the next pass comes after the
    /// catch-up interval, not the interval; a WAL that stopped growing, or one short of the
    /// catch-up length, waits the interval.
    ///
    /// Only what no load can upset is asserted. The rule drops back to the interval whenever a
    /// catch-up pass finds no new commit, and on a loaded host the writing thread can pause
    /// longer than 2 ms (a CI run once saw 3 passes where a count of catch-up passes over 1 s
    /// expected 20). But a pass that saw the WAL grow is always followed by one 2 ms later, so
    /// in the 300 ms after the first pass there is at least one more, while the 1.5 s interval
    /// alone gives none.
    @Test func checkpointerCatchesUpOnlyWhileALongWALGrows() throws {
        func passes(catchUpFromFrames: Int64, idleAfter: Bool) throws -> (afterFirst: Int, idle: Int) {
            let path = F.temporaryPath()
            // No checkpoints of its own: one could restart the WAL just before the first pass,
            // which would then find it short.
            var configuration = Database.Configuration()
            configuration.walAutocheckpointPages = 0
            let db = try Database(path: path, configuration: configuration)
            defer { db.close() }
            try db.execute("CREATE TABLE t (b BLOB)")
            let checkpointer = try Checkpointer(path: path, intervalMilliseconds: 1_500, catchUpIntervalMilliseconds: 2,
                                                catchUpFromFrames: catchUpFromFrames, busyTimeoutMilliseconds: 2_000)
            defer { checkpointer.close() }
            let start = Date()
            var firstPassSeenAt: Date?
            // Write until 300 ms after the first pass is seen (bounded: 10 s). Counted from the
            // first pass itself, not from when this thread noticed it: a catch-up pass may come
            // and go before then. The interval's second pass is 1.5 s after the first.
            while Date().timeIntervalSince(firstPassSeenAt ?? .distantFuture) < 0.3 && Date().timeIntervalSince(start) < 10 {
                try db.execute("INSERT INTO t VALUES (randomblob(8000))")  // about 2 WAL frames
                if firstPassSeenAt == nil, checkpointer.passes > 0 { firstPassSeenAt = Date() }
                usleep(200)
            }
            #expect(firstPassSeenAt != nil, "the checkpointer never passed")
            let afterFirst = checkpointer.passes - 1
            guard idleAfter else { return (afterFirst, 0) }
            // The next catch-up pass finds no new commit and waits the interval: in the 0.8 s
            // from 0.4 s after the last write, none, while catching up would give hundreds. Up
            // to two are allowed: a pass is counted when it ends, and on a loaded host the one
            // copying the last writes can end late, and sleeps overrun into the interval's pass.
            Thread.sleep(forTimeInterval: 0.4)
            let settled = checkpointer.passes
            Thread.sleep(forTimeInterval: 0.8)
            return (afterFirst, checkpointer.passes - settled)
        }
        let growing = try passes(catchUpFromFrames: 8, idleAfter: true)
        #expect(growing.afterFirst >= 1, "catch-up passes in the 300 ms after the first: \(growing.afterFirst)")
        #expect(growing.idle <= 2, "passes once the WAL stopped growing: \(growing.idle)")
        let short = try passes(catchUpFromFrames: 1_000_000, idleAfter: false)
        #expect(short.afterFirst == 0, "passes in the 300 ms after the first while the WAL stays short: \(short.afterFirst)")
    }

    /// The checkpointer's cadence rule, exactly: a failed pass, a WAL short of the catch-up
    /// length, or one no longer than at the pass before waits the interval; a long WAL that
    /// changed (grew, or restarted) catches up.
    @Test func checkpointerCadenceRule() {
        func wait(_ frames: Int64?, last: Int64) -> Int {
            Checkpointer.nextWait(walFrames: frames, lastWALFrames: last, catchUpFromFrames: 8, interval: 50, catchUpInterval: 2)
        }
        #expect(wait(nil, last: 0) == 50)
        #expect(wait(7, last: 0) == 50)
        #expect(wait(8, last: 0) == 2)
        #expect(wait(1_000, last: 999) == 2)
        #expect(wait(1_000, last: 1_000) == 50)
        #expect(wait(9, last: 1_000) == 2)
    }

    @Test func databaseWrittenByNewerVersionIsRefused() throws {
        let path = F.temporaryPath()
        try SQLiteStore(configuration: F.configuration(path: path)).close()
        let raw = try Database(path: path)
        try raw.execute("INSERT INTO schema_migrations(id) VALUES ('v999-future')")
        raw.close()
        #expect(throws: DatabaseMigrator.MigrationError.unknownMigrations(["v999-future"])) {
            try SQLiteStore(configuration: F.configuration(path: path)).close()
        }
        #expect(throws: DatabaseMigrator.MigrationError.unknownMigrations(["v999-future"])) {
            _ = try StoreVerifier.verifyLedger(path: path)
        }
    }

    @Test func databaseFromFirstSchemaVersionIsUpgradedOnOpen() throws {
        let path = F.temporaryPath()
        let raw = try Database(path: path)
        var v1Only = DatabaseMigrator()
        let first = try #require(StoreSchema.migrator.migrations.first)
        v1Only.registerMigration(first.id) { try first.migrate($0) }
        try v1Only.migrate(raw)
        raw.close()
        try SQLiteStore(configuration: F.configuration(path: path)).close()
        let reopened = try Database(path: path)
        defer { reopened.close() }
        #expect(try StoreSchema.migrator.appliedIdentifiers(reopened) == StoreSchema.migrator.migrations.map(\.id))
        #expect(try reopened.fetchInt64("SELECT COUNT(*) FROM pragma_table_info('loan') WHERE name = 'principal_repaid_minor'") == 1)
    }

    @Test func confirmationIdempotencyRecordsMoveOntoTheirConfirmationsOnUpgrade() async throws {
        let path = F.temporaryPath()
        let raw = try Database(path: path)
        var v2Only = DatabaseMigrator()
        for migration in StoreSchema.migrator.migrations.prefix(2) { v2Only.registerMigration(migration.id) { try migration.migrate($0) } }
        try v2Only.migrate(raw)
        // A confirmation as the v2 code stored it: the row, and its idempotency record apart.
        let confirmation = FundingConfirmation(funderId: F.bankA, serial: "S-1", trancheId: 2, outcome: .funded)
        let answer = ConfirmationResult(trancheId: 2, trancheState: .funded, loanId: "L-1", loanState: .funded, replacement: nil, unfundedReason: nil)
        try raw.execute("PRAGMA foreign_keys=OFF")
        try raw.execute("INSERT INTO confirmation(funder_id, serial, tranche_id, outcome, at) VALUES ('BA', 'S-1', 2, 'funded', 1)", [])
        try raw.execute("INSERT INTO idempotency(scope, key, request_hash, response, created_at) VALUES ('confirmation', 'BA/S-1', X'01', ?, 1)",
                        [.blob(answer.encoded)])
        try raw.execute("INSERT INTO idempotency(scope, key, request_hash, response, created_at) VALUES ('loan.intake', 'L-1', X'00', X'00', 1)", [])
        raw.close()
        let store = try SQLiteStore(configuration: F.configuration(path: path))
        defer { store.close() }
        #expect(try await store.confirm(confirmation, now: F.now) == answer)
        await #expect(throws: StoreError.idempotencyConflict(scope: "confirmation", key: "BA/S-1")) {
            _ = try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "S-1", trancheId: 4, outcome: .funded), now: F.now)
        }
        let scopes = try store.read { try $0.cachedStatement("SELECT scope FROM idempotency").fetchAll { $0.text(0) } }
        #expect(scopes == ["loan.intake"])
    }

    @Test func migrationsRunOnceEachInOrderAndAreRecorded() throws {
        let db = try Database(path: F.temporaryPath())
        defer { db.close() }
        var migrator = DatabaseMigrator()
        migrator.registerMigration("a") { try $0.execute("CREATE TABLE t(x INTEGER)") }
        migrator.registerMigration("b") { try $0.execute("INSERT INTO t VALUES (1)") }
        try migrator.migrate(db)
        try migrator.migrate(db)
        #expect(try migrator.appliedIdentifiers(db) == ["a", "b"])
        #expect(try db.fetchInt64("SELECT COUNT(*) FROM t") == 1)
        // A failing migration leaves nothing behind: its own transaction rolls back.
        migrator.registerMigration("c") { db in
            try db.execute("INSERT INTO t VALUES (2)")
            try db.execute("INSERT INTO no_such_table VALUES (3)")
        }
        #expect(throws: DatabaseError.self) { try migrator.migrate(db) }
        #expect(try migrator.appliedIdentifiers(db) == ["a", "b"])
        #expect(try db.fetchInt64("SELECT COUNT(*) FROM t") == 1)
    }

    @Test func databaseErrorCarriesCodeAndSQLButNeverBoundValues() throws {
        let db = try Database(path: F.temporaryPath())
        defer { db.close() }
        try db.execute("CREATE TABLE person(ref TEXT PRIMARY KEY)")
        try db.execute("INSERT INTO person(ref) VALUES (?)", [.text("borrower-secret-42")])
        do {
            try db.execute("INSERT INTO person(ref) VALUES (?)", [.text("borrower-secret-42")])
            Issue.record("duplicate insert succeeded")
        } catch {
            #expect(error.isUniqueViolation)
            #expect(error.sql == "INSERT INTO person(ref) VALUES (?)")
            #expect(!error.description.contains("borrower-secret-42"))
            #expect(!StoreError.database(error).description.contains("borrower-secret-42"))
        }
    }

    @Test func fullQueueAnswersOverloadedWithRetryAfter() async throws {
        var configuration = F.configuration()
        configuration.queueCommandsMax = 4
        let store = try SQLiteStore(configuration: configuration)
        defer { store.close() }
        let gate = Gate()
        // The first job holds the writer, so the next four fill the queue.
        let blocker = Task { try await store.write { _ in gate.wait() } }
        try await gate.untilEntered()
        let queued = (0..<4).map { i in
            Task { try await store.write { try Ledger.post($0, .transfer(kind: "t", reference: "\(i)", at: 0, from: "x", to: "y", currency: "CNY", amountMinor: 1)) } }
        }
        while store.queuedCommandsCount < 4 { try await Task.sleep(nanoseconds: 1_000_000) }
        do {
            _ = try await store.write { _ in 1 }
            Issue.record("a fifth command was accepted into a queue of four")
        } catch StoreError.overloaded(let retryAfterMilliseconds) {
            #expect(retryAfterMilliseconds >= 1)
        }
        gate.open()
        try await blocker.value
        for task in queued { _ = try await task.value }
        #expect(try await store.balance(account: "y") == 4)
    }

    @Test func failingCommandRollsBackOnlyItsOwnSavepointInABatch() async throws {
        let store = try SQLiteStore(configuration: F.configuration())
        defer { store.close() }
        let gate = Gate()
        let blocker = Task { try await store.write { _ in gate.wait() } }
        try await gate.untilEntered()
        struct Refused: Error {}
        let good1 = Task { try await store.write { ctx in
            try AuditLog.append(ctx, at: 1, actor: "t", action: "good1", payload: [])
            return try Ledger.post(ctx, .transfer(kind: "t", reference: "1", at: 0, from: "x", to: "y", currency: "CNY", amountMinor: 1))
        } }
        while store.queuedCommandsCount < 1 { try await Task.sleep(nanoseconds: 1_000_000) }
        let bad = Task { try await store.write { ctx -> Int64 in
            try AuditLog.append(ctx, at: 2, actor: "t", action: "bad", payload: [])
            _ = try Ledger.post(ctx, .transfer(kind: "t", reference: "2", at: 0, from: "x", to: "z", currency: "CNY", amountMinor: 10))
            throw Refused()
        } }
        while store.queuedCommandsCount < 2 { try await Task.sleep(nanoseconds: 1_000_000) }
        let good2 = Task { try await store.write { ctx in
            try AuditLog.append(ctx, at: 3, actor: "t", action: "good2", payload: [])
            return try Ledger.post(ctx, .transfer(kind: "t", reference: "3", at: 0, from: "x", to: "y", currency: "CNY", amountMinor: 1))
        } }
        while store.queuedCommandsCount < 3 { try await Task.sleep(nanoseconds: 1_000_000) }
        gate.open()
        try await blocker.value
        _ = try await good1.value
        await #expect(throws: Refused.self) { _ = try await bad.value }
        _ = try await good2.value
        #expect(try await store.balance(account: "y") == 2)
        #expect(try await store.balance(account: "z") == 0)
        #expect(try await store.balance(account: "x") == -2)
        let actions = try store.read { try $0.cachedStatement("SELECT action FROM audit_log ORDER BY seq").fetchAll { $0.text(0) } }
        #expect(actions == ["good1", "good2"])
        // The bad command had written before failing: its batch ran again with savepoints.
        #expect(store.writerRedoneBatchesCount == 1)
        #expect(try await store.verifyAudit() == nil)
        #expect(try await store.verifyLedger() == nil)
    }

    @Test func commandFailingBeforeAnyWriteLeavesItsBatchUnrepeated() async throws {
        let store = try SQLiteStore(configuration: F.configuration())
        defer { store.close() }
        let gate = Gate()
        let blocker = Task { try await store.write { _ in gate.wait() } }
        try await gate.untilEntered()
        struct Refused: Error {}
        let runs = Counter()
        let good1 = Task { try await store.write { ctx -> Int64 in
            runs.increment()
            return try Ledger.post(ctx, .transfer(kind: "t", reference: "1", at: 0, from: "x", to: "y", currency: "CNY", amountMinor: 1))
        } }
        while store.queuedCommandsCount < 1 { try await Task.sleep(nanoseconds: 1_000_000) }
        // Reads, then refuses: nothing to undo, so the batch goes on without a second run.
        let refused = Task { try await store.write { ctx -> Int64 in
            _ = try Ledger.balance(ctx, account: "y")
            throw Refused()
        } }
        while store.queuedCommandsCount < 2 { try await Task.sleep(nanoseconds: 1_000_000) }
        let good2 = Task { try await store.write { ctx -> Int64 in
            try AuditLog.append(ctx, at: 3, actor: "t", action: "good2", payload: [])
            return try Ledger.post(ctx, .transfer(kind: "t", reference: "2", at: 0, from: "x", to: "y", currency: "CNY", amountMinor: 1))
        } }
        while store.queuedCommandsCount < 3 { try await Task.sleep(nanoseconds: 1_000_000) }
        gate.open()
        try await blocker.value
        _ = try await good1.value
        await #expect(throws: Refused.self) { _ = try await refused.value }
        _ = try await good2.value
        #expect(runs.value == 1)
        #expect(store.writerRedoneBatchesCount == 0)
        #expect(try await store.balance(account: "y") == 2)
        #expect(try await store.verifyAudit() == nil)
        #expect(try await store.verifyLedger() == nil)
    }

    @Test func reusedSerialInABatchOfConfirmationsFailsAloneAndLeavesNothing() async throws {
        let store = try SQLiteStore(configuration: F.configuration())
        defer { store.close() }
        try await store.depositToPool(funderId: F.pool, amountMinor: F.poolCapitalMinor, reference: "seed", now: F.now)
        var tranches: [TrancheRecord] = []
        for i in 1...3 {
            let planned = try await store.intake(F.loan("L-\(i)", borrower: "b-\(i)"), now: F.now)
            tranches.append(try #require(planned.tranches.first { $0.kind == .partner }))
        }
        let ids = tranches.map(\.id)
        _ = try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "S-1", trancheId: ids[0], outcome: .funded), now: F.now)
        let gate = Gate()
        let blocker = Task { try await store.write { _ in gate.wait() } }
        try await gate.untilEntered()
        // One batch: a good confirmation, one that reuses S-1 for an open tranche (found only by
        // the unique key, after the command has written), and another good one.
        let good1 = Task { try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "S-2", trancheId: ids[1], outcome: .funded), now: F.now) }
        while store.queuedCommandsCount < 1 { try await Task.sleep(nanoseconds: 1_000_000) }
        let reused = Task { try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "S-1", trancheId: ids[2], outcome: .funded), now: F.now) }
        while store.queuedCommandsCount < 2 { try await Task.sleep(nanoseconds: 1_000_000) }
        let good2 = Task { try await store.confirm(FundingConfirmation(funderId: F.bankA, serial: "S-3", trancheId: ids[2], outcome: .funded), now: F.now) }
        while store.queuedCommandsCount < 3 { try await Task.sleep(nanoseconds: 1_000_000) }
        gate.open()
        try await blocker.value
        #expect(try await good1.value.loanState == .funded)
        await #expect(throws: StoreError.idempotencyConflict(scope: "confirmation", key: "BA/S-1")) { _ = try await reused.value }
        #expect(try await good2.value.loanState == .funded)
        #expect(store.writerRedoneBatchesCount == 1)
        #expect(try await store.balance(account: LedgerAccounts.partnerDeployed(F.bankA)) == 3 * 700_000)
        let serials = try store.read { try $0.cachedStatement("SELECT serial FROM confirmation ORDER BY serial").fetchAll { $0.text(0) } }
        #expect(serials == ["S-1", "S-2", "S-3"])
        let funded = try store.read { try $0.fetchInt64("SELECT COUNT(*) FROM ledger_transaction WHERE kind = 'tranche.funded'") }
        #expect(funded == 3)
        #expect(try await store.verifyLedger() == nil)
        #expect(try await store.verifyAudit() == nil)
    }

    @Test func commandsArrivingWithinTheWindowShareOneTransaction() async throws {
        var configuration = F.configuration()
        configuration.batchCommandsMax = 8
        // A long window: the batch commits as soon as it is full, not when the window ends.
        configuration.batchWindowMicroseconds = 10_000_000
        let store = try SQLiteStore(configuration: configuration)
        defer { store.close() }
        let before = store.writerStatistics
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<8 {
                group.addTask {
                    _ = try await store.write { try Ledger.post($0, .transfer(kind: "t", reference: "\(i)", at: 0, from: "x", to: "y", currency: "CNY", amountMinor: 1)) }
                }
            }
            try await group.waitForAll()
        }
        let after = store.writerStatistics
        #expect(after.commands - before.commands == 8)
        #expect(after.batches - before.batches == 1)
        #expect(try await store.balance(account: "y") == 8)
    }

    @Test func transactionLostMidBatchFailsEveryCommandOfTheBatch() async throws {
        let store = try SQLiteStore(configuration: F.configuration())
        defer { store.close() }
        let gate = Gate()
        let blocker = Task { try await store.write { _ in gate.wait() } }
        try await gate.untilEntered()
        struct Failed: Error {}
        let first = Task { try await store.write { try Ledger.post($0, .transfer(kind: "t", reference: "1", at: 0, from: "x", to: "y", currency: "CNY", amountMinor: 1)) } }
        while store.queuedCommandsCount < 1 { try await Task.sleep(nanoseconds: 1_000_000) }
        // Stands for SQLite rolling the whole transaction back on its own (SQLITE_FULL, SQLITE_IOERR).
        let breaker = Task { try await store.write { ctx -> Int in
            try ctx.db.execute("ROLLBACK")
            throw Failed()
        } }
        while store.queuedCommandsCount < 2 { try await Task.sleep(nanoseconds: 1_000_000) }
        gate.open()
        try await blocker.value
        // The first command's effect went with the transaction: it must not be answered as done.
        await #expect(throws: Failed.self) { _ = try await first.value }
        await #expect(throws: Failed.self) { _ = try await breaker.value }
        #expect(try await store.balance(account: "y") == 0)
        // The writer carries on with the next batch.
        _ = try await store.write { try Ledger.post($0, .transfer(kind: "t", reference: "2", at: 0, from: "x", to: "y", currency: "CNY", amountMinor: 5)) }
        #expect(try await store.balance(account: "y") == 5)
        #expect(try await store.verifyLedger() == nil)
    }

    @Test func tamperedAuditRowIsDetected() async throws {
        let path = F.temporaryPath()
        let store = try SQLiteStore(configuration: F.configuration(path: path))
        for i in 1...5 { try await store.appendAudit(actor: "treasury:maker", action: "rules.propose", payload: Array("version=\(i)".utf8), now: Int64(i)) }
        #expect(try await store.verifyAudit() == nil)
        store.close()
        let raw = try Database(path: path)
        try raw.execute("UPDATE audit_log SET payload = X'76657273696f6e3d39' WHERE seq = 3")
        #expect(try AuditLog.verify(raw) == "audit entry 3: hash does not match its contents (entry altered)")
        try raw.execute("DELETE FROM audit_log WHERE seq = 3")
        #expect(try AuditLog.verify(raw) == "audit entry 4: expected sequence 3 (an entry is missing)")
        raw.close()
        #expect(try StoreVerifier.verifyAudit(path: path) != nil)
    }

    @Test func driftedBalanceAndUnbalancedRowsAreDetected() async throws {
        let path = F.temporaryPath()
        let store = try await F.makeStore(F.configuration(path: path))
        _ = try await store.intake(F.loan("L-1"), now: F.now)
        store.close()
        #expect(try StoreVerifier.verifyLedger(path: path) == nil)
        let raw = try Database(path: path)
        defer { raw.close() }
        try raw.execute("UPDATE ledger_account SET balance_minor = balance_minor + 1 WHERE code = 'pool:P1:reserved'")
        #expect(try StoreVerifier.verifyLedger(raw) == "ledger account pool:P1:reserved: stored balance 300001 but its postings sum to 300000")
        try raw.execute("UPDATE ledger_account SET balance_minor = balance_minor - 1 WHERE code = 'pool:P1:reserved'")
        try raw.execute("UPDATE ledger_posting SET amount_minor = amount_minor + 5 WHERE id = 1")
        #expect(try StoreVerifier.verifyLedger(raw)?.hasPrefix("ledger transaction 1 does not balance in CNY: sum 5") == true)
        try raw.execute("UPDATE ledger_posting SET amount_minor = amount_minor - 5 WHERE id = 1")
        try raw.execute("UPDATE tranche_terms SET amount_minor = amount_minor - 1 WHERE kind = 'partner'")
        #expect(try StoreVerifier.verifyLedger(raw) == "loan L-1 (awaiting_funding): amount 1000000 but its active tranches sum to 999999")
        try raw.execute("UPDATE tranche_terms SET amount_minor = amount_minor + 1 WHERE kind = 'partner'")
        #expect(try StoreVerifier.verifyLedger(raw) == nil)
    }

    /// The loan and tranche state rows: the loan's record of its open tranches and repaid
    /// principal must match its tranches, and every loan and tranche has exactly its row.
    @Test func driftedFundingStateIsDetected() async throws {
        let path = F.temporaryPath()
        let store = try await F.makeStore(F.configuration(path: path))
        _ = try await store.intake(F.loan("L-1"), now: F.now)
        store.close()
        let raw = try Database(path: path)
        defer { raw.close() }
        #expect(try StoreVerifier.verifyLedger(raw) == nil)
        try raw.execute("UPDATE funding_state SET tranches_open = 2 WHERE tranche_id = 0")
        #expect(try StoreVerifier.verifyLedger(raw) == "loan L-1: records 2 open tranches but has 1")
        try raw.execute("UPDATE funding_state SET tranches_open = 1 WHERE tranche_id = 0")
        try raw.execute("UPDATE funding_state SET principal_repaid_minor = 5 WHERE tranche_id = 0")
        #expect(try StoreVerifier.verifyLedger(raw) == "loan L-1: records 5 principal repaid but its tranches 0")
        try raw.execute("UPDATE funding_state SET principal_repaid_minor = 0 WHERE tranche_id = 0")
        let partner = try #require(try raw.fetchInt64("SELECT id FROM tranche_terms WHERE kind = 'partner'"))
        try raw.execute("DELETE FROM funding_state WHERE tranche_id = ?", [.integer(partner)])
        #expect(try StoreVerifier.verifyLedger(raw) == "tranche \(partner) has no funding state row")
        try raw.execute("INSERT INTO funding_state(loan_id, tranche_id, state) SELECT loan_id, id, 'requested' FROM tranche_terms WHERE id = ?", [.integer(partner)])
        #expect(try StoreVerifier.verifyLedger(raw) == nil)
        try raw.execute("INSERT INTO funding_state(loan_id, tranche_id, state) VALUES (1, 999, 'requested')")
        #expect(try StoreVerifier.verifyLedger(raw) == "funding state row (loan 1, tranche 999) belongs to no loan or tranche")
        try raw.execute("DELETE FROM funding_state WHERE tranche_id = 999")
        try raw.execute("DELETE FROM funding_state WHERE tranche_id = 0")
        #expect(try StoreVerifier.verifyLedger(raw) == "loan L-1 has no funding state row")
    }

    @Test func reopenedStoreContinuesTheAuditChain() async throws {
        let path = F.temporaryPath()
        var store: any Store = try await F.makeStore(F.configuration(path: path))
        _ = try await store.intake(F.loan("L-1"), now: F.now)
        store.close()
        store = try SQLiteStore(configuration: F.configuration(path: path))
        _ = try await store.intake(F.loan("L-2", borrower: "b-2"), now: F.now)
        #expect(try await store.verifyAudit() == nil)
        #expect(try await store.loan(id: "L-1")?.state == .awaitingFunding)
        store.close()
    }
}

/// Counts how often a job body ran (a redone batch runs its jobs twice).
final class Counter: @unchecked Sendable {
    // @unchecked: `count` is guarded by `lock`.
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

/// Holds the writer thread until a test opens it (a blocking wait is the point: it stands for a
/// slow transaction). `entered` tells the test the writer is really inside, so the commands the
/// test queues next cannot join the held batch.
final class Gate: @unchecked Sendable {
    // @unchecked: `isEntered` is guarded by `lock`.
    private let semaphore = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var isEntered = false

    func wait() {
        lock.lock()
        isEntered = true
        lock.unlock()
        semaphore.wait()
    }

    func open() { semaphore.signal() }

    var entered: Bool {
        lock.lock()
        defer { lock.unlock() }
        return isEntered
    }

    /// Suspends until the writer is held inside `wait()`.
    func untilEntered() async throws {
        while !entered { try await Task.sleep(nanoseconds: 1_000_000) }
    }
}

/// The writer's coalescing VFS: a commit's WAL frames reach the kernel in a few large writes,
/// and what it wrote reads back the same through SQLite's own VFS, from another connection
/// and after the writer is gone.
@Suite struct CoalescingVFSTests {
    @Test func commitsWriteTheirFramesInFewCallsAndReadBackThroughTheDefaultVFS() throws {
        let path = StoreFixture.temporaryPath()
        let writer = try Database(path: path)
        try writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
        let before = Database.walWriteStatistics
        for batch in 0..<20 {
            try writer.inTransaction {
                for row in 0..<50 {
                    try writer.execute("INSERT INTO t(id, v) VALUES (?, ?)", [.integer(Int64(batch * 50 + row)), .blob(Array(repeating: UInt8(row), count: 1_000))])
                }
            }
            // Another connection (default VFS) sees every committed row at once.
            var reader = Database.Configuration()
            reader.readOnly = true
            let other = try Database(path: path, configuration: reader)
            #expect(try other.fetchInt64("SELECT COUNT(*) FROM t") == Int64((batch + 1) * 50))
            other.close()
        }
        let after = Database.walWriteStatistics
        let requested = after.requested - before.requested
        let issued = after.issued - before.issued
        // 20 commits of about 14 pages, each frame asked for as two writes: well over 500 asked,
        // and one call per commit (a few more if other tests commit meanwhile).
        #expect(requested > 500)
        #expect(issued * 4 < requested, "requested \(requested) writes, issued \(issued)")
        writer.close()
        var plain = Database.Configuration()
        plain.coalescesWALWrites = false
        let reopened = try Database(path: path, configuration: plain)
        defer { reopened.close() }
        #expect(try reopened.fetchInt64("SELECT COUNT(*) FROM t") == 1_000)
        #expect(try reopened.fetchInt64("SELECT SUM(length(v)) FROM t") == 1_000_000)
        #expect(try reopened.fetchOne("PRAGMA integrity_check") { $0.text(0) } == "ok")
    }
}

/// Deferred commit syncs (pipelined group commit): a commit's sync is left to the caller, and a
/// checkpoint on the same thread makes it real before it copies a frame into the database.
@Suite(.serialized) struct DeferredCommitSyncTests {
    private func syncCounts() -> (deferred: Int64, forced: Int64, real: Int64) {
        var deferred: Int64 = 0
        var forced: Int64 = 0
        var real: Int64 = 0
        CSQLiteVFS_syncStatistics(&deferred, &forced, &real)
        return (deferred, forced, real)
    }

    @Test func commitSyncIsDeferredAndACheckpointForcesItFirst() throws {
        let path = StoreFixture.temporaryPath()
        let db = try Database(path: path)
        defer { db.close() }
        #expect(db.usesCoalescingVFS)
        try db.execute("PRAGMA wal_autocheckpoint=0")
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")  // first sync: always real
        CSQLiteVFS_setDeferredCommitSync(1)
        defer { CSQLiteVFS_setDeferredCommitSync(0) }
        var wal: UnsafeMutableRawPointer?
        _ = CSQLiteVFS_takePendingSync(&wal)
        let before = syncCounts()
        try db.execute("INSERT INTO t(v) VALUES ('one')")
        let first = CSQLiteVFS_takePendingSync(&wal)
        #expect(first > 0 && wal != nil, "the commit's sync was not deferred")
        try db.execute("INSERT INTO t(v) VALUES ('two')")
        let second = CSQLiteVFS_takePendingSync(&wal)
        #expect(second == first + 1)
        #expect(syncCounts().deferred - before.deferred == 2)
        // Marked durable (as the syncer does after its fsync): nothing is pending any more.
        if let wal { CSQLiteVFS_markSynced(wal, second) }
        #expect(CSQLiteVFS_takePendingSync(&wal) == 0)
        // A third commit left pending, then a checkpoint on this thread: it must sync the WAL
        // itself before writing the database file.
        try db.execute("INSERT INTO t(v) VALUES ('three')")
        #expect(CSQLiteVFS_takePendingSync(&wal) > 0)
        try db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        #expect(syncCounts().forced - before.forced == 1)
        #expect(CSQLiteVFS_takePendingSync(&wal) == 0, "after the forced sync nothing is pending")
        #expect(try db.fetchInt64("SELECT COUNT(*) FROM t") == 3)
        // The WAL fully copied and restarted: the next commit writes a new header at offset 0,
        // which must reach the disk before any frame after it (a real sync, never deferred).
        try db.execute("PRAGMA wal_checkpoint(RESTART)")
        let beforeRestart = syncCounts()
        try db.execute("INSERT INTO t(v) VALUES ('four')")
        let afterRestart = syncCounts()
        #expect(afterRestart.real - beforeRestart.real >= 1, "the header after a WAL restart was not synced at once")
        #expect(try db.fetchInt64("SELECT COUNT(*) FROM t") == 4)
    }

    @Test func aLoneCallerIsNotHeldForTheMinimumPipelinedBatch() async throws {
        // One caller at a time can never make up a batch of 1,000: each command must still be
        // taken once the fsync before it ends, not wait for company.
        var configuration = StoreFixture.configuration()
        configuration.pipelinedBatchCommandsMin = 1_000
        let store = try SQLiteStore(configuration: configuration)
        defer { store.close() }
        let started = ContinuousClock.now
        for i in 0..<50 {
            try await store.appendAudit(actor: "test", action: "alone", payload: Array("entry \(i)".utf8), now: StoreFixture.now)
        }
        #expect(ContinuousClock.now - started < .seconds(20), "sequential commands stalled behind the pipelined minimum")
        #expect(store.writerStatistics.commands >= 50)
        #expect(try await store.verifyAudit() == nil)
    }

    /// While an fsync runs, the writer starts its next batch once `pipelinedBatchCommandsMin`
    /// commands wait, not before: with 64 callers and a minimum of 1 batches overlap the fsync
    /// before them; with a minimum no queue reaches, none does (each waits for the fsync to end).
    @Test func theWriterOverlapsAnFsyncOnlyOnceThePipelinedMinimumWaits() async throws {
        func overlapping(minimum: Int) async throws -> (overlapping: Int, batches: Int) {
            var configuration = StoreFixture.configuration()
            configuration.pipelinedBatchCommandsMin = minimum
            let store = try SQLiteStore(configuration: configuration)
            defer { store.close() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<64 {
                    group.addTask {
                        for i in 0..<15 {
                            try await store.appendAudit(actor: "test", action: "overlap", payload: Array("\(caller)/\(i)".utf8), now: StoreFixture.now)
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.verifyAudit() == nil)
            let statistics = store.writerStatistics
            return (statistics.batchesOverlappingSync, statistics.batches)
        }
        let eager = try await overlapping(minimum: 1)
        #expect(eager.overlapping > 0, "no batch started during an fsync with a minimum of 1 (\(eager.batches) batches)")
        let held = try await overlapping(minimum: 100_000)
        #expect(held.overlapping == 0, "\(held.overlapping) of \(held.batches) batches started during an fsync with a minimum no queue reaches")
        #expect(held.batches > 1)
    }

    @Test func concurrentCommandsAreAllAnsweredDurably() async throws {
        let store = try SQLiteStore(configuration: StoreFixture.configuration())
        defer { store.close() }
        let answered = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<400 {
                group.addTask {
                    try await store.appendAudit(actor: "test", action: "sync.many", payload: Array("entry \(i)".utf8), now: StoreFixture.now)
                    return 1
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(answered == 400)
        let counts = store.syncerCounts
        // Every batch that wrote went through a syncer and was answered after an fsync.
        #expect(counts.syncs > 0 && counts.batches >= counts.syncs)
        #expect(try await store.verifyAudit() == nil)
    }

    @Test func storeAnswersOnlyDurableCommitsThroughTheSyncer() async throws {
        let store = try SQLiteStore(configuration: StoreFixture.configuration())
        defer { store.close() }
        let before = syncCounts()
        for i in 0..<20 {
            try await store.appendAudit(actor: "test", action: "sync.check", payload: Array("entry \(i)".utf8), now: StoreFixture.now)
        }
        // The writer deferred its commit syncs; the syncer made them durable before answering.
        #expect(syncCounts().deferred - before.deferred >= 19)
        #expect(store.syncerCounts.syncs > 0)
        #expect(try await store.verifyAudit() == nil)
    }

    /// A duration lands in the first bucket whose bound it does not exceed (Prometheus `le`),
    /// past every bound in the last; cumulative counts end at the total, and the sum is exact.
    @Test func durationHistogramBucketsByUpperBound() {
        var histogram = DurationHistogram()
        histogram.record(nanoseconds: 0)
        histogram.record(nanoseconds: 250_000)  // exactly the first bound, 0.25 ms
        histogram.record(nanoseconds: 250_001)
        histogram.record(nanoseconds: 400_000_000)  // 400 ms: above 0.25 s, at most 0.5 s
        histogram.record(nanoseconds: 3_000_000_000)  // past 2.5 s, the last bound
        let bounds = DurationHistogram.boundsSeconds
        #expect(histogram.counts.count == bounds.count + 1)
        #expect(histogram.counts[0] == 2)
        #expect(histogram.counts[1] == 1)
        #expect(histogram.counts[bounds.firstIndex(of: 0.5)!] == 1)
        #expect(histogram.counts[bounds.count] == 1)
        #expect(histogram.count == 5)
        #expect(histogram.cumulativeCounts.last == 5)
        #expect(histogram.cumulativeCounts[bounds.firstIndex(of: 0.25)!] == 3)
        #expect(histogram.sumNanoseconds == 3_400_500_001)
        #expect(bounds == bounds.sorted())
    }

    /// Every finished batch and every fsync is in its stage's duration histogram, and their
    /// sums are the totals the means come from.
    @Test func stageDurationsCountEveryBatchAndFsync() async throws {
        let store = try SQLiteStore(configuration: StoreFixture.configuration())
        defer { store.close() }
        for i in 0..<20 {
            try await store.appendAudit(actor: "test", action: "histogram.check", payload: Array("entry \(i)".utf8), now: StoreFixture.now)
        }
        // A caller is answered before the writer and the syncer record the batch and the fsync
        // that answered it: wait (bounded) for the totals to settle.
        let deadline = Date().addingTimeInterval(5)
        func settled() -> Bool {
            let durations = store.stageDurations
            return durations.batches.count == UInt64(store.writerStatistics.batches)
                && durations.walSyncs.count == UInt64(store.syncerCounts.syncs)
        }
        while !settled() && Date() < deadline { try await Task.sleep(nanoseconds: 1_000_000) }
        let durations = store.stageDurations
        #expect(durations.batches.count == UInt64(store.writerStatistics.batches))
        #expect(durations.batches.count >= 1)
        #expect(durations.batches.sumNanoseconds == store.writerStatistics.busyNanoseconds)
        #expect(durations.walSyncs.count == UInt64(store.syncerCounts.syncs))
        #expect(durations.walSyncs.count >= 1)
        #expect(durations.walSyncs.sumNanoseconds == store.syncerCounts.syncNanoseconds)
    }

    @Test func phaseTimesAccountForEveryCommand() async throws {
        let store = try SQLiteStore(configuration: StoreFixture.configuration())
        defer { store.close() }
        let before = (writer: store.writerStatistics, syncer: store.syncerCounts)
        for i in 0..<20 {
            try await store.appendAudit(actor: "test", action: "phase.check", payload: Array("entry \(i)".utf8), now: StoreFixture.now)
        }
        let writer = store.writerStatistics
        let syncer = store.syncerCounts
        #expect(writer.commands - before.writer.commands >= 20)
        // Each command is charged its whole batch's wall time, so the sum over commands is at
        // least the writer's busy time; every answered command waited for a real fsync.
        #expect(writer.applyingNanoseconds - before.writer.applyingNanoseconds >= writer.busyNanoseconds - before.writer.busyNanoseconds)
        #expect(writer.busyNanoseconds > before.writer.busyNanoseconds)
        #expect(syncer.syncNanoseconds > before.syncer.syncNanoseconds)
        #expect(syncer.awaitingSyncNanoseconds - before.syncer.awaitingSyncNanoseconds >= syncer.syncNanoseconds - before.syncer.syncNanoseconds,
                "each sync is awaited by at least one command for at least its own length")
    }
}


/// The deadline sweep walks loans from a persisted cursor in bounded steps.
@Suite struct DeadlineSweepTests {
    typealias F = StoreFixture

    @Test func sweepEndsEveryDueLoanInBoundedStepsAndHonoursTheLimit() async throws {
        let path = F.temporaryPath()
        let setup = try SQLiteStore(configuration: F.configuration(path: path))
        try await setup.depositToPool(funderId: F.pool, amountMinor: 10_000_000_000, reference: "seed", now: F.approvedAt)
        setup.close()
        let count = FundingEngine.sweepExaminedLoansMax + 500
        try StoreSeeder.seedAwaitingLoans(path: path, count: count, amountMinor: 1_000_000, poolShareBps: 3_000, poolId: F.pool,
                                          partnerId: F.bankA, currency: "CNY", approvedAt: F.approvedAt, deadlineSeconds: 7_200,
                                          ruleId: "joint", ruleVersion: 1)
        let store = try SQLiteStore(configuration: F.configuration(path: path))
        defer { store.close() }
        #expect(try await store.expireOverdue(now: F.approvedAt + 7_199, limit: 1_000).isEmpty)
        var ended: [String] = []
        for _ in 0..<4 {
            let pass = try await store.expireOverdue(now: F.approvedAt + 7_200, limit: 1_000)
            #expect(pass.count <= 1_000)
            ended += pass.map(\.loanId)
        }
        #expect(ended.count == count)
        #expect(Set(ended).count == count)
        #expect(try store.read { try $0.fetchInt64("SELECT COUNT(*) FROM loan WHERE state = 'awaiting_funding'") } == 0)
        #expect(try await store.verifyLedger() == nil)
    }

    @Test func upgradeFromV3PlacesTheCursorBelowTheEarliestAwaitingLoan() async throws {
        let path = F.temporaryPath()
        let raw = try Database(path: path)
        var v3 = DatabaseMigrator()
        for migration in StoreSchema.migrator.migrations.prefix(3) { v3.registerMigration(migration.id) { try migration.migrate($0) } }
        try v3.migrate(raw)
        // History written by a v3 gateway: three loans awaiting their partner, one funded.
        try Self.writeV3Loans(raw, awaiting: 3, funded: 1)
        raw.close()
        let store = try SQLiteStore(configuration: F.configuration(path: path))
        defer { store.close() }
        #expect(try store.read { try $0.fetchInt64("SELECT deadline_at FROM sweep_cursor") } == F.approvedAt + 7_199)
        // v5 moved every loan's and tranche's state into funding_state; the views show it as before.
        #expect(try store.read { try $0.fetchInt64("SELECT COUNT(*) FROM funding_state") } == 4 + 8)
        #expect(try store.read { try $0.fetchInt64("SELECT COUNT(*) FROM loan WHERE state = 'awaiting_funding' AND tranches_open = 1") } == 3)
        #expect(try store.read { try $0.fetchInt64("SELECT COUNT(*) FROM tranche WHERE state = 'requested'") } == 3)
        #expect(try store.read { try $0.fetchInt64("SELECT principal_repaid_minor FROM loan WHERE loan_ref = 'V3-3'") } == 1_000)
        #expect(try await store.verifyLedger() == nil)
        #expect(try await store.loan(id: "V3-3")?.state == .funded)
        #expect(try await store.expireOverdue(now: F.approvedAt + 7_200, limit: 10).count == 3)
        #expect(try store.read { try $0.fetchInt64("SELECT COUNT(*) FROM loan WHERE state = 'unfunded' AND tranches_open = 0") } == 3)
        #expect(try await store.verifyLedger() == nil)
    }

    /// Rows as a v3 store kept them (state on the loan and tranche rows), sound for `ledger verify`.
    static func writeV3Loans(_ db: Database, awaiting: Int, funded: Int) throws {
        try db.execute("INSERT INTO funder(id, kind, currency) VALUES (?, 'pool', 'CNY'), (?, 'partner', 'CNY')", [.text(F.pool), .text(F.bankA)])
        var exposure: Int64 = 0
        var reserved: Int64 = 0
        var deployed: Int64 = 0
        var partnerDeployed: Int64 = 0
        for i in 0..<(awaiting + funded) {
            let isFunded = i >= awaiting
            try db.execute("""
                INSERT INTO loan(id, loan_ref, borrower_ref, amount_minor, currency, term_months, annual_rate_bps, product, risk_grade,
                                 region, channel, approved_at, deadline_at, rule_id, rule_version, state, tranches_open, principal_repaid_minor)
                VALUES (?, ?, ?, 10000, 'CNY', 12, 1800, 'consumer', 'B', 'GD', 'app', ?, ?, 'joint', 1, ?, ?, ?)
                """, [.integer(Int64(i + 1)), .text("V3-\(i)"), .text("b-\(i)"), .integer(F.approvedAt), .integer(F.approvedAt + 7_200),
                      .text(isFunded ? "funded" : "awaiting_funding"), .integer(isFunded ? 0 : 1), .integer(isFunded ? 1_000 : 0)])
            try db.execute("""
                INSERT INTO tranche(id, loan_id, funder_id, kind, share_bps, amount_minor, state, quota_day, principal_repaid_minor)
                VALUES (?, ?, ?, 'pool', 3000, 3000, 'funded', NULL, ?), (?, ?, ?, 'partner', 7000, 7000, ?, 0, ?)
                """, [.integer(Int64(2 * i + 1)), .integer(Int64(i + 1)), .text(F.pool), .integer(isFunded ? 300 : 0),
                      .integer(Int64(2 * i + 2)), .integer(Int64(i + 1)), .text(F.bankA), .text(isFunded ? "funded" : "requested"),
                      .integer(isFunded ? 700 : 0)])
            exposure += isFunded ? 6_300 : 7_000
            if isFunded {
                deployed += 2_700
                partnerDeployed += 6_300
            } else {
                reserved += 3_000
            }
        }
        try db.execute("UPDATE funder SET exposure_minor = ? WHERE id = ?", [.integer(exposure), .text(F.bankA)])
        try db.execute("INSERT INTO ledger_transaction(id, kind, reference, at) VALUES (1, 'seed', 'v3', ?)", [.integer(F.approvedAt)])
        let legs: [(String, Int64)] = [
            (LedgerAccounts.poolReserved(F.pool), reserved), (LedgerAccounts.poolDeployed(F.pool), deployed),
            (LedgerAccounts.partnerDeployed(F.bankA), partnerDeployed), ("seed:v3", -(reserved + deployed + partnerDeployed)),
        ]
        for (code, amount) in legs where amount != 0 {
            try db.execute("INSERT INTO ledger_account(code, currency, balance_minor) VALUES (?, 'CNY', ?)", [.text(code), .integer(amount)])
            try db.execute("INSERT INTO ledger_posting(transaction_id, account_id, amount_minor) VALUES (1, ?, ?)",
                           [.integer(db.lastInsertedRowID), .integer(amount)])
        }
    }
}

/// A failed WAL fsync fails the batches it covered and every later one: nothing is answered as
/// durable once what the disk holds is unknown.
@Suite struct WALSyncerFailureTests {
    final class RecordingJob: WriteJob, @unchecked Sendable {
        // @unchecked: `outcome` is written once by the syncer thread, read after `done` signals.
        var outcome: (any Error)??
        let done = DispatchSemaphore(value: 0)
        func perform(_ context: WriteContext) -> Bool { true }
        var failure: (any Error)? { nil }
        func finish(batchError: (any Error)?) {
            outcome = .some(batchError)
            done.signal()
        }
    }

    @Test func aFailedSyncFailsItsBatchAndRefusesTheNext() throws {
        let syncer = WALSyncer(walPath: "/nonexistent-\(UInt32.random(in: 0...UInt32.max))/db-wal")
        defer { syncer.close() }
        var marker: UInt8 = 0
        let job = RecordingJob()
        let refused = withUnsafeMutablePointer(to: &marker) { pointer in
            syncer.submit([job], generation: 1, wal: UnsafeMutableRawPointer(pointer), committedAtNanoseconds: 0, onSynced: { _ in })
        }
        #expect(refused == nil)
        #expect(job.done.wait(timeout: .now() + 5) == .success)
        let answered = try #require(job.outcome)
        #expect(answered != nil, "a batch whose fsync failed was answered as durable")
        #expect(syncer.failed != nil)
        let later = RecordingJob()
        var again: UInt8 = 0
        let second = withUnsafeMutablePointer(to: &again) { pointer in
            syncer.submit([later], generation: 2, wal: UnsafeMutableRawPointer(pointer), committedAtNanoseconds: 0, onSynced: { _ in })
        }
        #expect(second != nil, "the syncer took more work after a failed fsync")
    }
}
