#if canImport(Glibc)
import Glibc
#endif

/// `jointlend-bench <suite>`: release-build benchmarks printing a table and a JSON line.
/// Each suite lives in its own file as `enum XBench { static func run(_ args: ArraySlice<String>) -> Int32 }`.
let args = CommandLine.arguments.dropFirst()
let suite = args.first ?? "help"
let status: Int32
switch suite {
case "routing": status = RoutingBench.run(args.dropFirst())
case "signing": status = SigningBench.run(args.dropFirst())
case "store": status = StoreBench.run(args.dropFirst())
case "gateway": status = GatewayBench.run(args.dropFirst())
case "confirmations-fixture": status = ConfirmationFixture.run(args.dropFirst())
default:
    print("USAGE: jointlend-bench routing|signing|store|gateway|confirmations-fixture")
    status = suite == "help" || suite == "--help" ? 0 : 2
}
exit(status)
