/// A handler run in a `Task` that prefers the connection's event loop as its executor: it
/// starts on the loop thread and resumes there after each suspension (a store answer needs no
/// hop through the global pool). So, like a sync handler, it must not block: work that takes
/// long goes to its own thread or an actor, and the handler awaits it.
public typealias AsyncHandler = @Sendable (Request, RequestContext) async throws -> Response
/// A handler run inline on the event loop thread, without a task hop. Use it only for work that
/// never blocks and takes microseconds (`/healthz`, `/metrics`): it stalls every connection on
/// that loop while it runs.
public typealias SyncHandler = @Sendable (Request, RequestContext) throws -> Response

/// Collects routes, then `freeze()` validates them into an immutable `RouterResponder`.
///
/// Patterns are absolute paths whose segments are literals or `{name}` parameters:
/// `/v1/partners/{partnerId}/position`. A literal segment beats a parameter at the first
/// position where two patterns differ, so `/v1/loans/summary` wins over `/v1/loans/{loanId}`.
/// `HEAD` is answered by the `GET` route, without the body.
public struct Router: Sendable {
    private var routes: [RouterResponder.Route] = []
    private var problems: [RouterError] = []

    public init() {}

    /// Registers an async handler.
    public mutating func on(_ method: HTTPMethod, _ pattern: String, use handler: @escaping AsyncHandler) {
        add(method, pattern, .async(handler))
    }

    /// Registers a synchronous handler that runs inline on the event loop (see `SyncHandler`).
    public mutating func onSync(_ method: HTTPMethod, _ pattern: String, use handler: @escaping SyncHandler) {
        add(method, pattern, .sync(handler))
    }

    public mutating func get(_ pattern: String, use handler: @escaping AsyncHandler) { on(.GET, pattern, use: handler) }
    public mutating func post(_ pattern: String, use handler: @escaping AsyncHandler) { on(.POST, pattern, use: handler) }
    public mutating func put(_ pattern: String, use handler: @escaping AsyncHandler) { on(.PUT, pattern, use: handler) }
    public mutating func delete(_ pattern: String, use handler: @escaping AsyncHandler) { on(.DELETE, pattern, use: handler) }

    /// Every registered (method, pattern), in registration order — e.g. to compare with an OpenAPI spec.
    public var registeredRoutes: [(method: HTTPMethod, pattern: String)] {
        routes.map { (method: $0.method, pattern: $0.pattern) }
    }

    private mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: RouterResponder.Handler) {
        let segments: [RouterResponder.Segment]
        do {
            segments = try Self.parse(pattern)
        } catch {
            problems.append(error)
            return
        }
        if let existing = routes.first(where: { $0.method == method && $0.segments.shape == segments.shape }) {
            problems.append(
                existing.pattern == pattern
                    ? .duplicateRoute(method: method, pattern: pattern)
                    : .conflictingRoute(method: method, pattern: pattern, existing: existing.pattern))
            return
        }
        routes.append(RouterResponder.Route(method: method, pattern: pattern, segments: segments, handler: handler))
    }

    /// Validates the routes; throws the first problem found.
    public func freeze() throws(RouterError) -> RouterResponder {
        if let problem = problems.first { throw problem }
        return RouterResponder(routes: routes)
    }

    static func parse(_ pattern: String) throws(RouterError) -> [RouterResponder.Segment] {
        guard pattern.hasPrefix("/") else { throw .badPattern(pattern: pattern, reason: "must start with /") }
        if pattern == "/" { return [] }
        var segments: [RouterResponder.Segment] = []
        var names: Set<String> = []
        for part in pattern.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if part.isEmpty { throw .badPattern(pattern: pattern, reason: "empty segment") }
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count > 2 {
                let name = String(part.dropFirst().dropLast())
                guard !name.contains("{") && !name.contains("}") else {
                    throw .badPattern(pattern: pattern, reason: "bad parameter \(part)")
                }
                guard names.insert(name).inserted else {
                    throw .badPattern(pattern: pattern, reason: "parameter \(name) used twice")
                }
                segments.append(.parameter(name))
            } else if part.contains("{") || part.contains("}") {
                throw .badPattern(pattern: pattern, reason: "a parameter must be a whole segment: \(part)")
            } else {
                segments.append(.literal(String(part)))
            }
        }
        return segments
    }
}

/// Why a router could not be frozen.
public enum RouterError: Error, Sendable, Equatable, CustomStringConvertible {
    case duplicateRoute(method: HTTPMethod, pattern: String)
    /// Same method and the same shape with other parameter names: no request could tell them apart.
    case conflictingRoute(method: HTTPMethod, pattern: String, existing: String)
    case badPattern(pattern: String, reason: String)

