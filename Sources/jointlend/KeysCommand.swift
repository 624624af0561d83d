enum KeysCommand {
    static func run(_ args: ArraySlice<String>) -> Int32 {
        writeStderr("jointlend: this command is not built yet")
        return 2
    }
}
