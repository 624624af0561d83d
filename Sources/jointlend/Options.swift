/// A small, strict command-line option parser: `--name value` pairs and `--flag` switches.
/// Unknown options and missing values are errors naming the option, so a typo never passes silently.
struct Options {
    private(set) var values: [String: String] = [:]
    private(set) var flags: Set<String> = []
    private(set) var positionals: [String] = []

    /// Parses `arguments` given the names that take a value and the names that are switches.
    init(_ arguments: ArraySlice<String>, valued: Set<String>, switches: Set<String> = []) throws(UsageError) {
        var it = arguments.makeIterator()
        while let arg = it.next() {
            if arg.hasPrefix("--") {
                var name = String(arg.dropFirst(2))
                var inlineValue: String?
                if let eq = name.firstIndex(of: "=") {
                    inlineValue = String(name[name.index(after: eq)...])
                    name = String(name[..<eq])
                }
                if valued.contains(name) {
                    guard let value = inlineValue ?? it.next() else {
                        throw UsageError("option --\(name) needs a value")
                    }
                    if values[name] != nil { throw UsageError("option --\(name) given twice") }
                    values[name] = value
                } else if switches.contains(name), inlineValue == nil {
                    flags.insert(name)
                } else {
                    throw UsageError("unknown option --\(name)")
                }
            } else {
                positionals.append(arg)
            }
        }
    }

    func value(_ name: String) -> String? { values[name] }

    func required(_ name: String) throws(UsageError) -> String {
        guard let v = values[name] else { throw UsageError("missing required option --\(name)") }
        return v
    }

    func flag(_ name: String) -> Bool { flags.contains(name) }
}

/// A command-line usage error: printed as one line, exit status 2.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