    public var description: String {
        switch self {
        case let .duplicateRoute(method, pattern): "route \(method.rawValue) \(pattern) registered twice"
        case let .conflictingRoute(method, pattern, existing):
            "route \(method.rawValue) \(pattern) conflicts with \(existing)"
        case let .badPattern(pattern, reason): "route pattern \(pattern): \(reason)"
        }
    }
}

/// The frozen, immutable route table. Tests call `respond(to:context:)` with no socket.
public final class RouterResponder: Sendable {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    enum Handler: Sendable {
        case sync(SyncHandler)
        case async(AsyncHandler)
    }

    struct Route: Sendable {
        let method: HTTPMethod
        let pattern: String
        let segments: [Segment]
        let handler: Handler
    }

    enum Resolution {
        case route(Route, parameters: RouterResponder.Parameters)
        case notFound
        case methodNotAllowed([HTTPMethod])
    }

    /// Routes without parameters, by exact path: the fast path for `/healthz`.
    private let literalRoutes: [String: [Route]]
    /// Routes with parameters, most specific first.
    private let parameterRoutes: [Route]
    /// `parameterRoutes`' segments compiled for matching on a path's UTF-8 bytes, same order.
    private let compiledRoutes: [[CompiledSegment]]
    public let routes: [(method: HTTPMethod, pattern: String)]

    init(routes: [Route]) {
        var literal: [String: [Route]] = [:]
        var parameterized: [Route] = []
        for route in routes {
            if route.segments.allSatisfy({ if case .literal = $0 { true } else { false } }) {
                literal[route.pattern, default: []].append(route)
            } else {
                parameterized.append(route)
            }
        }
        self.literalRoutes = literal
        self.parameterRoutes = parameterized.sorted { $0.segments.precedes($1.segments) }
        self.compiledRoutes = parameterRoutes.map { $0.segments.map(CompiledSegment.init) }
        self.routes = routes.map { (method: $0.method, pattern: $0.pattern) }
    }

    func resolve(_ method: HTTPMethod, path: String) -> Resolution {
        let lookup = Self.lookup(method)
        if let candidates = literalRoutes[path] {
            for wanted in lookup {
                if let route = candidates.first(where: { $0.method == wanted }) { return .route(route, parameters: RouterResponder.Parameters()) }
            }
            return .methodNotAllowed(candidates.map(\.method))
        }
        guard path.utf8.first == 0x2F, !parameterRoutes.isEmpty else { return .notFound }
        var path = path
        if let resolution = path.withUTF8({ resolveASCII(lookup, $0) }) { return resolution }
        return resolveUnicode(lookup, path: path)
    }

    /// The methods that serve `method`, in preference order (HEAD falls back to GET): shared
    /// arrays, where building one allocated per request.
    static func lookup(_ method: HTTPMethod) -> [HTTPMethod] {
        switch method {
        case .GET: lookupGET
        case .HEAD: lookupHEAD
        case .POST: lookupPOST
        case .PUT: lookupPUT
        case .DELETE: lookupDELETE
        case .PATCH: lookupPATCH
        case .OPTIONS: lookupOPTIONS
        case .TRACE: lookupTRACE
        case .QUERY: lookupQUERY
        }
    }

    private static let lookupGET: [HTTPMethod] = [.GET]
    private static let lookupHEAD: [HTTPMethod] = [.HEAD, .GET]
    private static let lookupPOST: [HTTPMethod] = [.POST]
    private static let lookupPUT: [HTTPMethod] = [.PUT]
    private static let lookupDELETE: [HTTPMethod] = [.DELETE]
    private static let lookupPATCH: [HTTPMethod] = [.PATCH]
    private static let lookupOPTIONS: [HTTPMethod] = [.OPTIONS]
    private static let lookupTRACE: [HTTPMethod] = [.TRACE]
    private static let lookupQUERY: [HTTPMethod] = [.QUERY]

    /// The parameterised routes matched on bytes: for an ASCII path, splitting on the byte `/`
    /// and comparing bytes is exactly what the `Character`-level code does, without building
    /// substrings. nil for a path with other bytes (only a direct caller can pass one: the
    /// parser admits printable ASCII), which `resolveUnicode` answers.
    func resolveASCII(_ lookup: [HTTPMethod], _ path: UnsafeBufferPointer<UInt8>) -> Resolution? {
        var segmentCount = 0
        for byte in path {
            if byte >= 0x80 { return nil }
            if byte == 0x2F { segmentCount += 1 }
        }
        // The first matching pattern is the most specific; only its methods are considered. Its
        // routes (one per method) follow it up to the next pattern of the same length.
        var first: Int?
        var parameters = RouterResponder.Parameters()
        var end = parameterRoutes.count
        for index in parameterRoutes.indices where parameterRoutes[index].segments.count == segmentCount {
            if let first {
                if parameterRoutes[first].pattern != parameterRoutes[index].pattern {
                    end = index
                    break
                }
                continue
            }
            guard let matched = Self.match(compiledRoutes[index], path) else { continue }
            first = index
            parameters = matched
        }
        guard let first else { return .notFound }
        let pattern = parameterRoutes[first].pattern
        let winners = parameterRoutes[first..<end].lazy.filter { $0.pattern == pattern }
        for wanted in lookup {
            if let route = winners.first(where: { $0.method == wanted }) { return .route(route, parameters: parameters) }
        }
        return .methodNotAllowed(winners.map(\.method))
    }

