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

        public init(write: @escaping @Sendable (String) -> Void) {
            self.write = write
        }

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

    public init(label: String, logLevel: Level = .info, metadata: Metadata = [:], sink: Sink = .standardError) {
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
        var fields = metadata
        if let extra = extra() { fields.merge(extra) { _, new in new } }
        if fields["request.id"] == nil, let id = Logger.currentRequestID { fields["request.id"] = id }
        var line = "{\"ts\":\"\(Self.timestamp())\",\"level\":\"\(level)\",\"label\":\(JSONText.quoted(label)),\"msg\":\(JSONText.quoted(message()))"
        for key in fields.keys.sorted() {
            // Keys the record owns cannot be overwritten by metadata.
            if key == "ts" || key == "level" || key == "label" || key == "msg" { continue }
            line += ",\(JSONText.quoted(key)):\(JSONText.quoted(fields[key] ?? ""))"
        }
        line += "}"
        sink.write(line)
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
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(now.tv_nsec / 1_000_000), 3))Z"
    }
}
