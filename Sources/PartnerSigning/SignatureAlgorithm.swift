/// The signature algorithms a partner contract can name (SIGNING.md).
public enum SignatureAlgorithm: String, Sendable, CaseIterable, Hashable {
    case hmacSHA256 = "HMAC-SHA256"
    case rsaSHA256 = "RSA-SHA256"
    case sm2SM3 = "SM2-SM3"
    case ed25519 = "ED25519"

    /// Accepts the SIGNING.md name in any case, and the short CLI names `hmac`, `rsa`, `sm2`, `ed25519`.
    public init?(name: String) {
        switch name.lowercased() {
        case "hmac-sha256", "hmac": self = .hmacSHA256
        case "rsa-sha256", "rsa", "rsa2": self = .rsaSHA256
        case "sm2-sm3", "sm2": self = .sm2SM3
        case "ed25519": self = .ed25519
        default: return nil
        }
    }
}

/// The message formats a partner contract can name (SIGNING.md).
public enum MessageFormat: String, Sendable, CaseIterable, Hashable {
    case jl1
    case wechatpayV3 = "wechatpay-v3"
    case sortedParams = "sorted-params"
}

/// Which message of an exchange is signed. Requests carry method and path (`Authorization`
/// header); responses and callbacks sign `TIMESTAMP\nNONCE\nBODY\n` in separate headers, or, in
/// `sorted-params`, leave `sign_type` out of the signed text.
public enum MessageKind: String, Sendable, CaseIterable, Hashable {
    case request
    case response
    case callback
}
