import Storage

/// `jointlend ledger verify --db FILE`: every ledger transaction balances per currency, every
/// balance equals its postings, tranche amounts sum to their loans, exposure and pool positions
/// match the tranches. Exit 0 when sound, 1 with the first problem, 2 on bad usage or an unreadable file.
enum LedgerCommand {
    static let help = "USAGE: jointlend ledger verify --db FILE"

    static func run(_ args: ArraySlice<String>) -> Int32 {
        VerifyRunner.run(args, help: help, subject: "ledger") { try StoreVerifier.verifyLedger(path: $0) }
    }
}

/// The shared shape of `ledger verify` and `audit verify`.
enum VerifyRunner {
    static func run(_ args: ArraySlice<String>, help: String, subject: String, check: (String) throws -> String?) -> Int32 {
        if args.contains("--help") || args.contains("-h") {
            print(help)
            return 0
        }
        let path: String
        do {
            let options = try Options(args, valued: ["db"])
            guard options.positionals == ["verify"] else { throw UsageError("expected the subcommand `verify`; \(help)") }
            path = try options.required("db")
        } catch {
            writeStderr("jointlend \(subject): \(error)")
            return 2
        }
        do {
            if let problem = try check(path) {
                writeStderr("jointlend \(subject) verify: \(problem)")
                return 1
            }
            print("\(subject) sound")
            return 0
        } catch {
            writeStderr("jointlend \(subject) verify: --db \(path): \(error)")
            return 2
        }
    }
}
