import Synchronization
import Testing
@testable import HTTP

@Suite struct LoggerFieldsTests {
    /// What follows the timestamp, which may differ by a millisecond between two lines.
    func afterTimestamp(_ line: String) -> Substring { line.drop { $0 != "Z" } }

    @Test func pairsGiveTheLineAMetadataDictionaryGives() {
        let logs = LogCapture()
        var logger = logs.logger
        logger[metadataKey: "zone"] = "eu"
        logger[metadataKey: "partner.id"] = "from-logger"
        logger[metadataKey: "label"] = "cannot overwrite the label"
        Logger.$currentRequestID.withValue("req-9") {
            logger.info("confirmation applied", metadata: ["partner.id": "bank-a", "tranche.id": "17", "loan.state": "funded", "msg": "x"])
            logger.info("confirmation applied", fields: ["tranche.id": "17", "partner.id": "bank-a", "msg": "x", "loan.state": "funded"])
        }
        #expect(logs.all.count == 2)
        #expect(afterTimestamp(logs.all[0]) == afterTimestamp(logs.all[1]))
        #expect(logs.all[1].hasSuffix(
            #""label":"test","msg":"confirmation applied","loan.state":"funded","partner.id":"bank-a","request.id":"req-9","tranche.id":"17","zone":"eu"}"#),
            "\(logs.all[1])")
    }

    @Test func theRequestIDOfARequestsLoggerWinsOverTheOneInScopeAndTheCallsOverBoth() {
        let logs = LogCapture()
        var logger = logs.logger
        logger[metadataKey: "request.id"] = "from-context"
        #expect(logger[metadataKey: "request.id"] == "from-context")
        #expect(logger.metadata == ["request.id": "from-context"])
        Logger.$currentRequestID.withValue("in-scope") {
            logger.info("a", fields: ["k": "v"])
            logger.info("b", fields: ["request.id": "from-call"])
            logger.info("c", metadata: ["request.id": "from-call"])
        }
        logger.metadata = ["other": "1"]
        logger.info("d")
        #expect(logs.all.count == 4)
        #expect(logs.all[0].hasSuffix(#""msg":"a","k":"v","request.id":"from-context"}"#), "\(logs.all[0])")
        #expect(logs.all[1].hasSuffix(#""msg":"b","request.id":"from-call"}"#), "\(logs.all[1])")
        #expect(logs.all[2].hasSuffix(#""msg":"c","request.id":"from-call"}"#), "\(logs.all[2])")
        // Replacing the metadata drops the request id set before.
        #expect(logs.all[3].hasSuffix(#""msg":"d","other":"1"}"#), "\(logs.all[3])")
    }

    @Test func metadataSetWithARequestIDRoundTrips() {
        var logger = LogCapture().logger
        logger.metadata = ["request.id": "r-1", "a": "b"]
        #expect(logger.metadata == ["request.id": "r-1", "a": "b"])
        #expect(logger[metadataKey: "a"] == "b")
        logger[metadataKey: "request.id"] = nil
        #expect(logger.metadata == ["a": "b"])
        let built = Logger(label: "x", metadata: ["request.id": "r-2"], sink: Logger.Sink { _ in })
        #expect(built[metadataKey: "request.id"] == "r-2")
    }

    @Test func aRepeatedPairKeepsItsFirstValue() {
        let logs = LogCapture()
        logs.logger.info("dup", fields: ["b": "first", "a": "1", "b": "second"])
        #expect(logs.all.first?.hasSuffix(#""msg":"dup","a":"1","b":"first"}"#) == true, "\(logs.all)")
    }

    /// Past the inline limit the general sort takes over; both must order alike.
    @Test func manyFieldsAreSortedAndMergedAsAFewAre() {
        let seed: UInt64 = 0x5EED_1066
        var generator = SeededGenerator(seed: seed)
        for fieldCount in [0, 1, 2, 5, 15, 16, 17, 40] {
            let logs = LogCapture()
            var logger = logs.logger
            var keys = (0..<fieldCount).map { "key.\(String($0, radix: 7))" }
            keys.shuffle(using: &generator)
            for key in keys.prefix(fieldCount / 2) { logger[metadataKey: key] = "logger" }
            logger[metadataKey: "zzz"] = "logger-only"
            var pairs: [String: String] = [:]
            for key in keys.suffix(fieldCount - fieldCount / 3) { pairs[key] = "call" }
            Logger.$currentRequestID.withValue("rid") { logger.info("m", metadata: pairs) }
            var expected: [(String, String)] = []
            for key in Set(keys + ["zzz", "request.id"]).sorted() {
                if let v = pairs[key] { expected.append((key, v)) }
                else if key == "request.id" { expected.append((key, "rid")) }
                else if let v = logger[metadataKey: key] { expected.append((key, v)) }
            }
            let tail = expected.map { #","\#($0.0)":"\#($0.1)""# }.joined() + "}"
            #expect(logs.all.first?.hasSuffix(#""msg":"m""# + tail) == true, "seed \(seed), \(fieldCount) fields: \(logs.all)")
        }
    }

    @Test func valuesThatNeedEscapingAreEscapedOnTheFastPath() {
        let logs = LogCapture()
        logs.logger.info("quote \" here", fields: ["k\n": "tab\there", "plain": "caf\u{e9}"])
        #expect(logs.all.first?.hasSuffix(#""msg":"quote \" here","k\n":"tab\there","plain":"café"}"#) == true, "\(logs.all)")
    }

    /// The per-second cache gives what the full computation gives, when the second repeats,
    /// moves on, or jumps back (another thread's clock, a test's).
    @Test func cachedTimestampsMatchComputedOnes() {
        let seed: UInt64 = 0x5EED_7113
        var generator = SeededGenerator(seed: seed)
        var seconds: Int64 = 1_763_700_000
        for _ in 0..<5_000 {
            switch generator.next() % 4 {
            case 0: break
            case 1: seconds += 1
            case 2: seconds = Int64.random(in: 0...7_258_118_399, using: &generator)
            default: seconds -= Int64(generator.next() % 100_000)
            }
            let milliseconds = Int(generator.next() % 1_000)
            var cached: [UInt8] = []
            var computed: [UInt8] = []
            Logger.appendCachedTimestamp(seconds: seconds, milliseconds: milliseconds, to: &cached)
            Logger.appendTimestamp(seconds: seconds, milliseconds: Int64(milliseconds), to: &computed)
            #expect(cached == computed, "seed \(seed), seconds \(seconds), ms \(milliseconds)")
        }
    }

    /// Lines assembled on the stack reach a buffer sink whole; lines too long for the stack
    /// are assembled again in an array and arrive whole as well, at every length around the limit.
    @Test func stackAndOverflowLinesReachEverySinkKindIdentically() {
        let strings = Mutex<[String]>([])
        let buffers = Mutex<[String]>([])
        let stringLogger = Logger(label: "t", sink: Logger.Sink { line in strings.withLock { $0.append(line) } })
        let bufferLogger = Logger(label: "t", sink: Logger.Sink(
            write: { _ in Issue.record("the string path was taken") },
            writeBytes: { _ in Issue.record("the array path was taken") },
            writeBuffer: { line in buffers.withLock { $0.append(String(decoding: line, as: UTF8.self)) } }))
        let lengths = [0, 1, 900] + Array((Logger.stackLineBytes - 130)...(Logger.stackLineBytes - 60)) + [5_000, 70_000]
        for length in lengths {
            let value = String(repeating: "v", count: length)
            for logger in [stringLogger, bufferLogger] {
                logger.info("sized", fields: ["quoted": "a\"b", "value": value])
            }
        }
        let fromStrings = strings.withLock { $0 }
        let fromBuffers = buffers.withLock { $0 }
        #expect(fromStrings.count == lengths.count)
        #expect(fromBuffers.count == lengths.count)
        for (index, length) in lengths.enumerated() where index < fromStrings.count && index < fromBuffers.count {
            #expect(afterTimestamp(fromStrings[index]) == afterTimestamp(fromBuffers[index]), "length \(length)")
            #expect(fromBuffers[index].hasSuffix(#""msg":"sized","quoted":"a\"b","value":""# + String(repeating: "v", count: length) + #""}"#),
                    "length \(length)")
        }
        // Lines on both sides of the stack limit were tried.
        #expect(fromBuffers.contains { $0.utf8.count == Logger.stackLineBytes })
        #expect(fromBuffers.contains { $0.utf8.count == Logger.stackLineBytes + 1 })
    }
}
