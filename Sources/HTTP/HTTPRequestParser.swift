#if canImport(Glibc)
import Glibc
#endif

/// An incremental HTTP/1.1 request parser with a limit on everything.
///
/// Bytes go in with `append`, requests come out of `next()` in order (pipelining). The parser
/// gives the same requests and the same error whatever the split of the input: it scans each
/// byte once, and a decision that needs the next byte (a CR) waits for it.
///
/// Framing is strict (RFC 9112 §6): bodies are delimited by `Content-Length` only.
/// **Chunked request bodies are not accepted**: any `Transfer-Encoding` is answered
/// 411 Length Required (`length_required`), and `Transfer-Encoding` together with
/// `Content-Length` is 400 — the classic request-smuggling pair. Partner and platform clients
/// send JSON of known length, and refusing chunked framing removes a whole class of
/// desynchronisation bugs. Every error is final: the connection must be closed.
public struct HTTPRequestParser {
    /// Size limits, each answered with its own status.
    public struct Limits: Sendable, Equatable {
        /// Request line without its CRLF (414 above it).
        public var requestLineBytesMax: Int
        /// Header section after the request line, CRLFs included (431 above it).
        public var headerBytesMax: Int
        /// Header fields per request (431 above it).
        public var headerCountMax: Int
        /// `Content-Length` (413 above it).
        public var bodyBytesMax: Int

        public init(
            requestLineBytesMax: Int = 8 * 1024, headerBytesMax: Int = 16 * 1024,
            headerCountMax: Int = 100, bodyBytesMax: Int = 1024 * 1024
        ) {
            self.requestLineBytesMax = requestLineBytesMax
            self.headerBytesMax = headerBytesMax
            self.headerCountMax = headerCountMax
            self.bodyBytesMax = bodyBytesMax
        }
    }

    private struct Head {
        var method: HTTPMethod
        var path: String
        var query: String?
        var version: HTTPVersion
        var headers: HTTPHeaders
        var contentLength: Int
        var keepAlive: Bool
        var expectsContinue: Bool
    }

    public let limits: Limits
    private var buffer: [UInt8] = []
    /// First byte of the request being parsed.
    private var start = 0
    /// Next byte to examine while looking for the end of the head.
    private var scan = 0
    private var lineStart = 0
    /// Index of the CR ending the request line, once seen.
    private var requestLineEnd: Int?
    private var headerLineCount = 0
    private var head: Head?
    private var bodyStart = 0
    private var failure: HTTPParseError?

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Bytes received and not yet consumed by a returned request.
    public var bufferedByteCount: Int { buffer.count - start }

    /// Whether the head of the current request is complete and its body is being awaited.
    public var isReadingBody: Bool { head != nil }

