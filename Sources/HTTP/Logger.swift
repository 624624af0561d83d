import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A small logger shaped like swift-log's, so the real package could replace it without
/// touching callers: `Logger(label:)`, `logger.info("loan routed", metadata: ["loan.id": id])`.
///
/// Each record is one JSON line (`ts`, `level`, `label`, `msg`, then metadata keys, sorted) on
/// standard error by default. Inside request scope every line carries `request.id`: the server
/// binds `Logger.currentRequestID` around each handler, and `RequestContext.logger` also has it
/// as metadata. Never log secrets, signatures, tokens or borrower data.
public struct Logger: Sendable {
    public enum Level: Int, Sendable, Comparable, CustomStringConvertible {
        case trace, debug, info, notice, warning, error, critical

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }

        public var description: String { String(describing: name) }

        /// The name as it appears in a line.
        var name: StaticString {
            switch self {
            case .trace: "trace"
            case .debug: "debug"
            case .info: "info"
            case .notice: "notice"
            case .warning: "warning"
            case .error: "error"
            case .critical: "critical"
            }
        }
    }

    public typealias Metadata = [String: String]

    /// Where finished lines go (each without its trailing newline).
    public struct Sink: Sendable {
        public let write: @Sendable (String) -> Void
        /// The same as `write` for a line already in UTF-8 bytes, when the sink can take them
        /// without a `String` made and copied per line (the buffered writer on a request path).
        let writeBytes: (@Sendable ([UInt8]) -> Void)?
        /// The same again for a line the logger assembled on its stack, for a sink that copies
        /// what it keeps: no array is made per line at all.
        let writeBuffer: (@Sendable (UnsafeRawBufferPointer) -> Void)?

        public init(write: @escaping @Sendable (String) -> Void) {
            self.write = write
            self.writeBytes = nil
            self.writeBuffer = nil
        }

        init(
            write: @escaping @Sendable (String) -> Void, writeBytes: @escaping @Sendable ([UInt8]) -> Void,
            writeBuffer: (@Sendable (UnsafeRawBufferPointer) -> Void)? = nil
        ) {
            self.write = write
            self.writeBytes = writeBytes
            self.writeBuffer = writeBuffer
        }

        /// Lines gathered in memory and written to standard error by a background thread every
        /// `BufferedLogWriter.flushIntervalMilliseconds` (one `write(2)` for many lines), so a
        /// request's log line costs no system call on the event loop. Critical lines, and
        /// `Logger.flushStandardError()`, write through at once.
        public static let bufferedStandardError = Sink(
            write: { line in BufferedLogWriter.standardError.append(line) },
            writeBytes: { line in BufferedLogWriter.standardError.append(bytes: line) },
            writeBuffer: { line in BufferedLogWriter.standardError.append(buffer: line) })

        /// One `write(2)` per line, so lines from several threads do not interleave.
        public static let standardError = Sink { line in
            var text = line
            text.append("\n")
            text.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                    if written <= 0 {
                        if written < 0 && errno == EINTR { continue }
                        return
                    }
                    offset += written
                }
            }
        }
    }

    /// The request id of the request being handled by the current task or loop thread.
    @TaskLocal public static var currentRequestID: String?

    public let label: String
    public var logLevel: Level
    /// The logger's metadata. `request.id` is kept apart from the rest, so the per-request
    /// copy `RequestContext.logger` makes sets a field instead of building a dictionary.
    public var metadata: Metadata {
        get {
            guard let requestIDMetadata else { return otherMetadata }
            var all = otherMetadata
            all[Self.requestIDKey] = requestIDMetadata
            return all
        }
        set {
            var rest = newValue
            requestIDMetadata = rest.removeValue(forKey: Self.requestIDKey)
            otherMetadata = rest
        }
    }
    public let sink: Sink
    private var otherMetadata: Metadata
    private var requestIDMetadata: String?

    static let requestIDKey = "request.id"

    public init(label: String, logLevel: Level = .info, metadata: Metadata = [:], sink: Sink = .bufferedStandardError) {
        self.label = label
        self.logLevel = logLevel
        self.sink = sink
        var rest = metadata
        requestIDMetadata = rest.removeValue(forKey: Self.requestIDKey)
        otherMetadata = rest
    }

    public subscript(metadataKey key: String) -> String? {
        get { key == Self.requestIDKey ? requestIDMetadata : otherMetadata[key] }
        set {
            if key == Self.requestIDKey {
                requestIDMetadata = newValue
            } else {
                otherMetadata[key] = newValue
            }
        }
    }

    public func log(level: Level, _ message: @autoclosure () -> String, metadata extra: @autoclosure () -> Metadata? = nil) {
        guard level >= logLevel else { return }
        write(level: level, message: message(), extra: extra() ?? [:])
    }

    /// The same record as `log(level:_:metadata:)` with the call's metadata as pairs, for
    /// lines logged per request: a pair literal is one small array, where a `Metadata` literal
    /// hashes every key. Should a key repeat, its first value wins.
    public func log(level: Level, _ message: @autoclosure () -> String, fields: KeyValuePairs<String, String>) {
        guard level >= logLevel else { return }
        write(level: level, message: message(), extra: fields)
    }

    /// One field of a record being written; `rank` orders equal keys: the call's own (0)
    /// before the logger's (1) before the request id in scope (2). The first of a key is kept.
    private typealias Field = (key: String, value: String, rank: UInt8)

    /// Above this many fields the general sort is used instead of insertion sort on the stack.
    private static let fieldsInlineMax = 16

    private func write<Extra: Collection>(level: Level, message: String, extra: Extra) where Extra.Element == (key: String, value: String) {
        // Metadata keys sorted, the call's own winning over the logger's; keys the record owns
        // cannot be overwritten. A log line per request is on the hot path: no key is hashed,
        // and for the usual handful of fields nothing is allocated to order them.
        let requestID = extra.contains(where: { $0.key == Self.requestIDKey }) ? nil : requestIDMetadata ?? Logger.currentRequestID
        let count = extra.count + otherMetadata.count + (requestID == nil ? 0 : 1)
        if count <= Self.fieldsInlineMax {
            withUnsafeTemporaryAllocation(of: Field.self, capacity: max(count, 1)) { fields in
                guard let base = fields.baseAddress else { return }
                var filled = 0
                func insert(_ field: Field) {
                    // Insertion sort, stable: equal keys stay in rank order, repeats in call order.
                    var i = filled
                    while i > 0, base[i - 1].key > field.key || (base[i - 1].rank > field.rank && base[i - 1].key == field.key) {
                        i -= 1
                    }
                    if i < filled { (base + i + 1).moveInitialize(from: base + i, count: filled - i) }
                    (base + i).initialize(to: field)
                    filled += 1
                }
                for field in extra { insert((field.key, field.value, 0)) }
                for field in otherMetadata { insert((field.key, field.value, 1)) }
                if let requestID { insert((Self.requestIDKey, requestID, 2)) }
                emit(level: level, message: message, fields: UnsafeBufferPointer(start: base, count: filled))
                base.deinitialize(count: filled)
            }
        } else {
            var fields: [Field] = []
            fields.reserveCapacity(count)
            for field in extra { fields.append((field.key, field.value, 0)) }
            for field in otherMetadata { fields.append((field.key, field.value, 1)) }
            if let requestID { fields.append((Self.requestIDKey, requestID, 2)) }
            // Stable, as the insertion sort is: repeats keep call order.
            let ordered = fields.enumerated().sorted { a, b in
                a.element.key != b.element.key ? a.element.key < b.element.key
                    : a.element.rank != b.element.rank ? a.element.rank < b.element.rank : a.offset < b.offset
            }.map(\.element)
            ordered.withUnsafeBufferPointer { emit(level: level, message: message, fields: $0) }
        }
        if level == .critical { Self.flushStandardError() }
    }

    /// Lines up to this long are assembled on the stack; longer ones in an array.
    static let stackLineBytes = 1_024

    /// Renders the line and hands it to the sink.
    private func emit(level: Level, message: String, fields: UnsafeBufferPointer<Field>) {
        let written = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.stackLineBytes) { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            var line = StackLogLine(base: base, capacity: buffer.count)
            render(level: level, message: message, fields: fields, into: &line)
            guard !line.overflowed else { return false }
            deliver(UnsafeRawBufferPointer(start: base, count: line.count))
            return true
        }
        guard !written else { return }
        var line: [UInt8] = []
        line.reserveCapacity(2 * Self.stackLineBytes)
        render(level: level, message: message, fields: fields, into: &line)
        line.withUnsafeBytes { deliver($0) }
    }

    private func deliver(_ line: UnsafeRawBufferPointer) {
        // The line is valid UTF-8 already (built from strings), so the bytes are the line.
        if let writeBuffer = sink.writeBuffer {
            writeBuffer(line)
        } else if let writeBytes = sink.writeBytes {
            writeBytes(Array(line))
        } else {
            sink.write(String(decoding: line, as: UTF8.self))
        }
    }

    private func render<Out: LogLineOutput>(level: Level, message: String, fields: UnsafeBufferPointer<Field>, into line: inout Out) {
        Self.append(#"{"ts":""#, to: &line)
        Self.appendTimestamp(to: &line)
        Self.append(#"","level":""#, to: &line)
        Self.append(level.name, to: &line)
        Self.append(#"","label":"#, to: &line)
        Self.appendQuoted(label, to: &line)
        Self.append(#","msg":"#, to: &line)
        Self.appendQuoted(message, to: &line)
        Self.appendFields(fields, to: &line)
        line.append(UInt8(ascii: "}"))
    }

    /// Appends `,"key":"value"` per field in the given (sorted) order, the first of each key only.
    private static func appendFields<Out: LogLineOutput>(_ fields: UnsafeBufferPointer<Field>, to line: inout Out) {
        var previous: Int?
        for index in fields.indices {
            let key = fields[index].key
            let keyBytes = key.utf8.count
            // Lengths first: most keys differ in length from the previous and from the record's own.
            if let previous, fields[previous].key.utf8.count == keyBytes, fields[previous].key == key { continue }
            previous = index
            if keyBytes <= 5, isRecordKey(key) { continue }
            line.append(UInt8(ascii: ","))
            appendQuoted(key, to: &line)
            line.append(UInt8(ascii: ":"))
            appendQuoted(fields[index].value, to: &line)
        }
    }

    /// Keys the record owns: metadata cannot overwrite them.
    private static func isRecordKey(_ key: String) -> Bool {
        key == "ts" || key == "level" || key == "label" || key == "msg"
    }

    /// Static text is copied whole; `append(contentsOf: text.utf8)` goes byte by byte.
    @inline(__always)
    static func append<Out: LogLineOutput>(_ text: StaticString, to line: inout Out) {
        line.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// `JSONText.appendQuoted`, with one copy for the usual string that needs no escape.
    @inline(__always)
    static func appendQuoted<Out: LogLineOutput>(_ text: String, to line: inout Out) {
        let clean = text.utf8.withContiguousStorageIfAvailable { bytes in
            // No early exit: the check folds into a flag the compiler can vectorize.
            var escapes: UInt8 = 0
            for byte in bytes { escapes |= JSONText.needsEscape(byte) ? 1 : 0 }
            guard escapes == 0 else { return false }
            line.append(UInt8(ascii: "\""))
            line.append(contentsOf: bytes)
            line.append(UInt8(ascii: "\""))
            return true
        }
        if clean != true {
            var escaped: [UInt8] = []
            JSONText.appendQuoted(text, to: &escaped)
            escaped.withUnsafeBufferPointer { line.append(contentsOf: $0) }
        }
    }

    /// Writes out what the buffered standard-error sink holds (at exit, and after critical lines).
    public static func flushStandardError() {
        BufferedLogWriter.standardError.flush()
    }

    public func trace(_ message: @autoclosure () -> String, metadata: @autoclosure () -> Metadata? = nil) {
        log(level: .trace, message(), metadata: metadata())
    }

    public func debug(_ message: @autoclosure () -> String, metadata: @autoclosure () -> Metadata? = nil) {
        log(level: .debug, message(), metadata: metadata())
    }

    public func info(_ message: @autoclosure () -> String, metadata: @autoclosure () -> Metadata? = nil) {
        log(level: .info, message(), metadata: metadata())
    }

    public func info(_ message: @autoclosure () -> String, fields: KeyValuePairs<String, String>) {
        log(level: .info, message(), fields: fields)
    }

    public func notice(_ message: @autoclosure () -> String, metadata: @autoclosure () -> Metadata? = nil) {
        log(level: .notice, message(), metadata: metadata())
    }

    public func warning(_ message: @autoclosure () -> String, metadata: @autoclosure () -> Metadata? = nil) {
        log(level: .warning, message(), metadata: metadata())
    }

    public func error(_ message: @autoclosure () -> String, metadata: @autoclosure () -> Metadata? = nil) {
        log(level: .error, message(), metadata: metadata())
    }

    public func critical(_ message: @autoclosure () -> String, metadata: @autoclosure () -> Metadata? = nil) {
        log(level: .critical, message(), metadata: metadata())
    }

    /// UTC, millisecond precision: `2026-01-31T12:00:00.123Z`.
    static func timestamp() -> String {
        var bytes: [UInt8] = []
        appendTimestamp(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func appendTimestamp<Out: LogLineOutput>(to out: inout Out) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        appendCachedTimestamp(seconds: Int64(now.tv_sec), milliseconds: Int(now.tv_nsec / 1_000_000), to: &out)
    }

    /// `appendTimestamp(seconds:milliseconds:to:)` with the text up to the seconds' point kept
    /// for the second it names: lines logged in the same second compute no calendar date.
    static func appendCachedTimestamp<Out: LogLineOutput>(seconds: Int64, milliseconds: Int, to out: inout Out) {
        var cached = timestampPrefix.withLock { $0 }
        if cached.seconds != seconds {
            var text: [UInt8] = []
            text.reserveCapacity(32)
            appendTimestamp(seconds: seconds, milliseconds: Int64(0), to: &text)
            // A year past 9999 makes a longer text: not cached, written as computed.
            guard text.count == TimestampPrefix.count + 4 else {
                text.withUnsafeBufferPointer { out.append(contentsOf: UnsafeBufferPointer(rebasing: $0.prefix($0.count - 4))) }
                appendMilliseconds(milliseconds, to: &out)
                return
            }
            withUnsafeMutableBytes(of: &cached.bytes) { $0.copyBytes(from: text.prefix(TimestampPrefix.count)) }
            cached.seconds = seconds
            timestampPrefix.withLock { $0 = cached }
        }
        withUnsafeBytes(of: cached.bytes) { raw in
            out.append(contentsOf: UnsafeBufferPointer(rebasing: raw.bindMemory(to: UInt8.self).prefix(TimestampPrefix.count)))
        }
        appendMilliseconds(milliseconds, to: &out)
    }

    /// `123Z`.
    private static func appendMilliseconds<Out: LogLineOutput>(_ milliseconds: Int, to out: inout Out) {
        let ms = min(max(milliseconds, 0), 999)
        out.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: ms / 100))
        out.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: ms / 10 % 10))
        out.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: ms % 10))
        out.append(UInt8(ascii: "Z"))
    }

    /// `2026-01-31T12:00:00.` for the second `seconds`, shared by every thread that logs.
    private struct TimestampPrefix {
        static let count = 20
        var seconds: Int64 = .min
        var bytes: (UInt64, UInt64, UInt32) = (0, 0, 0)
    }

    private static let timestampPrefix = Mutex(TimestampPrefix())

    /// The civil date computed from the day number (H. Hinnant's `civil_from_days`), instead of
    /// `gmtime_r` per log line.
    static func appendTimestamp(seconds: Int64, milliseconds: Int64, to out: inout [UInt8]) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func digits(_ value: Int64, _ width: Int) {
            var divisor: Int64 = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: (rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(year, 4); out.append(UInt8(ascii: "-"))
        digits(month, 2); out.append(UInt8(ascii: "-"))
        digits(day, 2); out.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3_600, 2); out.append(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2); out.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2); out.append(UInt8(ascii: "."))
        digits(milliseconds, 3); out.append(UInt8(ascii: "Z"))
    }
}

