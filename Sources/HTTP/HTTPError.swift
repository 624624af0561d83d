/// An error that renders itself as a response: its status and the JSON body
/// `{"error":{"code":...,"message":...,"field":...}}` (`field` is `null` when not about one).
///
/// Handlers throw it; the server (or `RouterResponder.respond`) turns it into the response.
/// `message` is sent to the client, so it must never contain secrets or borrower data.
public struct HTTPError: Error, Sendable, Equatable {
    public var status: HTTPStatus
    /// Stable, machine-readable code, e.g. `not_found`.
    public var code: String
    public var message: String
    /// The request field the error is about, e.g. `loanId` or `Content-Length`.
    public var field: String?
    /// Extra response headers, e.g. `Retry-After` or `Allow`.
    public var headers: HTTPHeaders

    public init(
        _ status: HTTPStatus, code: String, message: String, field: String? = nil, headers: HTTPHeaders = [:]
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers
    }

    public static func == (lhs: HTTPError, rhs: HTTPError) -> Bool {
        lhs.status == rhs.status && lhs.code == rhs.code && lhs.message == rhs.message
            && lhs.field == rhs.field && lhs.headers == rhs.headers
    }

    /// The JSON body text.
    public var jsonBody: String {
        "{\"error\":{\"code\":\(JSONText.quoted(code)),\"message\":\(JSONText.quoted(message)),\"field\":\(field.map(JSONText.quoted) ?? "null")}}"
    }

    public var response: Response {
        var response = Response.json(jsonBody, status: status)
        for field in headers { response.headers.add(name: field.name, value: field.value) }
        return response
    }

    public init(_ parseError: HTTPParseError) {
        self.init(parseError.status, code: parseError.code, message: parseError.message, field: parseError.field)
    }

    public static let notFound = HTTPError(.notFound, code: "not_found", message: "no route for this path")
    public static let internalError = HTTPError(.internalServerError, code: "internal", message: "internal error")
    public static let overloaded = HTTPError(
        .serviceUnavailable, code: "overloaded", message: "server is at its connection limit",
        headers: ["Retry-After": "1"])

    public static func methodNotAllowed(allowed: [HTTPMethod]) -> HTTPError {
        HTTPError(
            .methodNotAllowed, code: "method_not_allowed", message: "method not allowed on this path",
            headers: ["Allow": allowed.map(\.rawValue).joined(separator: ", ")])
    }
}
