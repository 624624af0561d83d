/// Why a request could not be parsed. Every case answers one status and closes the connection:
/// after a framing error the next request's start cannot be trusted.
public enum HTTPParseError: Error, Sendable, Equatable {
    case requestLineTooLong
    case headerBytesTooLarge
    case headerCountTooLarge
    case bodyTooLarge
    case badLineEnding
    case badRequestLine
    case badMethod
    case badTarget
    case badVersion
    case badHeaderName
    case badHeaderValue
    case obsoleteLineFolding
    case duplicateContentLength
    case badContentLength
    case contentLengthWithTransferEncoding
    case transferEncodingNotSupported
    case badHost

    public var status: HTTPStatus {
        switch self {
        case .requestLineTooLong: .uriTooLong
        case .headerBytesTooLarge, .headerCountTooLarge: .requestHeaderFieldsTooLarge
        case .bodyTooLarge: .contentTooLarge
        case .transferEncodingNotSupported: .lengthRequired
        default: .badRequest
        }
    }

    /// The stable error code clients see in `{"error":{"code":...}}`.
    public var code: String {
        switch self {
        case .requestLineTooLong: "request_line_too_long"
        case .headerBytesTooLarge: "header_bytes_too_large"
        case .headerCountTooLarge: "header_count_too_large"
        case .bodyTooLarge: "body_too_large"
        case .badLineEnding: "bad_line_ending"
        case .badRequestLine: "bad_request_line"
        case .badMethod: "bad_method"
        case .badTarget: "bad_target"
        case .badVersion: "bad_version"
        case .badHeaderName: "bad_header_name"
        case .badHeaderValue: "bad_header_value"
        case .obsoleteLineFolding: "obsolete_line_folding"
        case .duplicateContentLength: "duplicate_content_length"
        case .badContentLength: "bad_content_length"
        case .contentLengthWithTransferEncoding: "content_length_with_transfer_encoding"
        case .transferEncodingNotSupported: "length_required"
        case .badHost: "bad_host"
        }
    }

    public var message: String {
        switch self {
        case .requestLineTooLong: "request line exceeds the limit"
        case .headerBytesTooLarge: "header section exceeds the byte limit"
        case .headerCountTooLarge: "too many header fields"
        case .bodyTooLarge: "body exceeds the limit"
        case .badLineEnding: "lines must end with CRLF"
        case .badRequestLine: "request line must be: method SP target SP version"
        case .badMethod: "method is not supported"
        case .badTarget: "target must be an origin-form path of visible ASCII"
        case .badVersion: "version must be HTTP/1.1 or HTTP/1.0"
        case .badHeaderName: "header name must be a token followed by a colon"
        case .badHeaderValue: "header value contains a control character"
        case .obsoleteLineFolding: "folded header lines are not accepted"
        case .duplicateContentLength: "Content-Length given more than once"
        case .badContentLength: "Content-Length must be decimal digits"
        case .contentLengthWithTransferEncoding: "Content-Length and Transfer-Encoding together"
        case .transferEncodingNotSupported: "Transfer-Encoding is not accepted; send Content-Length"
        case .badHost: "HTTP/1.1 requires exactly one Host header"
        }
    }

    /// The header the error is about, when there is one.
    public var field: String? {
        switch self {
        case .duplicateContentLength, .badContentLength, .bodyTooLarge: "Content-Length"
        case .contentLengthWithTransferEncoding, .transferEncodingNotSupported: "Transfer-Encoding"
        case .badHost: "Host"
        default: nil
        }
    }
}
