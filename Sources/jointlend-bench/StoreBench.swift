enum StoreBench {
    static func run(_ args: ArraySlice<String>) -> Int32 {
        print("not built yet")
        return 2
    }
}
