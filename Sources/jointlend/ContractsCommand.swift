/// `jointlend contracts`: lint and verify partner contracts (filled in below).
enum ContractsCommand {
    static func run(_ args: ArraySlice<String>) -> Int32 {
        writeStderr("jointlend contracts: not built yet")
        return 2
    }
}
