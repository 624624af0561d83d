#if canImport(Glibc)
import Glibc
#endif
import PartnerSigning

/// `jointlend verify`: verifies one message as the gateway would. Exit 0 valid, 1 invalid (one
/// line saying why), 2 bad usage.
enum VerifyCommand {
    static let help = """
        USAGE: jointlend verify --format F --algorithm A --key FILE [--key-id ID] --method M --path P
                                --timestamp T --nonce N [--body-file B] (--signature S | --authorization H) [options]

        Verifies one message: exit 0 if valid (prints "valid key_id=ID"), 1 if not (prints
        "invalid: <code>" naming the reason), 2 on bad usage. Freshness is checked against --now
        (default: this machine's clock) with a tolerance of --tolerance seconds (default 300).

          --key FILE         public key PEM (a private key PEM is reduced to its public half);
                             for hmac the secret file
          --signature S      base64 signature; with --key-id, --timestamp and --nonce the headers are
                             rebuilt for the format and --kind
          --authorization H  the whole Authorization header value (requests), instead of the above
          --now T            unix seconds to judge freshness by
          --tolerance S      accepted clock distance in seconds (default 300)
          (--format, --algorithm, --kind, --method, --path, --body-file, --mchid, --sm2-id and
           --sm2-encoding as for `jointlend sign`; see `jointlend sign --help`)

        sorted-params: --body-file holds every parameter the partner sent, including key_id,
        timestamp, nonce, sign_type and usually sign; --signature adds sign if the body lacks it.
        """

    static func run(_ args: ArraySlice<String>) -> Int32 {
        if args.contains("--help") || args.contains("-h") {
            print(help)
            return 0
        }
        let verifier: PartnerVerifier
        let request: (method: String, path: String, headers: [(name: String, value: String)], body: [UInt8], now: Int64, kind: MessageKind)
        do {
            let options = try Options(args, valued: SignCommand.valued.union(["signature", "authorization", "now", "tolerance"]))
            let inputs = try SignCommand.Inputs(options, keyRole: .verifying)
            guard case .verifying(let key) = inputs.key else { return 2 }
            var scheme = inputs.scheme
            if let text = options.value("tolerance") {
                guard let seconds = SigningSyntax.parseTimestamp(text), seconds <= 86_400 else { throw UsageError("--tolerance must be 0-86400 seconds") }
                scheme.timestampToleranceSeconds = seconds
            }
            let now: Int64
            if let text = options.value("now") {
                guard let seconds = SigningSyntax.parseTimestamp(text) else { throw UsageError("--now must be unix seconds") }
                now = seconds
            } else {
                now = Int64(time(nil))
            }
            verifier = try PartnerVerifier(
                scheme: scheme, keyRing: VerifyingKeyRing([.init(id: inputs.keyID, key: key)]),
                replayGuard: NonceReplayGuard(configuration: .init(entriesMax: 16, retentionSeconds: 2 * scheme.timestampToleranceSeconds)))
            let (headers, body) = try Self.message(options, inputs)
            request = (inputs.method, inputs.path, headers, body, now, inputs.kind)
        } catch {
            return SignCommand.usageFailure("verify", error)
        }
        do {
            let keyID = try verifier.verify(
                request.kind, method: request.method, pathAndQuery: request.path, headers: request.headers, body: request.body, now: request.now)
            print("valid key_id=\(keyID)")
            return 0
        } catch {
            print("invalid: \(error.description)")
            return 1
        }
    }

    /// The headers and body the verifier sees, rebuilt from the options for the format.
    static func message(_ options: Options, _ inputs: SignCommand.Inputs) throws -> ([(name: String, value: String)], [UInt8]) {
        let scheme = inputs.scheme
        if scheme.format == .sortedParams {
            var body = inputs.body
            if let signature = options.value("signature") {
                let present = try SortedParameters.parse(pathAndQuery: "", body: body)
                if !present.contains(where: { $0.name == "sign" }) {
                    guard body.first(where: { $0 > 0x20 }) != UInt8(ascii: "{") else {
                        throw UsageError("--signature: with a JSON body, put \"sign\" in the body")
                    }
                    body += Array(((body.isEmpty ? "" : "&") + SortedParameters.formEncode([("sign", signature)])).utf8)
                }
            }
            return ([], body)
        }
        if let authorization = options.value("authorization") {
            return ([("Authorization", authorization)], inputs.body)
        }
        let signature = try options.required("signature")
        let timestamp = try options.required("timestamp")
        let nonce = try options.required("nonce")
        let isRequest: Bool
        switch (scheme.format, inputs.kind) {
        case (.jl1, .request), (.jl1, .callback), (.wechatpayV3, .request): isRequest = true
        default: isRequest = false
        }
        if isRequest {
            let value: String
            if scheme.format == .jl1 {
                value = "\(scheme.authorizationToken) keyid=\"\(inputs.keyID)\",nonce=\"\(nonce)\",timestamp=\"\(timestamp)\",signature=\"\(signature)\""
            } else {
                value = "\(scheme.authorizationToken) mchid=\"\(scheme.merchantID)\",nonce_str=\"\(nonce)\",signature=\"\(signature)\",timestamp=\"\(timestamp)\",serial_no=\"\(inputs.keyID)\""
            }
            return ([("Authorization", value)], inputs.body)
        }
        let prefix = scheme.format == .jl1 ? "JL-" : "Wechatpay-"
        var headers: [(name: String, value: String)] = [
            (prefix + "Timestamp", timestamp), (prefix + "Nonce", nonce), (prefix + "Signature", signature),
            (prefix + (scheme.format == .jl1 ? "Key-Id" : "Serial"), inputs.keyID),
        ]
        if scheme.format == .wechatpayV3 { headers.append(("Wechatpay-Signature-Type", scheme.authorizationToken)) }
        return (headers, inputs.body)
    }
}
