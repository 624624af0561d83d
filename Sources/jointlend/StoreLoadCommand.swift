#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LendingCore
import Storage

/// `jointlend store-load --db FILE --acks FILE`: the crash test's load generator. Routes loans
/// and confirms their partner tranches (every seventh declined, so re-routing runs too) from
/// many concurrent tasks, and appends each acknowledged command to the acks file — fsync'd,
/// and only after the store answered. It runs until killed or `--loans` are done; restarting
/// it on the same files resumes the work (every command is idempotent).
enum StoreLoadCommand {
    static let help = """
        USAGE: jointlend store-load --db FILE --acks FILE [--loans N] [--tasks N] [--round N]
          --loans  loans to route in total (default 1000000)
          --tasks  concurrent submitters (default 64, at most 1024)
          --round  loans per round; each round routes, then confirms (default 2000)
        """

    static func run(_ args: ArraySlice<String>) -> Int32 {
        if args.contains("--help") || args.contains("-h") {
            print(help)
            return 0
        }
        let settings: Settings
        do {
            let options = try Options(args, valued: ["db", "acks", "loans", "tasks", "round"])
            guard options.positionals.isEmpty else { throw UsageError("unexpected argument \(options.positionals[0])") }
            settings = Settings(
                db: try options.required("db"), acks: try options.required("acks"),
                loans: try integer(options, "loans", default: 1_000_000, range: 1...100_000_000),
                tasks: try integer(options, "tasks", default: 64, range: 1...1_024),
                round: try integer(options, "round", default: 2_000, range: 1...1_000_000))
        } catch {
            writeStderr("jointlend store-load: \(error)")
            return 2
        }
        let outcome = LoadOutcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                try await generate(settings)
            } catch {
                outcome.set("jointlend store-load: \(error)")
            }
            done.signal()
        }
        done.wait()
        if let failure = outcome.get() {
            writeStderr(failure)
            return 1
        }
        return 0
    }

    struct Settings: Sendable {
        var db: String
        var acks: String
        var loans: Int
        var tasks: Int
        var round: Int
    }

    private static func integer(_ options: Options, _ name: String, default value: Int, range: ClosedRange<Int>) throws(UsageError) -> Int {
        guard let text = options.value(name) else { return value }
        guard let number = Int(text), range.contains(number) else { throw UsageError("--\(name) must be an integer in \(range)") }
        return number
    }

    /// The fixed funders and rule the crash test runs with.
    static func router() -> Router {
        let funders: [String: Funder] = [
            "P1": Funder(id: "P1", kind: .pool, name: "Platform pool"),
            "BA": Funder(id: "BA", kind: .partner, name: "Bank A"),
            "BB": Funder(id: "BB", kind: .partner, name: "Bank B"),
        ]
        let rule = RatioRule(id: "joint", mode: .coFunding([Share("P1", 3_000), Share("BA", 7_000)]), fallbacks: ["BB"])
        return Router(ruleSet: RuleSet(version: 1, rules: [], defaultRule: rule), funders: funders, jurisdiction: .cn)
    }

    private static func generate(_ settings: Settings) async throws {
        let acks = try AckLog(path: settings.acks)
        let store = try SQLiteStore(configuration: StoreConfiguration(path: settings.db, router: router()))
        defer { store.close() }
        // Every run stamps its commands with the first run's clock: a resubmitted loan must hash
        // as it did before the crash, and no deadline passes while the test runs.
        if try await store.balance(account: LedgerAccounts.poolAvailable("P1")) == 0 {
            try await store.depositToPool(funderId: "P1", amountMinor: 1_000_000_000_000_000, reference: "crash-test",
                                          now: Int64(Date().timeIntervalSince1970))
        }
        let now = try store.read { try $0.fetchInt64("SELECT MIN(at) FROM ledger_transaction") } ?? 0
        // Resume at the start of the interrupted round: its loans went in concurrently, so any of
        // them may be missing; re-submitting the stored ones only replays their answers.
        let stored = try store.read { try $0.fetchInt64("SELECT COUNT(*) FROM loan") ?? 0 }
        var next = stored / Int64(settings.round) * Int64(settings.round)
        while next < settings.loans {
            let end = min(next + Int64(settings.round), Int64(settings.loans))
            // After a restart, only the round's missing loans are submitted (replays would only
            // spend the time before the next kill). Rounds run one after another, so the round's
            // stored loans are among the last `round` rows.
            let stored = try store.read { db in
                Set(try db.cachedStatement("SELECT loan_ref FROM loan ORDER BY id DESC LIMIT ?").fetchAll([.integer(Int64(settings.round))]) { $0.text(0) })
            }
            let ids = (next..<end).filter { !stored.contains("L-\($0)") }
            try await forEach(ids, tasks: settings.tasks) { i in
                let loan = Loan(loanId: "L-\(i)", borrowerRef: "b-\(i)", amountMinor: 100_000 + (i % 997) * 10, currency: .cny, termMonths: 12,
                                annualRateBps: 1_800, product: "consumer", riskGrade: "B", region: "GD", channel: "app", approvedAt: now)
                _ = try await store.intake(loan, now: now)
                try acks.append("intake L-\(i) -")
            }
            // Confirm until no partner tranche is left requested (declines create new requests).
            while true {
                let open = try store.read { db in
                    try db.cachedStatement("SELECT id, funder_id FROM tranche WHERE state = 'requested' AND kind = 'partner' ORDER BY id LIMIT 100000")
                        .fetchAll { ($0.int64(0), $0.text(1)) }
                }
                if open.isEmpty { break }
                try await forEach(open, tasks: settings.tasks) { tranche in
                    let outcome: FundingConfirmation.Outcome = tranche.0 % 7 == 0 && tranche.1 == "BA" ? .declined : .funded
                    let serial = "S-\(tranche.0)"
                    _ = try await store.confirm(FundingConfirmation(funderId: tranche.1, serial: serial, trancheId: tranche.0, outcome: outcome), now: now)
                    try acks.append("confirm \(tranche.1) \(serial)")
                }
            }
            next = end
        }
    }

    /// Runs `body` over `items` with at most `tasks` in flight; overload is retried after the
    /// store's hint, anything else stops the run.
    private static func forEach<T: Sendable>(_ items: [T], tasks: Int, _ body: @escaping @Sendable (T) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var iterator = items.makeIterator()
            func submit(_ item: T) {
                group.addTask {
                    while true {
                        do {
                            try await body(item)
                            return
                        } catch StoreError.overloaded(let retryAfterMilliseconds) {
                            try await Task.sleep(nanoseconds: UInt64(retryAfterMilliseconds) * 1_000_000)
                        }
                    }
                }
            }
            for _ in 0..<tasks {
                guard let item = iterator.next() else { break }
                submit(item)
            }
            while try await group.next() != nil {
                if let item = iterator.next() { submit(item) }
            }
        }
    }
}

/// An append-only file of acknowledged commands; each line is on disk before `append` returns.
final class AckLog: @unchecked Sendable {
    // @unchecked: the descriptor is written under `lock` only.
    private let descriptor: Int32
    private let lock = NSLock()

    init(path: String) throws {
        descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw UsageError("--acks \(path): cannot open (errno \(errno))") }
    }

    deinit { close(descriptor) }

    func append(_ line: String) throws {
        let bytes = Array((line + "\n").utf8)
        lock.lock()
        defer { lock.unlock() }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw UsageError("acks: write failed (errno \(errno))")
            }
            offset += written
        }
        guard fsync(descriptor) == 0 else { throw UsageError("acks: fsync failed (errno \(errno))") }
    }
}

/// The generator's failure, set from its task and read by the blocked main thread.
final class LoadOutcome: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var message: String?
    func set(_ text: String) { lock.lock(); message = text; lock.unlock() }
    func get() -> String? { lock.lock(); defer { lock.unlock() }; return message }
}
