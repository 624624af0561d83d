/// What signing produced: the exact bytes signed, the signature, and what to attach to the
/// message — headers (`jl1`, `wechatpay-v3`) or parameters (`sorted-params`).
public struct SignedMessage: Sendable {
    public var keyID: String
    /// The exact bytes that were signed.
    public var message: [UInt8]
    public var signature: [UInt8]
    /// Headers to add to the HTTP message (empty for `sorted-params`).
    public var headers: [(name: String, value: String)]
    /// `sorted-params`: parameters to add to the body or query — key id, timestamp, nonce,
    /// `sign_type` and `sign` (empty for the header formats).
    public var parameters: [(name: String, value: String)]

    /// The `Authorization` header value, if the message carries one.
    public var authorization: String? { headers.first(where: { $0.name == "Authorization" })?.value }
    public var signatureBase64: String { Base64.encode(signature) }
}
