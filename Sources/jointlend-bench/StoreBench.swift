#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LendingCore
import Storage

/// `jointlend-bench store`: durable funding confirmations per second — each one a tranche
/// update, ledger postings (and, as it completes its loan, the pool's deployment postings and a
/// `loan.funded` outbox message), an idempotency record and an audit entry — with group commit
/// and with one command per transaction, over 10,000 and 1,000,000 stored loans.
enum StoreBench {
    static let help = """
        USAGE: jointlend-bench store [--loans 10000,1000000] [--confirmations N] [--single N] [--tasks N] [--batch N] [--dir DIR]
          --loans          loans already stored before measuring (history; default 10000,1000000)
          --confirmations  confirmations measured with group commit (default 100000), each on a
                           further loan seeded awaiting its partner's answer
          --single         confirmations measured with one command per transaction and one fsync
                           each, no pipelining (default 10000)
          --tasks          concurrent submitters (default 512)
          --batch          commands per transaction with group commit (default 1024)
          --checkpoint-ms  background WAL checkpoint interval while the WAL is short; 0 checkpoints
                           inside COMMIT (default \(StoreConfiguration.defaultCheckpointIntervalMilliseconds))
          --pipelined-min  while an fsync is in flight, commands that must wait before the writer
                           starts its next batch (default \(StoreConfiguration.defaultPipelinedBatchCommandsMin))
        """

    struct Figures {
        var loans: Int
        var mode: String
        var confirmations: Int
        var seconds: Double
        var batches: Int
        var writerCPUMicrosecondsPerCommand: Double
        var walFramesPerCommand: Double
        var perSecond: Double { Double(confirmations) / seconds }
    }

    /// What the command line chose; the defaults are the ones `help` prints.
    struct Settings: Sendable {
        var loanCounts = [10_000, 1_000_000]
        var confirmations = 100_000
        var single = 10_000
        var tasks = 512
        var batch = 1_024
        var checkpointMilliseconds = StoreConfiguration.defaultCheckpointIntervalMilliseconds
        var pipelinedMin = StoreConfiguration.defaultPipelinedBatchCommandsMin
        var directory = FileManager.default.temporaryDirectory.path
    }

    static func run(_ args: ArraySlice<String>) -> Int32 {
        var settings = Settings()
        var it = args.makeIterator()
        while let arg = it.next() {
            guard arg.hasPrefix("--") else { return usage("unexpected argument \(arg)") }
            if arg == "--help" { print(help); return 0 }
            guard let value = it.next() else { return usage("\(arg) needs a value") }
            switch arg {
            case "--loans":
                let parsed = value.split(separator: ",").compactMap { Int($0) }
                guard !parsed.isEmpty, parsed.allSatisfy({ (1...10_000_000).contains($0) }) else { return usage("--loans must list counts in 1...10000000") }
                settings.loanCounts = parsed
            case "--confirmations": guard let n = Int(value), n > 0 else { return usage("--confirmations must be positive") }; settings.confirmations = n
            case "--single": guard let n = Int(value), n >= 0 else { return usage("--single must be ≥ 0") }; settings.single = n
            case "--tasks": guard let n = Int(value), (1...100_000).contains(n) else { return usage("--tasks must be 1...100000") }; settings.tasks = n
            case "--batch": guard let n = Int(value), (1...100_000).contains(n) else { return usage("--batch must be 1...100000") }; settings.batch = n
            case "--checkpoint-ms": guard let n = Int(value), (0...60_000).contains(n) else { return usage("--checkpoint-ms must be 0...60000") }; settings.checkpointMilliseconds = n
            case "--pipelined-min": guard let n = Int(value), (1...100_000).contains(n) else { return usage("--pipelined-min must be 1...100000") }; settings.pipelinedMin = n
            case "--dir": settings.directory = value
            default: return usage("unknown option \(arg)")
            }
        }
        let result = ResultBox()
        let done = DispatchSemaphore(value: 0)
        let chosen = settings
        Task {
            do {
                var figures: [Figures] = []
                for loans in chosen.loanCounts {
                    figures.append(try await measure(loans: loans, confirmations: chosen.confirmations, batch: chosen.batch, chosen))
                    if chosen.single > 0 {
                        figures.append(try await measure(loans: loans, confirmations: chosen.single, batch: 1, chosen))
                    }
                }
                result.set(.success(figures))
            } catch {
                result.set(.failure(error))
            }
            done.signal()
        }
        done.wait()
        switch result.get() {
        case .success(let figures):
            report(figures, tasks: settings.tasks, batch: settings.batch)
            return 0
        case .failure(let error):
            print("store bench failed: \(error)")
            return 1
        case nil:
            return 1
        }
    }