    /// Whether the client waits for `100 Continue` before sending the body it announced
    /// (`Expect: 100-continue`, RFC 9110 §10.1.1) and none of that body has arrived yet.
    public var isAwaitingContinue: Bool {
        guard let head, head.expectsContinue else { return false }
        return buffer.count == bodyStart
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    public mutating func append<Bytes: Sequence>(contentsOf bytes: Bytes) where Bytes.Element == UInt8 {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete request, `nil` when more bytes are needed, or the error that ends the
    /// connection (thrown again on every later call).
    public mutating func next() throws(HTTPParseError) -> Request? {
        if let failure { throw failure }
        do {
            return try parseNext()
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func parseNext() throws(HTTPParseError) -> Request? {
        if head == nil {
            guard let headEnd = try scanHead() else { return nil }
            head = try parseHead(end: headEnd)
            bodyStart = headEnd
        }
        guard let current = head else { return nil }
        let end = bodyStart + current.contentLength
        guard buffer.count >= end else { return nil }
        let request = Request(
            method: current.method, path: current.path, query: current.query,
            version: current.version, headers: current.headers,
            body: current.contentLength == 0 ? [] : Array(buffer[bodyStart..<end]),
            keepAlive: current.keepAlive)
        head = nil
        resetScan(at: end)
        compactIfWorthwhile()
        return request
    }

    private mutating func resetScan(at index: Int) {
        start = index
        scan = index
        lineStart = index
        requestLineEnd = nil
        headerLineCount = 0
    }

    /// Drops consumed bytes once they dominate the buffer, so a long pipelined connection does
    /// not grow it without bound and the copy cost stays amortised.
    private mutating func compactIfWorthwhile() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
            resetScan(at: 0)
        } else if start >= 4096 && start * 2 >= buffer.count {
            buffer.removeFirst(start)
            resetScan(at: 0)
        }
    }

    /// Advances `scan` to the end of the head; returns the index after its final CRLF.
    private mutating func scanHead() throws(HTTPParseError) -> Int? {
        // The state is copied out and back: the loop reads the buffer through a pointer (no
        // bounds check or reference count per byte), which `self` cannot be mutated under.
        var cursor = HeadCursor(
            start: start, scan: scan, lineStart: lineStart, requestLineEnd: requestLineEnd, headerLineCount: headerLineCount)
        defer {
            scan = cursor.scan
            lineStart = cursor.lineStart
            requestLineEnd = cursor.requestLineEnd
            headerLineCount = cursor.headerLineCount
        }
        let limits = self.limits
        return try buffer.withUnsafeBufferPointer { bytes throws(HTTPParseError) -> Int? in
            try cursor.advance(over: bytes, limits: limits)
        }
    }

    /// Where the search for the end of a head stands; see `scanHead`.
    private struct HeadCursor {
        let start: Int
        var scan: Int
        var lineStart: Int
        var requestLineEnd: Int?
        var headerLineCount: Int

        init(start: Int, scan: Int, lineStart: Int, requestLineEnd: Int?, headerLineCount: Int) {
            self.start = start
            self.scan = scan
            self.lineStart = lineStart
            self.requestLineEnd = requestLineEnd
            self.headerLineCount = headerLineCount
        }

        mutating func advance(over buffer: UnsafeBufferPointer<UInt8>, limits: Limits) throws(HTTPParseError) -> Int? {
            let cr: UInt8 = 0x0D, lf: UInt8 = 0x0A
            while scan < buffer.count {
                // Only CR and LF need a decision; the bytes before the next one need only the
                // limit, whose first failing index is known: jump there with memchr. The result
                // is the byte-at-a-time one, error for error (the split tests hold it to that).
                let event = Self.nextLineByte(in: buffer, from: scan)
                let failingIndex = requestLineEnd.map { $0 + 2 + limits.headerBytesMax } ?? start + limits.requestLineBytesMax + 1
                if failingIndex < event {
                    scan = failingIndex + 1
                    throw requestLineEnd == nil ? .requestLineTooLong : .headerBytesTooLarge
                }
                scan = event
                guard scan < buffer.count else { return nil }
                let byte = buffer[scan]
                if byte == cr {
                    guard scan + 1 < buffer.count else { return nil }  // the next byte decides
                    if buffer[scan + 1] != lf { throw .badLineEnding }
                } else {
                    guard scan > lineStart, buffer[scan - 1] == cr else { throw .badLineEnding }
                    let lineLength = scan - 1 - lineStart
                    if requestLineEnd == nil {
                        if lineLength == 0 { throw .badRequestLine }
                        requestLineEnd = scan - 1
                    } else if lineLength == 0 {
                        scan += 1
                        if let end = requestLineEnd,
                            scan - (end + 2) > limits.headerBytesMax
                        {
                            throw .headerBytesTooLarge
                        }
                        return scan
                    } else {
                        headerLineCount += 1
                        if headerLineCount > limits.headerCountMax { throw .headerCountTooLarge }
                    }
                    lineStart = scan + 1
                }
                scan += 1
                if let requestLineEnd {
                    if scan - (requestLineEnd + 2) > limits.headerBytesMax { throw .headerBytesTooLarge }
                } else if scan - start > limits.requestLineBytesMax + 1 {  // +1: its CR
                    throw .requestLineTooLong
                }
            }
            return nil
        }

        /// The index of the first CR or LF at or after `from`, or the buffer's count.
        private static func nextLineByte(in buffer: UnsafeBufferPointer<UInt8>, from: Int) -> Int {
            guard let base = buffer.baseAddress, from < buffer.count else { return buffer.count }
            let origin = UnsafeRawPointer(base + from)
            var end = buffer.count
            if let found = memchr(origin, 0x0A, end - from) { end = from + origin.distance(to: UnsafeRawPointer(found)) }
            if end > from, let found = memchr(origin, 0x0D, end - from) { end = from + origin.distance(to: UnsafeRawPointer(found)) }
            return end
        }
    }

    private func parseHead(end: Int) throws(HTTPParseError) -> Head {
        guard let lineEnd = requestLineEnd else { throw .badRequestLine }
        let line = buffer[start..<lineEnd]
        guard let firstSpace = line.firstIndex(of: 0x20) else { throw .badRequestLine }
        let afterMethod = line[(firstSpace + 1)...]
        guard let secondSpace = afterMethod.firstIndex(of: 0x20) else { throw .badRequestLine }
        let methodBytes = line[..<firstSpace]
        let targetBytes = line[(firstSpace + 1)..<secondSpace]
        let versionBytes = line[(secondSpace + 1)...]
        guard !methodBytes.isEmpty, methodBytes.allSatisfy(Self.isTokenByte) else { throw .badRequestLine }
        guard let method = HTTPMethod(bytes: methodBytes) else { throw .badMethod }
        guard targetBytes.first == 0x2F, targetBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .badTarget
        }
        guard let version = HTTPVersion(bytes: versionBytes) else { throw .badVersion }
        let path: String
        var query: String?
        if let question = targetBytes.firstIndex(of: 0x3F) {
            path = String(decoding: targetBytes[..<question], as: UTF8.self)
            query = String(decoding: targetBytes[(question + 1)...], as: UTF8.self)
        } else {
            path = String(decoding: targetBytes, as: UTF8.self)
        }
        let fields = try parseHeaderLines(from: lineEnd + 2, to: end - 2)
        let (contentLength, keepAlive) = try framing(fields, version: version)
        let expectsContinue = version == .http1_1 && contentLength > 0 && fields.expectsContinue
        return Head(
            method: method, path: path, query: query, version: version, headers: fields.headers,
            contentLength: contentLength, keepAlive: keepAlive, expectsContinue: expectsContinue)
    }

    /// The header fields and what framing needs of them, gathered in the same pass over the
    /// bytes (names compared there, not again as strings).
    private struct HeaderFields {
        var headers = HTTPHeaders()
        /// The first framing error in field order; thrown only once every line has parsed, so
        /// a malformed line later in the head is still the error reported.
        var framingError: HTTPParseError?
        var contentLength: Int?
        var hasTransferEncoding = false
        var hostCount = 0
        var connectionClose = false
        var connectionKeepAlive = false
        var expectsContinue = false
    }

    /// Parses `name: value` lines between `from` and `to` (the CR of the final empty line).
    private func parseHeaderLines(from: Int, to: Int) throws(HTTPParseError) -> HeaderFields {
        var fields = HeaderFields()
        fields.headers.reserveCapacity(headerLineCount)
        let bodyBytesMax = limits.bodyBytesMax
        try buffer.withUnsafeBufferPointer { bytes throws(HTTPParseError) in
            guard let base = bytes.baseAddress else { return }
            var lineStart = from
            while lineStart < to {
                // The head was scanned: each line ends at its CR (`to` is the last one), and a
                // lone CR was refused there.
                var lineEnd = to
                if let found = memchr(base + lineStart, 0x0D, to - lineStart) {
                    lineEnd = lineStart + UnsafeRawPointer(base + lineStart).distance(to: UnsafeRawPointer(found))
                }
                if lineEnd > lineStart, bytes[lineStart] == 0x20 || bytes[lineStart] == 0x09 { throw .obsoleteLineFolding }
                // A byte that is not a tchar before the first colon is a bad name, and so is a
                // line without a colon (its CR is not a tchar): one pass decides both.
                var colon = lineStart
                while colon < lineEnd && Self.isTokenByte(bytes[colon]) { colon += 1 }
                guard colon < lineEnd, bytes[colon] == 0x3A, colon > lineStart else { throw .badHeaderName }
                var valueStart = colon + 1
                var valueEnd = lineEnd
                while valueStart < valueEnd, bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
                while valueEnd > valueStart, bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09 { valueEnd -= 1 }
                if !Self.isFieldValue(base + valueStart, count: valueEnd - valueStart) { throw .badHeaderValue }
                let name = UnsafeBufferPointer(rebasing: bytes[lineStart..<colon])
                let value = UnsafeBufferPointer(rebasing: bytes[valueStart..<valueEnd])
                let valueText = String(decoding: value, as: UTF8.self)
                fields.headers.add(name: String(decoding: name, as: UTF8.self), value: valueText)
                if fields.framingError == nil {
                    do throws(HTTPParseError) {
                        try Self.noteFraming(name: name, value: value, valueText: valueText, bodyBytesMax: bodyBytesMax, into: &fields)
                    } catch {
                        fields.framingError = error
                    }
                }
                lineStart = lineEnd + 2
            }
        }
        return fields
    }

    /// Whether every byte is a field-value byte (`isFieldValueByte`), eight at a time (see
    /// `ByteScan`): signature headers make this most of the bytes of a head.
    static func isFieldValue(_ start: UnsafePointer<UInt8>, count: Int) -> Bool {
        ByteScan.firstIndex(
            in: UnsafeBufferPointer(start: start, count: count),
            mayMatch: { ByteScan.bytesBelow(0x20, in: $0) | ByteScan.bytesEqual(0x7F, in: $0) },
            matches: { !isFieldValueByte($0) }) == nil
    }

    /// What one field means for framing, with the errors `framing` used to find by walking the
    /// parsed headers, in the same order.
    private static func noteFraming(
        name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>, valueText: String, bodyBytesMax: Int,
        into fields: inout HeaderFields
    ) throws(HTTPParseError) {
        switch name.count {
        case 14 where nameIs(name, "content-length"):
            if fields.contentLength != nil { throw .duplicateContentLength }
            fields.contentLength = try parseContentLength(value, max: bodyBytesMax)
        case 17 where nameIs(name, "transfer-encoding"):
            fields.hasTransferEncoding = true
        case 4 where nameIs(name, "host"):
            fields.hostCount += 1
        case 10 where nameIs(name, "connection"):
            fields.connectionClose = fields.connectionClose || HTTPHeaders.listContains(valueText, token: "close")
            fields.connectionKeepAlive = fields.connectionKeepAlive || HTTPHeaders.listContains(valueText, token: "keep-alive")
        case 6 where nameIs(name, "expect"):
            fields.expectsContinue = fields.expectsContinue || nameIs(value, "100-continue")
        default:
            break
        }
    }

    /// ASCII case-insensitive equality with a lowercase name.
    @inline(__always)
    private static func nameIs(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard bytes.count == count else { return false }
        let expected = lowercase.utf8Start
        for index in 0..<count where HTTPHeaders.lowercased(bytes[index]) != expected[index] { return false }
        return true
    }

    private func framing(_ fields: HeaderFields, version: HTTPVersion) throws(HTTPParseError) -> (Int, Bool) {
        if let error = fields.framingError { throw error }
        if fields.hasTransferEncoding {
            throw fields.contentLength == nil ? .transferEncodingNotSupported : .contentLengthWithTransferEncoding
        }
        if version == .http1_1 && fields.hostCount != 1 { throw .badHost }
        if fields.hostCount > 1 { throw .badHost }
        let keepAlive = version == .http1_1
            ? !fields.connectionClose : (fields.connectionKeepAlive && !fields.connectionClose)
        return (fields.contentLength ?? 0, keepAlive)
    }

    private static func parseContentLength(_ digits: UnsafeBufferPointer<UInt8>, max: Int) throws(HTTPParseError) -> Int {
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { throw .badContentLength }
        var length = 0
        for digit in digits {
            length = length * 10 + Int(digit - 0x30)
            if length > max { throw .bodyTooLarge }
        }
        return length
    }

    /// tchar (RFC 9110 §5.6.2): one bit per byte below 0x80, in two words, so the check is a
    /// shift and a mask rather than a chain of comparisons.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        let low: UInt64 = 0x03FF_6CFA_0000_0000  // ! # $ % & ' * + - . 0-9
        let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE  // A-Z ^ _ ` a-z | ~
        if byte < 64 { return (low >> UInt64(byte)) & 1 != 0 }
        if byte < 128 { return (high >> UInt64(byte - 64)) & 1 != 0 }
        return false
    }

    /// field-vchar, SP, HTAB and obs-text; no other control characters (RFC 9110 §5.5).
    static func isFieldValueByte(_ byte: UInt8) -> Bool {
        byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
    }
}
