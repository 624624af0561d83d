/// One partner contract's signing scheme: a message format, an algorithm and their options.
public struct SigningScheme: Sendable, Hashable {
    public var format: MessageFormat
    public var algorithm: SignatureAlgorithm
    /// SM2 distinguishing ID and signature encoding; ignored by other algorithms.
    public var sm2: SM2Options
    /// Accepted distance between a message's timestamp and the verifier's clock, either way.
    public var timestampToleranceSeconds: Int64
    /// `wechatpay-v3`: the merchant id put in, and required in, the `Authorization` header.
    public var merchantID: String
    /// `sorted-params`: names of the parameters carrying key id, timestamp (unix seconds) and nonce.
    public var keyIDParameter: String
    public var timestampParameter: String
    public var nonceParameter: String

    public static let defaultTimestampToleranceSeconds: Int64 = 300

    public init(
        format: MessageFormat, algorithm: SignatureAlgorithm, sm2: SM2Options = SM2Options(),
        timestampToleranceSeconds: Int64 = defaultTimestampToleranceSeconds, merchantID: String = "",
        keyIDParameter: String = "key_id", timestampParameter: String = "timestamp", nonceParameter: String = "nonce"
    ) {
        self.format = format
        self.algorithm = algorithm
        self.sm2 = sm2
        self.timestampToleranceSeconds = timestampToleranceSeconds
        self.merchantID = merchantID
        self.keyIDParameter = keyIDParameter
        self.timestampParameter = timestampParameter
        self.nonceParameter = nonceParameter
    }

    /// The token naming the scheme in an `Authorization` header or `Wechatpay-Signature-Type`.
    public var authorizationToken: String {
        switch format {
        case .jl1, .sortedParams: "JL1-" + algorithm.rawValue
        case .wechatpayV3:
            switch algorithm {
            case .rsaSHA256: "WECHATPAY2-SHA256-RSA2048"
            case .sm2SM3: "WECHATPAY2-SM2-WITH-SM3"
            case .hmacSHA256: "WECHATPAY2-HMAC-SHA256"
            case .ed25519: "WECHATPAY2-ED25519"
            }
        }
    }

    /// `sorted-params`: the `sign_type` value (`RSA2`, `SM2`, `HMAC-SHA256`, `ED25519`).
    public var signType: String {
        switch algorithm {
        case .rsaSHA256: "RSA2"
        case .sm2SM3: "SM2"
        case .hmacSHA256: "HMAC-SHA256"
        case .ed25519: "ED25519"
        }
    }

    func validate() throws(SigningError) {
        guard timestampToleranceSeconds >= 0, timestampToleranceSeconds <= 86_400 else {
            throw .invalidInput(field: "timestampToleranceSeconds")
        }
        guard sm2.distinguishingID.count <= SM2.distinguishingIDBytesMax else { throw .invalidInput(field: "sm2 distinguishing id") }
        if format == .wechatpayV3, !merchantID.isEmpty {
            guard merchantID.utf8.count <= SigningSyntax.merchantIDBytesMax, merchantID.utf8.allSatisfy(SigningSyntax.isTokenByte) else {
                throw .invalidInput(field: "merchantID")
            }
        }
        for name in [keyIDParameter, timestampParameter, nonceParameter] where name.isEmpty || name == "sign" || name == "sign_type" {
            throw .invalidInput(field: "sorted-params parameter name")
        }
    }
}