/// The buffered standard-error sink's writer. Bounded: past `bytesMax` waiting, lines are
/// dropped and counted, and the next write says how many — a flood of logs cannot exhaust
/// memory or stall the event loops. A process killed with SIGKILL loses at most one interval.
final class BufferedLogWriter: @unchecked Sendable {
    // @unchecked: `pending` and `dropped` are guarded by `lock`; writes to the fd by `writeLock`.
    static let standardError = BufferedLogWriter(fd: 2)
    static let bytesMax = 4 * 1_024 * 1_024
    static let flushIntervalMilliseconds = 20

    private let fd: Int32
    private let lock = Mutex<(pending: [UInt8], dropped: Int)>(([], 0))
    private let writeLock = Mutex<Void>(())
    private let started = Atomic<Bool>(false)

    private let flushesInBackground: Bool

    init(fd: Int32, flushesInBackground: Bool = true) {
        self.fd = fd
        self.flushesInBackground = flushesInBackground
    }

    func append(_ line: String) {
        var line = line
        line.withUTF8 { append(buffer: UnsafeRawBufferPointer($0)) }
    }

    func append(bytes line: [UInt8]) {
        line.withUnsafeBytes { append(buffer: $0) }
    }

    func append(buffer bytes: UnsafeRawBufferPointer) {
        startIfNeeded()
        lock.withLock { state in
            if state.pending.count + bytes.count + 1 > Self.bytesMax {
                state.dropped += 1
                return
            }
            state.pending.append(contentsOf: bytes)
            state.pending.append(UInt8(ascii: "\n"))
        }
    }

