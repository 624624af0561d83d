#if canImport(Glibc)
import Glibc
#endif

/// Entry point: dispatches the first argument to a subcommand. Each subcommand lives in its own
/// file as `enum XCommand { static func run(_ args: ArraySlice<String>) -> Int32 }` and returns
/// the process exit status (0 ok, 1 a negative answer such as "signature invalid", 2 bad usage/input).
let usage = """
    jointlend — joint-lending partner gateway

    USAGE: jointlend <command> [options]

    COMMANDS:
      serve      Run the gateway (--config FILE, --listen HOST:PORT, --data-dir DIR)
      demo       Run the gateway with simulated partners and post a few hundred loans
      route      Route one loan: --config FILE --loan FILE|-  (prints the decision as JSON)
      keys       keys generate --algorithm sm2|rsa|ed25519|hmac --out DIR
      sign       Sign a request: --format F --algorithm A --key FILE ... (prints JSON)
      verify     Verify a signature: same inputs plus --signature S or --authorization H
      partner-sim  Play a partner bank from its contract, with faults (--contract DIR --listen HOST:PORT --gateway URL)
      contracts  contracts lint | contracts verify [--partner P] [--against URL]
      ledger     ledger verify --db FILE
      audit      audit verify --db FILE
      help       Show this help

    Run `jointlend <command> --help` for a command's options.
    """

func writeStderr(_ s: String) {
    var line = s
    if !line.hasSuffix("\n") { line += "\n" }
    _ = line.withCString { write(2, $0, strlen($0)) }
}

let arguments = CommandLine.arguments.dropFirst()
let command = arguments.first ?? "help"
let rest = arguments.dropFirst()
let status: Int32
switch command {
case "help", "--help", "-h":
    print(usage)
    status = 0
case "route": status = RouteCommand.run(rest)
case "keys": status = KeysCommand.run(rest)
case "sign": status = SignCommand.run(rest)
case "verify": status = VerifyCommand.run(rest)
case "ledger": status = LedgerCommand.run(rest)
case "audit": status = AuditCommand.run(rest)
case "store-load": status = StoreLoadCommand.run(rest)
case "serve": status = ServeCommand.run(rest)
case "demo": status = DemoCommand.run(rest)
case "partner-sim": status = PartnerSimCommand.run(rest)
case "contracts": status = ContractsCommand.run(rest)
default:
    writeStderr("jointlend: unknown command '\(command)'; run `jointlend --help`")
    status = 2
}
exit(status)
