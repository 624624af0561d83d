import Foundation
import Gateway
import LendingCore

/// `jointlend route --config FILE --loan FILE|-`: routes one loan against the configuration's
/// opening capacities and prints the decision as JSON. Exit 0 planned or rejected; 2 bad input.
enum RouteCommand {
    static let help = """
        USAGE: jointlend route --config FILE --loan FILE|-

        Routes one approved loan against the configuration (opening capacities, no allocation
        history) and prints the decision as one JSON line:
          {"decision":"planned"|"rejected","ruleId":…,"ruleVersion":…,"reason":…,"tranches":[…]}
        --loan - reads the loan from standard input. Bad input exits 2 with the field named.
        --now UNIX_SECONDS sets the routing clock (default: the loan's approvedAt).
        """

    static func run(_ args: ArraySlice<String>) -> Int32 {
        if args.contains("--help") { print(help); return 0 }
        do {
            let opts = try Options(args, valued: ["config", "loan", "now"])
            let config = try GatewayConfig.load(path: opts.value("config") ?? "Config/gateway.json")
            let path = try opts.required("loan")
            let bytes: [UInt8]
            if path == "-" {
                bytes = Array(FileHandle.standardInput.readData(ofLength: 1 << 20))
            } else {
                guard let data = FileManager.default.contents(atPath: path) else { throw UsageError("--loan: cannot read \(path)") }
                bytes = Array(data)
            }
            let loan = try LoanCodec.decodeLoan(bytes)
            var now = loan.approvedAt
            if let t = opts.value("now") {
                guard let n = Int64(t) else { throw UsageError("--now: expected unix seconds") }
                now = n
            }
            let decision = config.makeRouter().route(loan: loan, capacities: config.openingCapacities(), allocations: AllocationTotals(), now: now)
            print(JSONWriter.string(LoanCodec.encode(decision)))
            return 0
        } catch let e as ConfigError {
            writeStderr("jointlend route: invalid configuration\n\(e)")
            return 2
        } catch let e as LoanCodec.DecodeError {
            writeStderr("jointlend route: invalid loan: \(e.field): \(e.message)")
            return 2
        } catch {
            writeStderr("jointlend route: \(error)")
            return 2
        }
    }
}
