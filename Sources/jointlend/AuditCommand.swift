import Storage

/// `jointlend audit verify --db FILE`: the audit hash chain is unbroken. Exit 0 when sound,
/// 1 with the first broken entry, 2 on bad usage or an unreadable file.
enum AuditCommand {
    static let help = "USAGE: jointlend audit verify --db FILE"

    static func run(_ args: ArraySlice<String>) -> Int32 {
        VerifyRunner.run(args, help: help, subject: "audit") { try StoreVerifier.verifyAudit(path: $0) }
    }
}