    private static func usage(_ message: String) -> Int32 {
        print("jointlend-bench store: \(message)\n\(help)")
        return 2
    }

    static func router() -> Router {
        let funders: [String: Funder] = [
            "P1": Funder(id: "P1", kind: .pool, name: "Platform pool"),
            "BA": Funder(id: "BA", kind: .partner, name: "Bank A"),
        ]
        let rule = RatioRule(id: "joint", mode: .coFunding([Share("P1", 3_000), Share("BA", 7_000)]))
        return Router(ruleSet: RuleSet(version: 1, rules: [], defaultRule: rule), funders: funders, jurisdiction: .cn)
    }

    /// Confirmations arrive shuffled within windows of this many loans.
    static let arrivalWindow = 10_000

    /// `batch` and `confirmations` are passed apart: the one-per-transaction run overrides them.
    private static func measure(loans: Int, confirmations: Int, batch: Int, _ settings: Settings) async throws -> Figures {
        let tasks = settings.tasks
        let path = "\(settings.directory)/jointlend-store-bench-\(getpid())-\(loans)-\(batch).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
        let approvedAt = Int64(Date().timeIntervalSince1970)
        var configuration = StoreConfiguration(path: path, router: router())
        configuration.batchCommandsMax = batch
        // The comparison is the classic one: each command its own transaction and its own fsync.
        configuration.pipelinesSync = batch > 1
        configuration.checkpointIntervalMilliseconds = settings.checkpointMilliseconds
        configuration.pipelinedBatchCommandsMin = settings.pipelinedMin
        configuration.queueCommandsMax = max(tasks * 2, 1_024)
        let setup = try SQLiteStore(configuration: configuration)
        try await setup.depositToPool(funderId: "P1", amountMinor: Int64(loans + confirmations) * 1_000_000, reference: "bench", now: approvedAt)
        setup.close()
        let total = loans + confirmations
        try StoreSeeder.seedAwaitingLoans(path: path, count: total, amountMinor: 1_000_000, poolShareBps: 3_000, poolId: "P1", partnerId: "BA",
                                          currency: "CNY", approvedAt: approvedAt, deadlineSeconds: 7_200, ruleId: "joint", ruleVersion: 1)
        let store = try SQLiteStore(configuration: configuration)
        defer { store.close() }
        // The first `loans` are history; the last `confirmations` are answered. Partners answer
        // roughly in the order they were asked: shuffled within windows of `arrivalWindow`
        // (fixed seed, so every run is the same).
        var generator = SplitMix64(seed: 0x5EED)
        var chosen: [Int] = []
        chosen.reserveCapacity(confirmations)
        var windowStart = loans
        while windowStart < total {
            var window = Array(windowStart..<min(windowStart + arrivalWindow, total))
            window.shuffle(using: &generator)
            chosen += window
            windowStart += arrivalWindow
        }
        let walBefore = Database.walWriteStatistics
        let started = DispatchTime.now().uptimeNanoseconds
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            // The partner numbers its answers in the order it gives them (see `serialNumber`).
            func submit(_ i: Int, serial: String) {
                group.addTask {
                    let trancheId = Int64(2 * i + 2)
                    while true {
                        do {
                            _ = try await store.confirm(FundingConfirmation(funderId: "BA", serial: serial, trancheId: trancheId, outcome: .funded), now: approvedAt + 60)
                            return
                        } catch StoreError.overloaded(let retryAfterMilliseconds) {
                            try await Task.sleep(nanoseconds: UInt64(retryAfterMilliseconds) * 1_000_000)
                        }
                    }
                }
            }
            while next < min(tasks, chosen.count) { submit(chosen[next], serial: "S-" + serialNumber(next)); next += 1 }
            while try await group.next() != nil {
                if next < chosen.count { submit(chosen[next], serial: "S-" + serialNumber(next)); next += 1 }
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let statistics = store.writerStatistics
        let walAfter = Database.walWriteStatistics
        // SQLite writes a frame as two calls (header, page).
        let walFrames = Double(walAfter.requested - walBefore.requested) / 2
        if let problem = try await store.verifyLedger() { throw StoreError.invalidCommand(field: "ledger", reason: problem) }
        return Figures(loans: loans, mode: batch == 1 ? "one per transaction" : "group commit (batch \(batch))", confirmations: confirmations, seconds: seconds,
                       batches: statistics.batches, writerCPUMicrosecondsPerCommand: Double(statistics.cpuNanoseconds) / 1_000 / Double(max(statistics.commands, 1)),
                       walFramesPerCommand: walFrames / Double(max(statistics.commands, 1)))
    }

    private static func report(_ figures: [Figures], tasks: Int, batch: Int) {
        let rss = peakResidentMegabytes()
        print("store: durable funding confirmations (tranche + ledger + idempotency + audit + outbox), \(tasks) submitters")
        print("loans stored | mode                      | confirmations | seconds | confirmations/s | avg batch | writer CPU µs/cmd | WAL pages/cmd")
        for f in figures {
            let mode = f.mode.padding(toLength: 25, withPad: " ", startingAt: 0)
            print("\(String(f.loans).leftPadded(12)) | \(mode) | \(String(f.confirmations).leftPadded(13)) | \(String(format: "%7.2f", f.seconds)) | \(String(format: "%15.0f", f.perSecond)) | \(String(format: "%9.1f", Double(f.confirmations) / Double(max(f.batches, 1)))) | \(String(format: "%17.1f", f.writerCPUMicrosecondsPerCommand)) | \(String(format: "%13.2f", f.walFramesPerCommand))")
        }
        let grouped = figures.filter { $0.mode.hasPrefix("group") }
        if let small = grouped.first, let large = grouped.last, grouped.count >= 2 {
            print(String(format: "slowdown at %d loans vs %d: %.1f%%", large.loans, small.loans, (1 - large.perSecond / small.perSecond) * 100))
        }
        print(String(format: "peak RSS: %.1f MB", rss))
        let entries = figures.map { String(format: "{\"loans\":%d,\"mode\":\"%@\",\"confirmations\":%d,\"seconds\":%.3f,\"perSecond\":%.0f}", $0.loans, $0.batchLabel, $0.confirmations, $0.seconds, $0.perSecond) }
        print("{\"suite\":\"store\",\"results\":[\(entries.joined(separator: ","))],\"peakRssMB\":\(String(format: "%.1f", rss))}")
    }

    /// VmHWM from /proc/self/status, in MB.
    static func peakResidentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kilobytes = line.split(separator: " ").compactMap { Double($0) }.first ?? -1
            return kilobytes / 1024
        }
        return -1
    }
}

extension StoreBench.Figures {
    var batchLabel: String { mode.hasPrefix("group") ? "group" : "single" }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}

final class ResultBox: @unchecked Sendable {
    // @unchecked: guarded by `lock`.
    private let lock = NSLock()
    private var value: Result<[StoreBench.Figures], any Error>?
    func set(_ result: Result<[StoreBench.Figures], any Error>) { lock.lock(); value = result; lock.unlock() }
    func get() -> Result<[StoreBench.Figures], any Error>? { lock.lock(); defer { lock.unlock() }; return value }
}
