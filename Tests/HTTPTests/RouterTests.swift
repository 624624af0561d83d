import Foundation
import Testing
import Synchronization
@testable import HTTP

private func context() -> RequestContext { RequestContext(requestID: "test-1", logger: silentLogger) }

private func text(_ response: Response) -> String { String(decoding: response.body, as: UTF8.self) }

@Suite struct RouterTests {
    @Test func duplicateRouteIsRejected() {
        var router = Router()
        router.get("/v1/loans/{loanId}") { _, _ in Response() }
        router.get("/v1/loans/{loanId}") { _, _ in Response() }
        #expect(throws: RouterError.duplicateRoute(method: .GET, pattern: "/v1/loans/{loanId}")) { try router.freeze() }
    }

    @Test func sameShapeWithOtherParameterNameConflicts() {
        var router = Router()
        router.get("/v1/loans/{loanId}") { _, _ in Response() }
        router.get("/v1/loans/{id}") { _, _ in Response() }
        #expect(throws: RouterError.conflictingRoute(method: .GET, pattern: "/v1/loans/{id}", existing: "/v1/loans/{loanId}")) {
            try router.freeze()
        }
    }

    @Test(arguments: ["v1/loans", "/v1//loans", "/v1/{}", "/v1/x{id}", "/v1/{a}/{a}"])
    func malformedPatternIsRejected(pattern: String) {
        var router = Router()
        router.get(pattern) { _, _ in Response() }
        #expect {
            try router.freeze()
        } throws: { error in
            if case .badPattern(pattern, _)? = error as? RouterError { true } else { false }
        }
    }

    @Test func sameShapeOnAnotherMethodIsAllowed() throws {
        var router = Router()
        router.get("/v1/loans/{loanId}") { _, _ in .text("get") }
        router.put("/v1/loans/{loanId}") { _, _ in .text("put") }
        let responder = try router.freeze()
        #expect(responder.routes.count == 2)
    }

    @Test func routesByMethodAndParametersAndRendersMissesAsErrors() async throws {
        var router = Router()
        router.get("/v1/loans/{loanId}") { _, context in .text("loan \(try context.parameter("loanId"))") }
        router.get("/v1/loans/summary") { _, _ in .text("summary") }
        router.post("/v1/partners/{partnerId}/confirmations") { _, context in
            .text("\(context.routePattern) \(context.parameters["partnerId"] ?? "")")
        }
        router.onSync(.GET, "/healthz") { _, _ in .text("ok") }
        let responder = try router.freeze()

        #expect(text(await responder.respond(to: Request(method: .GET, path: "/v1/loans/L-7"), context: context())) == "loan L-7")
        #expect(text(await responder.respond(to: Request(method: .GET, path: "/v1/loans/summary"), context: context())) == "summary")
        #expect(text(await responder.respond(to: Request(method: .POST, path: "/v1/partners/bank-a/confirmations"), context: context()))
            == "/v1/partners/{partnerId}/confirmations bank-a")
        #expect(text(await responder.respond(to: Request(method: .GET, path: "/healthz"), context: context())) == "ok")
        #expect(text(await responder.respond(to: Request(method: .HEAD, path: "/healthz"), context: context())) == "ok")

        let missing = await responder.respond(to: Request(method: .GET, path: "/v1/nothing"), context: context())
        #expect(missing.status == .notFound)
        #expect(text(missing) == #"{"error":{"code":"not_found","message":"no route for this path","field":null}}"#)
        let trailing = await responder.respond(to: Request(method: .GET, path: "/v1/loans/L-7/"), context: context())
        #expect(trailing.status == .notFound)

        let wrongMethod = await responder.respond(to: Request(method: .DELETE, path: "/v1/loans/L-7"), context: context())
        #expect(wrongMethod.status == .methodNotAllowed)
        #expect(wrongMethod.headers["Allow"] == "GET")
        let wrongOnLiteral = await responder.respond(to: Request(method: .POST, path: "/healthz"), context: context())
        #expect(wrongOnLiteral.status == .methodNotAllowed)
    }

    @Test func parametersArePercentDecodedAndBadEncodingsNamed() async throws {
        var router = Router()
        router.get("/v1/loans/{loanId}") { _, context in .text(try context.parameter("loanId")) }
        let responder = try router.freeze()
        #expect(text(await responder.respond(to: Request(method: .GET, path: "/v1/loans/L%2D1%C3%A9"), context: context())) == "L-1é")
        for bad in ["L%2", "L%zz", "%FF%FE"] {
            let response = await responder.respond(to: Request(method: .GET, path: "/v1/loans/\(bad)"), context: context())
            #expect(response.status.code == 400, "\(bad)")
            #expect(text(response).contains(#""field":"loanId""#), "\(bad)")
        }
    }

    /// What a resolution says, for comparing the byte matcher with the `Character`-level one.
    static func describe(_ resolution: RouterResponder.Resolution, names: [String]) -> String {
        switch resolution {
        case .notFound: return "404"
        case let .methodNotAllowed(allowed): return "405 " + allowed.map(\.rawValue).joined(separator: ",")
        case let .route(route, parameters):
            return "\(route.method.rawValue) \(route.pattern) " + names.map { "\($0)=\(parameters[$0] ?? "-")" }.joined(separator: " ")
        }
    }

    static func edgeCaseResponder() throws -> RouterResponder {
        var router = Router()
        for (method, pattern) in [
            (HTTPMethod.GET, "/v1/loans/{loanId}"), (.PUT, "/v1/loans/{loanId}"), (.GET, "/v1/loans/summary"),
            (.POST, "/v1/partners/{partnerId}/confirmations"), (.GET, "/v1/partners/{partnerId}/position"),
            (.GET, "/v1/{a}/x/{b}"), (.DELETE, "/v1/{c}/{d}/y"), (.GET, "/{only}"), (.GET, "/healthz"), (.GET, "/caf\u{E9}/{e}"),
        ] {
            router.on(method, pattern) { _, _ in Response() }
        }
        return try router.freeze()
    }

    @Test func byteMatcherAgreesWithCharacterMatcherOnEdgeCases() throws {
        let responder = try Self.edgeCaseResponder()
        let names = ["loanId", "partnerId", "a", "b", "c", "d", "only", "e"]
        let cases: [(HTTPMethod, String, String)] = [
            (.GET, "/v1/loans/L-7", "GET /v1/loans/{loanId} loanId=L-7 partnerId=- a=- b=- c=- d=- only=- e=-"),
            (.HEAD, "/v1/loans/L-7", "GET /v1/loans/{loanId} loanId=L-7 partnerId=- a=- b=- c=- d=- only=- e=-"),
            (.DELETE, "/v1/loans/L-7", "405 GET,PUT"),
            (.GET, "/v1/loans/", "404"),
            (.GET, "/v1/loans//", "404"),
            (.GET, "/v1/loans/L-7/", "404"),
            (.POST, "/v1/partners/bank-a/confirmations", "POST /v1/partners/{partnerId}/confirmations loanId=- partnerId=bank-a a=- b=- c=- d=- only=- e=-"),
            (.POST, "/v1/partners//confirmations", "404"),
            (.POST, "/v1/partners/bank-a/confirmation", "404"),
            (.POST, "/v1/partners/bank%2Da/confirmations", "POST /v1/partners/{partnerId}/confirmations loanId=- partnerId=bank%2Da a=- b=- c=- d=- only=- e=-"),
            // The literal `partners` beats the parameter `{a}` at the second segment.
            (.GET, "/v1/partners/x/position", "GET /v1/partners/{partnerId}/position loanId=- partnerId=x a=- b=- c=- d=- only=- e=-"),
            (.GET, "/v1/q/x/r", "GET /v1/{a}/x/{b} loanId=- partnerId=- a=q b=r c=- d=- only=- e=-"),
            (.GET, "/v1/q/r/y", "405 DELETE"),
            (.GET, "/anything", "GET /{only} loanId=- partnerId=- a=- b=- c=- d=- only=anything e=-"),
            (.GET, "/", "404"),
            (.GET, "", "404"),
            (.GET, "v1/loans/L-7", "404"),
            (.GET, "/caf\u{E9}/1", "GET /caf\u{E9}/{e} loanId=- partnerId=- a=- b=- c=- d=- only=- e=1"),
            // Canonically equivalent to the pattern's literal: a String comparison matches it.
            (.GET, "/cafe\u{301}/1", "GET /caf\u{E9}/{e} loanId=- partnerId=- a=- b=- c=- d=- only=- e=1"),
            // A combining mark after `/` makes one Character with it, so that is no separator.
            (.GET, "/v1/loans/\u{301}x", "404"),
        ]
        for (method, path, expected) in cases {
            #expect(Self.describe(responder.resolve(method, path: path), names: names) == expected, "\(method.rawValue) \(path)")
        }
    }

    @Test func byteMatcherAgreesWithCharacterMatcherOnRandomASCIIPaths() throws {
        let responder = try Self.edgeCaseResponder()
        let names = ["loanId", "partnerId", "a", "b", "c", "d", "only", "e"]
        let seed: UInt64 = 0x2026_1121_0A5C
        var rng = SeededGenerator(seed: seed)
        let pieces = ["v1", "loans", "partners", "x", "y", "summary", "position", "confirmations", "bank-a", "", "%2F", "L.7", "caf"]
        let methods: [HTTPMethod] = [.GET, .HEAD, .POST, .PUT, .DELETE]
        var routed = 0
        for round in 0..<20_000 {
            let count = Int.random(in: 1...5, using: &rng)
            let path = "/" + (0..<count).map { _ in pieces.randomElement(using: &rng)! }.joined(separator: "/")
            let method = methods.randomElement(using: &rng)!
            var bytes = path
            let fast = bytes.withUTF8 { responder.resolveASCII(method == .HEAD ? [.HEAD, .GET] : [method], $0) }
            let slow = responder.resolveUnicode(method == .HEAD ? [.HEAD, .GET] : [method], path: path)
            guard let fast else {
                Issue.record("seed \(seed) round \(round): ASCII path \(path) not handled on bytes")
                continue
            }
            #expect(Self.describe(fast, names: names) == Self.describe(slow, names: names), "seed \(seed) round \(round): \(method.rawValue) \(path)")
            if case .route = fast { routed += 1 }
        }
        // The generator must reach real routes, or the comparison proves little.
        #expect(routed > 1_000, "seed \(seed)")
    }

    @Test func thrownErrorsRenderThemselvesAndOthersBecomeOpaque500s() async throws {
        struct Secret: Error { let key = "do-not-leak" }
        var router = Router()
        router.post("/v1/loans") { _, _ in
            throw HTTPError(.unprocessableContent, code: "no_capacity", message: "no \"funder\" has capacity", field: "amountMinor")
        }
        router.get("/boom") { _, _ in throw Secret() }
        let logs = LogCapture()
        let responder = try router.freeze()
        let unprocessable = await responder.respond(to: Request(method: .POST, path: "/v1/loans"), context: context())
        #expect(unprocessable.status.code == 422)
        #expect(unprocessable.headers["Content-Type"] == "application/json")
        #expect(text(unprocessable) == #"{"error":{"code":"no_capacity","message":"no \"funder\" has capacity","field":"amountMinor"}}"#)

        let failed = await responder.respond(
            to: Request(method: .GET, path: "/boom"), context: RequestContext(requestID: "r-9", logger: logs.logger))
        #expect(failed.status.code == 500)
        #expect(!text(failed).contains("do-not-leak"))
        #expect(logs.all.count == 1)
        #expect(logs.all.first?.contains(#""request.id":"r-9""#) == true)
        #expect(logs.all.first?.contains("do-not-leak") == false)
    }
}

