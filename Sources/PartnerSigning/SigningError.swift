/// Every way signing or verification can fail, with a stable string `code` for clients and logs.
///
/// Associated values name *which* field or operation failed, never its content: a description
/// never contains a key, a secret, a signature or a header value.
public enum SigningError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No signature where the scheme requires one.
    case signatureMissing
    /// The signature is not valid base64, or not a well-formed encoding for the algorithm.
    case signatureMalformed
    /// The signature is well formed but does not verify.
    case signatureInvalid
    /// The message names a key the ring does not hold.
    case keyUnknown
    /// The named key exists but its validity window does not include the message time.
    case keyNotValidAtTime
    /// The signing ring has no key valid now.
    case noValidSigningKey
    /// The timestamp is more than the tolerance away from the verifier's clock.
    case timestampOutOfWindow
    /// The nonce was already accepted for this key within the window.
    case nonceReplayed
    /// The replay guard is full of unexpired nonces; verification fails closed.
    case replayGuardFull
    /// A header or parameter is missing, repeated, too long or badly formed. `field` names it.
    case headerMalformed(field: String)
    /// The message's scheme or algorithm is not the one the contract names.
    case algorithmMismatch
    /// A key could not be parsed or generated, or is unfit (e.g. RSA under 2048 bits). `reason` is
    /// a fixed phrase from this module, never key material.
    case keyInvalid(reason: String)
    /// Input the caller controls is out of range (e.g. an invalid nonce passed to the signer).
    case invalidInput(field: String)
    /// Decryption failed: wrong key, tampered ciphertext or tag.
    case decryptionFailed
    /// OpenSSL failed in a way no input explains. `operation` is a fixed name.
    case cryptoFailure(operation: String)

    /// Stable machine-readable code, safe to send to a client.
    public var code: String {
        switch self {
        case .signatureMissing: "signature_missing"
        case .signatureMalformed: "signature_malformed"
        case .signatureInvalid: "signature_invalid"
        case .keyUnknown: "key_unknown"
        case .keyNotValidAtTime: "key_not_valid_at_time"
        case .noValidSigningKey: "no_valid_signing_key"
        case .timestampOutOfWindow: "timestamp_out_of_window"
        case .nonceReplayed: "nonce_replayed"
        case .replayGuardFull: "replay_guard_full"
        case .headerMalformed: "header_malformed"
        case .algorithmMismatch: "algorithm_mismatch"
        case .keyInvalid: "key_invalid"
        case .invalidInput: "invalid_input"
        case .decryptionFailed: "decryption_failed"
        case .cryptoFailure: "crypto_failure"
        }
    }

    public var description: String {
        switch self {
        case .headerMalformed(let field): "\(code): \(field)"
        case .keyInvalid(let reason): "\(code): \(reason)"
        case .invalidInput(let field): "\(code): \(field)"
        case .cryptoFailure(let operation): "\(code): \(operation)"
        default: code
        }
    }
}