    private static func match(_ segments: [CompiledSegment], _ path: UnsafeBufferPointer<UInt8>) -> RouterResponder.Parameters? {
        var parameters = RouterResponder.Parameters()
        var start = 1
        for segment in segments {
            var end = start
            while end < path.count, path[end] != 0x2F { end += 1 }
            let part = UnsafeBufferPointer(rebasing: path[start..<end])
            switch segment {
            case let .literal(bytes):
                guard part.count == bytes.count, bytes.withUnsafeBufferPointer({ $0.elementsEqual(part) }) else { return nil }
            case let .literalText(text): if String(decoding: part, as: UTF8.self) != text { return nil }
            case let .parameter(name):
                if part.isEmpty { return nil }
                parameters.append(name: name, value: String(decoding: part, as: UTF8.self))
            }
            start = end + 1
        }
        return parameters
    }

    func resolveUnicode(_ lookup: [HTTPMethod], path: String) -> Resolution {
        let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        // The first matching pattern is the most specific; only its methods are considered.
        var winner: [(Route, RouterResponder.Parameters)] = []
        for route in parameterRoutes where route.segments.count == parts.count {
            if let first = winner.first, first.0.pattern != route.pattern { break }
            guard let parameters = route.segments.match(parts) else { continue }
            winner.append((route, parameters))
        }
        for wanted in lookup {
            if let (route, parameters) = winner.first(where: { $0.0.method == wanted }) {
                return .route(route, parameters: parameters)
            }
        }
        return winner.isEmpty ? .notFound : .methodNotAllowed(winner.map(\.0.method))
    }

    /// Routes and runs the handler; errors become their responses (`HTTPError` renders itself,
    /// anything else is a logged 500 whose detail stays out of the response).
    public func respond(to request: Request, context: RequestContext) async -> Response {
        switch resolve(request.method, path: request.path) {
        case .notFound:
            return HTTPError.notFound.response
        case let .methodNotAllowed(allowed):
            return HTTPError.methodNotAllowed(allowed: allowed).response
        case let .route(route, parameters):
            let routed = context.with(parameters: parameters, routePattern: route.pattern)
            do {
                switch route.handler {
                case let .sync(handler): return try handler(request, routed)
                case let .async(handler): return try await handler(request, routed)
                }
            } catch {
                return Self.render(error, context: routed)
            }
        }
    }

    static func render(_ error: any Error, context: RequestContext) -> Response {
        if let httpError = error as? HTTPError { return httpError.response }
        context.logger.error("handler failed", metadata: ["error.type": "\(type(of: error))", "route": context.routePattern])
        return HTTPError.internalError.response
    }
}

extension [RouterResponder.Segment] {
    /// The pattern with parameter names erased: two routes with one shape cannot be told apart.
    var shape: [String?] {
        map { if case let .literal(text) = $0 { text } else { nil } }
    }

    /// Literal before parameter at the first differing position.
    func precedes(_ other: [RouterResponder.Segment]) -> Bool {
        for (a, b) in zip(self, other) {
            switch (a, b) {
            case (.literal, .parameter): return true
            case (.parameter, .literal): return false
            case let (.literal(x), .literal(y)) where x != y: return x < y
            default: continue
            }
        }
        return count < other.count
    }

    func match(_ parts: [Substring]) -> RouterResponder.Parameters? {
        var parameters = RouterResponder.Parameters()
        for (segment, part) in zip(self, parts) {
            switch segment {
            case let .literal(text): if part != text { return nil }
            case let .parameter(name):
                if part.isEmpty { return nil }
                parameters.append(name: name, value: String(part))
            }
        }
        return parameters
    }
}

extension RouterResponder {
    /// A pattern segment ready to be compared with a path's bytes.
    enum CompiledSegment: Sendable {
        /// An ASCII literal: byte equality is string equality.
        case literal([UInt8])
        /// A literal with other characters: compared as a `String` (canonical equivalence).
        case literalText(String)
        case parameter(String)

        init(_ segment: Segment) {
            switch segment {
            case let .literal(text): self = text.utf8.allSatisfy { $0 < 0x80 } ? .literal(Array(text.utf8)) : .literalText(text)
            case let .parameter(name): self = .parameter(name)
            }
        }
    }
}