@Suite struct RateLimiterTests {
    final class FakeClock: Sendable {
        let nanoseconds = Atomic<UInt64>(1_000_000_000)
        func advance(milliseconds: UInt64) { nanoseconds.add(milliseconds * 1_000_000, ordering: .relaxed) }
    }

    @Test func burstThen429WithRetryAfterThenRefill() {
        let clock = FakeClock()
        let limiter = RateLimiter(
            defaultPolicy: .init(ratePerSecond: 2, burst: 3), clock: { clock.nanoseconds.load(ordering: .relaxed) })
        for _ in 0..<3 { #expect(limiter.acquire(callerID: "bank-a") == .allowed) }
        #expect(limiter.acquire(callerID: "bank-a") == .limited(retryAfterSeconds: 1))
        // Another caller has its own bucket.
        #expect(limiter.acquire(callerID: "bank-b") == .allowed)
        clock.advance(milliseconds: 499)
        #expect(limiter.acquire(callerID: "bank-a") != .allowed)
        clock.advance(milliseconds: 1)
        #expect(limiter.acquire(callerID: "bank-a") == .allowed)
        #expect(limiter.acquire(callerID: "bank-a") != .allowed)
        // A long pause refills only up to the burst.
        clock.advance(milliseconds: 3_600_000)
        for _ in 0..<3 { #expect(limiter.acquire(callerID: "bank-a") == .allowed) }
        #expect(limiter.acquire(callerID: "bank-a") != .allowed)
    }

    @Test func perCallerPolicyOverridesDefault() {
        let limiter = RateLimiter(
            defaultPolicy: .init(ratePerSecond: 1, burst: 1), policies: ["platform": .init(ratePerSecond: 1, burst: 5)],
            clock: { 42 })
        for _ in 0..<5 { #expect(limiter.acquire(callerID: "platform") == .allowed) }
        #expect(limiter.acquire(callerID: "platform") != .allowed)
        #expect(limiter.acquire(callerID: "bank-a") == .allowed)
        #expect(limiter.acquire(callerID: "bank-a") != .allowed)
    }

    @Test func checkThrows429WithRetryAfterThroughTheRouter() async throws {
        let limiter = RateLimiter(defaultPolicy: .init(ratePerSecond: 1, burst: 1), clock: { 7 })
        var router = Router()
        router.post("/v1/partners/{partnerId}/confirmations") { _, context in
            try limiter.check(callerID: try context.parameter("partnerId"))
            return Response(status: .accepted)
        }
        let responder = try router.freeze()
        let request = Request(method: .POST, path: "/v1/partners/bank-a/confirmations")
        #expect(await responder.respond(to: request, context: context()).status == .accepted)
        let limited = await responder.respond(to: request, context: context())
        #expect(limited.status.code == 429)
        #expect(limited.headers["Retry-After"] == "1")
        #expect(text(limited).contains(#""code":"rate_limited""#))
    }

    @Test func boundedCallerTableFailsClosed() {
        let limiter = RateLimiter(defaultPolicy: .init(ratePerSecond: 1, burst: 1), callersMax: 2, clock: { 7 })
        #expect(limiter.acquire(callerID: "a") == .allowed)
        #expect(limiter.acquire(callerID: "b") == .allowed)
        // Both buckets are in use (empty), so a third caller cannot get one.
        #expect(limiter.acquire(callerID: "c") != .allowed)
    }

    @Test func refilledBucketsMakeRoomAndARecreatedBucketKeepsItsCallersPolicy() {
        let clock = FakeClock()
        let limiter = RateLimiter(
            defaultPolicy: .init(ratePerSecond: 1, burst: 1), policies: ["platform": .init(ratePerSecond: 1, burst: 3)],
            callersMax: 2, clock: { clock.nanoseconds.load(ordering: .relaxed) })
        for _ in 0..<3 { #expect(limiter.acquire(callerID: "platform") == .allowed) }
        #expect(limiter.acquire(callerID: "a") == .allowed)
        #expect(limiter.acquire(callerID: "platform") != .allowed)
        // Both refill completely: idle, so a new caller may take one's place.
        clock.advance(milliseconds: 3_000)
        #expect(limiter.acquire(callerID: "b") == .allowed)
        #expect(limiter.acquire(callerID: "b") != .allowed)
        // The platform's bucket was dropped as idle; made again, it has the platform's burst.
        for _ in 0..<3 { #expect(limiter.acquire(callerID: "platform") == .allowed) }
        #expect(limiter.acquire(callerID: "platform") != .allowed)
    }
}

@Suite struct LoggerTests {
    @Test func writesOneJSONLinePerRecordWithRequestIDInScope() {
        let logs = LogCapture()
        let logger = logs.logger
        logger.info("routed \"loan\"", metadata: ["loan.id": "L-1"])
        Logger.$currentRequestID.withValue("req-42") {
            logger.warning("slow")
        }
        logger.debug("not shown at info")
        #expect(logs.all.count == 2)
        let first = logs.all[0]
        #expect(first.hasPrefix(#"{"ts":""#))
        #expect(first.hasSuffix(#","level":"info","label":"test","msg":"routed \"loan\"","loan.id":"L-1"}"#))
        #expect(!first.contains("request.id"))
        #expect(logs.all[1].contains(#""level":"warning""#))
        #expect(logs.all[1].contains(#""request.id":"req-42""#))
    }

    @Test func metadataIsMergedSortedAndTheCallsOwnValueWins() {
        let logs = LogCapture()
        var logger = logs.logger
        logger[metadataKey: "partner.id"] = "from-logger"
        logger[metadataKey: "zone"] = "eu"
        logger[metadataKey: "msg"] = "cannot overwrite the message"
        Logger.$currentRequestID.withValue("req-7") {
            logger.info("applied", metadata: ["partner.id": "bank-a", "a.first": "1", "level": "nor the level"])
            logger.info("given", metadata: ["request.id": "explicit"])
        }
        #expect(logs.all.count == 2)
        let first = logs.all[0]
        #expect(first.hasSuffix(
            #","level":"info","label":"test","msg":"applied","a.first":"1","partner.id":"bank-a","request.id":"req-7","zone":"eu"}"#),
            "\(first)")
        #expect(logs.all[1].hasSuffix(#","msg":"given","partner.id":"from-logger","request.id":"explicit","zone":"eu"}"#), "\(logs.all[1])")
    }

    @Test func aByteSinkGetsExactlyTheLineAStringSinkGets() {
        let strings = Mutex<[String]>([])
        let bytes = Mutex<[[UInt8]]>([])
        let stringLogger = Logger(label: "t\u{e9}st", sink: Logger.Sink { line in strings.withLock { $0.append(line) } })
        let byteLogger = Logger(label: "t\u{e9}st", sink: Logger.Sink(
            write: { _ in Issue.record("the byte path was not taken") },
            writeBytes: { line in bytes.withLock { $0.append(line) } }))
        for logger in [stringLogger, byteLogger] {
            logger.info("caf\u{e9} \"quoted\"\n", metadata: ["k\u{1F600}": "v\t\u{0}", "b": "2"])
        }
        let line = strings.withLock { $0 }.first ?? ""
        let byteLine = String(decoding: bytes.withLock { $0 }.first ?? [], as: UTF8.self)
        // Timestamps may differ by a millisecond: compare what follows them.
        func afterTimestamp(_ text: String) -> Substring { text.drop { $0 != "Z" } }
        #expect(!line.isEmpty)
        #expect(afterTimestamp(line) == afterTimestamp(byteLine))
        #expect(line.hasSuffix(#","b":"2","k😀":"v\t\u0000"}"#), "\(line)")
    }

    @Test func timestampsMatchTheCLibrarysCalendar() {
        let seed: UInt64 = 0x5EED_0001
        var generator = SeededGenerator(seed: seed)
        // Leap days, century rules and year ends, then random instants 1970–2199.
        var instants: [Int64] = [0, 951_782_400, 951_868_799, 4_107_456_000, 4_102_444_799, 1_709_164_800, 1_735_689_599]
        for _ in 0..<20_000 { instants.append(Int64.random(in: 0...7_258_118_399, using: &generator)) }
        for seconds in instants {
            var time = time_t(seconds)
            var parts = tm()
            gmtime_r(&time, &parts)
            let expected = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.%03d", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                parts.tm_hour, parts.tm_min, parts.tm_sec, Int32(seconds % 1000))
            var bytes: [UInt8] = []
            Logger.appendTimestamp(seconds: seconds, milliseconds: seconds % 1000, to: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == expected + "Z", "seed \(seed), seconds \(seconds)")
            if String(decoding: bytes, as: UTF8.self) != expected + "Z" { break }
        }
    }

    @Test func requestIDSanity() {
        #expect(RequestContext.isSaneRequestID("abc-123_x.y"))
        #expect(!RequestContext.isSaneRequestID(""))
        #expect(!RequestContext.isSaneRequestID("a b"))
        #expect(!RequestContext.isSaneRequestID("a\"b"))
        #expect(!RequestContext.isSaneRequestID(String(repeating: "a", count: 65)))
    }
}

@Suite struct JSONTextTests {
    @Test func escapesQuotesBackslashesAndControlsAndPassesUnicodeThrough() {
        #expect(JSONText.quoted("plain") == #""plain""#)
        #expect(JSONText.quoted("a\"b\\c") == #""a\"b\\c""#)
        #expect(JSONText.quoted("l1\nl2\r\t") == #""l1\nl2\r\t""#)
        #expect(JSONText.quoted("\u{01}\u{1F}\u{7F}") == #""\u0001\u001f\u007f""#)
        #expect(JSONText.quoted("借款 ✓ \"x\"") == #""借款 ✓ \"x\"""#)
        var bytes: [UInt8] = []
        JSONText.appendQuoted("é\u{0}", to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == #""é\u0000""#)
    }
}

@Suite struct ResponseTests {
    @Test func jsonWithAddedHeadersWritesTheSameBytesAsAddingThemOneByOne() {
        let extra: [(name: String, value: String)] = [("JL-Timestamp", "1763700000"), ("JL-Nonce", "abc"), ("JL-Signature", "c2ln"), ("JL-Key-Id", "k1")]
        var oneByOne = Response.json(bytes: Array(#"{"a":1}"#.utf8))
        for h in extra { oneByOne.headers.add(name: h.name, value: h.value) }
        let gathered = Response.json(bytes: Array(#"{"a":1}"#.utf8), adding: extra)
        var a: [UInt8] = []
        var b: [UInt8] = []
        oneByOne.serialize(into: &a, requestID: "r-1", close: false)
        gathered.serialize(into: &b, requestID: "r-1", close: false)
        #expect(a == b)
        #expect(String(decoding: b, as: UTF8.self) == "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nX-Request-Id: r-1\r\nContent-Type: application/json\r\nJL-Timestamp: 1763700000\r\nJL-Nonce: abc\r\nJL-Signature: c2ln\r\nJL-Key-Id: k1\r\n\r\n{\"a\":1}")
    }
}
