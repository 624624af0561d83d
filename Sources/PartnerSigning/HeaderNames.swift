/// Header names each format uses (compared case-insensitively on receipt).
enum HeaderNames {
    static let authorization = "Authorization"

    struct Response {
        let timestamp: String
        let nonce: String
        let keyID: String
        let signature: String
        let signatureType: String?
    }

    static let jl1Response = Response(
        timestamp: "JL-Timestamp", nonce: "JL-Nonce", keyID: "JL-Key-Id", signature: "JL-Signature", signatureType: nil)
    static let wechatpayResponse = Response(
        timestamp: "Wechatpay-Timestamp", nonce: "Wechatpay-Nonce", keyID: "Wechatpay-Serial",
        signature: "Wechatpay-Signature", signatureType: "Wechatpay-Signature-Type")

    /// Names of the `Authorization` parameters per format.
    struct AuthorizationParameters {
        let keyID: String
        let nonce: String
        let timestamp: String
        let signature: String
    }

    static let jl1Authorization = AuthorizationParameters(keyID: "keyid", nonce: "nonce", timestamp: "timestamp", signature: "signature")
    static let wechatpayAuthorization = AuthorizationParameters(keyID: "serial_no", nonce: "nonce_str", timestamp: "timestamp", signature: "signature")
}
