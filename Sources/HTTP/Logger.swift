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

        public var description: String {
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

        public init(write: @escaping @Sendable (String) -> Void) {
            self.write = write
            self.writeBytes = nil
        }

        init(write: @escaping @Sendable (String) -> Void, writeBytes: @escaping @Sendable ([UInt8]) -> Void) {
            self.write = write
            self.writeBytes = writeBytes
        }

        /// Lines gathered in memory and written to standard error by a background thread every
        /// `BufferedLogWriter.flushIntervalMilliseconds` (one `write(2)` for many lines), so a
        /// request's log line costs no system call on the event loop. Critical lines, and
        /// `Logger.flushStandardError()`, write through at once.
        public static let bufferedStandardError = Sink(
            write: { line in BufferedLogWriter.standardError.append(line) },
            writeBytes: { line in BufferedLogWriter.standardError.append(bytes: line) })

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
    public var metadata: Metadata
    public let sink: Sink

    public init(label: String, logLevel: Level = .info, metadata: Metadata = [:], sink: Sink = .bufferedStandardError) {
        self.label = label
        self.logLevel = logLevel
        self.metadata = metadata
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> String? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Level, _ message: @autoclosure () -> String, metadata extra: @autoclosure () -> Metadata? = nil) {
        guard level >= logLevel else { return }
        let extra = extra()
        var line: [UInt8] = []
        line.reserveCapacity(256)
        line.append(contentsOf: #"{"ts":""#.utf8)
        Self.appendTimestamp(to: &line)
        line.append(contentsOf: #"","level":""#.utf8)
        line.append(contentsOf: level.description.utf8)
        line.append(contentsOf: #"","label":"#.utf8)
        JSONText.appendQuoted(label, to: &line)
        line.append(contentsOf: #","msg":"#.utf8)
        JSONText.appendQuoted(message(), to: &line)
        // Metadata keys sorted, the call's own winning over the logger's; keys the record owns
        // cannot be overwritten. Gathered in one array and sorted with the call's value first
        // among equal keys, so no key is hashed: a log line per request is on the hot path.
        var fields: [(key: String, value: String, fromCall: Bool)] = []
        fields.reserveCapacity(metadata.count + (extra?.count ?? 0) + 1)
        if let extra {
            for field in extra { fields.append((key: field.key, value: field.value, fromCall: true)) }
        }
        for field in metadata { fields.append((key: field.key, value: field.value, fromCall: false)) }
        if !fields.contains(where: { $0.key == "request.id" }), let requestID = Logger.currentRequestID {
            fields.append((key: "request.id", value: requestID, fromCall: false))
        }
        fields.sort { $0.key != $1.key ? $0.key < $1.key : $0.fromCall && !$1.fromCall }
        var previousKey: String?
        for field in fields {
            if field.key == previousKey { continue }
            previousKey = field.key
            if field.key == "ts" || field.key == "level" || field.key == "label" || field.key == "msg" { continue }
            line.append(UInt8(ascii: ","))
            JSONText.appendQuoted(field.key, to: &line)
            line.append(UInt8(ascii: ":"))
            JSONText.appendQuoted(field.value, to: &line)
        }
        line.append(UInt8(ascii: "}"))
        // The line is valid UTF-8 already (built from strings), so the bytes are the line.
        if let writeBytes = sink.writeBytes {
            writeBytes(line)
        } else {
            sink.write(String(decoding: line, as: UTF8.self))
        }
        if level == .critical { Self.flushStandardError() }
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

    static func appendTimestamp(to out: inout [UInt8]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        appendTimestamp(seconds: Int64(now.tv_sec), milliseconds: Int64(now.tv_nsec / 1_000_000), to: &out)
    }

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

    private func append(buffer bytes: UnsafeRawBufferPointer) {
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