    /// Writes everything gathered so far; returns once it is written.
    func flush() {
        writeLock.withLock { _ in
            let (bytes, dropped) = lock.withLock { state -> ([UInt8], Int) in
                let taken = (state.pending, state.dropped)
                state.pending = []
                state.pending.reserveCapacity(64 * 1_024)
                state.dropped = 0
                return taken
            }
            writeAll(bytes)
            if dropped > 0 {
                writeAll(Array("{\"level\":\"warning\",\"label\":\"logger\",\"msg\":\"log lines dropped: buffer full\",\"dropped\":\"\(dropped)\"}\n".utf8))
            }
        }
    }

    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written <= 0 {
                    if written < 0 && errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }

    private func startIfNeeded() {
        guard flushesInBackground, !started.load(ordering: .relaxed), started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        // Whatever is gathered still goes out when the process exits normally.
        if fd == 2 { atexit { BufferedLogWriter.standardError.flush() } }
        let thread = Thread { [self] in
            while true {
                usleep(useconds_t(Self.flushIntervalMilliseconds * 1_000))
                flush()
            }
        }
        thread.name = "jointlend.log"
        thread.start()
    }
}

/// Where a log line is assembled: a stack buffer for the usual line, an array past it.
protocol LogLineOutput {
    mutating func append(_ byte: UInt8)
    mutating func append(contentsOf bytes: UnsafeBufferPointer<UInt8>)
}

extension Array: LogLineOutput where Element == UInt8 {}

/// A fixed buffer filled front to back; what does not fit sets `overflowed` and is dropped,
/// and the caller renders the line again into an array.
struct StackLogLine: LogLineOutput {
    let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    private(set) var count = 0
    private(set) var overflowed = false

    init(base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        guard count < capacity else {
            overflowed = true
            return
        }
        (base + count).initialize(to: byte)
        count += 1
    }

    @inline(__always)
    mutating func append(contentsOf bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress else { return }
        guard bytes.count <= capacity - count else {
            overflowed = true
            return
        }
        (base + count).initialize(from: source, count: bytes.count)
        count += bytes.count
    }
}
