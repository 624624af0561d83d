extension RouterResponder {
    /// The values of a matched route's `{name}` segments, raw (still percent-encoded). A route
    /// has a handful at most, so they are kept in order in a small array: looking one up
    /// compares a few short names, cheaper than hashing into a dictionary.
    public struct Parameters: Sendable, ExpressibleByDictionaryLiteral {
        private var pairs: [(name: String, value: String)] = []

        public init() {}

        public init(dictionaryLiteral elements: (String, String)...) {
            for (name, value) in elements { append(name: name, value: value) }
        }

        /// The value of `name`, nil if the route has no such parameter.
        public subscript(name: String) -> String? {
            for pair in pairs where pair.name == name { return pair.value }
            return nil
        }

        public var count: Int { pairs.count }
        public var isEmpty: Bool { pairs.isEmpty }

        /// Sets `name` (a route names each parameter once; a repeated name keeps the last value,
        /// as a dictionary would).
        mutating func append(name: String, value: String) {
            if let i = pairs.firstIndex(where: { $0.name == name }) {
                pairs[i].value = value
            } else {
                pairs.append((name, value))
            }
        }
    }
}
