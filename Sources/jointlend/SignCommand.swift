#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PartnerSigning

/// `jointlend sign`: signs one message the way the gateway would and prints JSON
/// `{"message", "signature", "authorization", "headers", "parameters"}`.
enum SignCommand {
    static let help = """
        USAGE: jointlend sign --format F --algorithm A --key FILE [--key-id ID] --method M --path P
                              --timestamp T --nonce N [--body-file B] [options]

        Signs one message and prints JSON: "message" (the exact signed text), "signature" (base64),
        "authorization" (the Authorization header value, or null), "headers" and "parameters" (what
        to attach to the message).

          --format F         jl1 | wechatpay-v3 | sorted-params
          --algorithm A      hmac | rsa | sm2 | ed25519 (or HMAC-SHA256, RSA-SHA256, SM2-SM3, ED25519)
          --key FILE         private key PEM; for hmac the secret file (its bytes, one trailing newline dropped)
          --key-id ID        key id carried by the message (default: k1)
          --kind K           request (default) | response | callback
          --method M         HTTP method (requests; jl1 callbacks)
          --path P           path and query, e.g. /v1/loans?x=1
          --timestamp T      unix seconds
          --nonce N          16-64 characters of [A-Za-z0-9_-]
          --body-file B      the exact body bytes (default: empty; - reads stdin)

        Format-specific:
          jl1            Authorization: JL1-<ALG> keyid,nonce,timestamp,signature (requests, callbacks);
                         JL-Timestamp/JL-Nonce/JL-Key-Id/JL-Signature headers (responses)
          wechatpay-v3   --mchid ID   merchant id in the Authorization header (requests);
                         responses and callbacks get Wechatpay-Timestamp/-Nonce/-Signature/-Serial headers
          sorted-params  the body holds the parameters: a JSON object ({...}) or a form (a=1&b=2);
                         query parameters of --path are included. key_id, timestamp, nonce and
                         sign_type are added and signed; "parameters" lists them with "sign".
                         Requests sign sign_type; responses and callbacks leave it out.
          sm2            --sm2-id ID   distinguishing ID (default 1234567812345678)
                         --sm2-encoding der|raw   DER SEQUENCE{r,s} (default) or raw r||s (64 bytes)
        """

    static let valued: Set<String> = [
        "format", "algorithm", "key", "key-id", "kind", "method", "path", "timestamp", "nonce", "body-file", "mchid", "sm2-id",
        "sm2-encoding",
    ]

    static func run(_ args: ArraySlice<String>) -> Int32 {
        if args.contains("--help") || args.contains("-h") {
            print(help)
            return 0
        }
        do {
            let options = try Options(args, valued: valued)
            let inputs = try Inputs(options, keyRole: .signing)
            guard case .signing(let key) = inputs.key else { return 2 }
            let signer = try PartnerSigner(scheme: inputs.scheme, keyRing: SigningKeyRing([.init(id: inputs.keyID, key: key)]))
            let signed = try signer.sign(
                inputs.kind, method: inputs.method, pathAndQuery: inputs.path, body: inputs.body, timestamp: try inputs.requireTimestamp(),
                nonce: try options.required("nonce"))
            var output: [String: Any] = [
                "message": String(decoding: signed.message, as: UTF8.self),
                "signature": signed.signatureBase64,
                "key_id": signed.keyID,
                "authorization": signed.authorization.map { $0 as Any } ?? NSNull(),
                "headers": Dictionary(signed.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }),
                "parameters": Dictionary(signed.parameters.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }),
            ]
            if inputs.scheme.format == .sortedParams {
                output["form"] = SortedParameters.formEncode(signed.parameters)
            }
            let data = try JSONSerialization.data(withJSONObject: output, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return 0
        } catch {
            return SignCommand.usageFailure("sign", error)
        }
    }

    /// Prints a usage or input error as one line and returns exit status 2. `SigningError`s
    /// describe themselves without key material.
    static func usageFailure(_ command: String, _ error: any Error) -> Int32 {
        switch error {
        case let error as UsageError: writeStderr("jointlend \(command): \(error.description)")
        case let error as SigningError: writeStderr("jointlend \(command): \(error.description)")
        default: writeStderr("jointlend \(command): \(error)")
        }
        return 2
    }

    /// Options shared by `sign` and `verify`, validated once.
    struct Inputs {
        enum KeyRole { case signing, verifying }
        enum Key {
            case signing(SigningKey)
            case verifying(VerifyingKey)
        }

        static let bodyBytesMax = 16 * 1024 * 1024
        static let keyFileBytesMax = 64 * 1024

        let scheme: SigningScheme
        let kind: MessageKind
        let key: Key
        let keyID: String
        let method: String
        let path: String
        let body: [UInt8]
        let timestamp: Int64?

        init(_ options: Options, keyRole: KeyRole) throws {
            let formatName = try options.required("format")
            guard let format = MessageFormat(rawValue: formatName) else {
                throw UsageError("--format must be jl1, wechatpay-v3 or sorted-params")
            }
            guard let algorithm = SignatureAlgorithm(name: try options.required("algorithm")) else {
                throw UsageError("--algorithm must be hmac, rsa, sm2 or ed25519")
            }
            let kindName = options.value("kind") ?? "request"
            guard let kind = MessageKind(rawValue: kindName) else { throw UsageError("--kind must be request, response or callback") }
            var sm2 = SM2Options()
            if let id = options.value("sm2-id") { sm2.distinguishingID = Array(id.utf8) }
            if let encodingName = options.value("sm2-encoding") {
                guard let encoding = SM2.SignatureEncoding(rawValue: encodingName) else { throw UsageError("--sm2-encoding must be der or raw") }
                sm2.encoding = encoding
            }
            scheme = SigningScheme(format: format, algorithm: algorithm, sm2: sm2, merchantID: options.value("mchid") ?? "")
            self.kind = kind
            keyID = options.value("key-id") ?? "k1"
            guard SigningSyntax.isValidKeyID(keyID) else { throw UsageError("--key-id must be 1-64 characters of [A-Za-z0-9._:-]") }

            let keyPath = try options.required("key")
            var material = try Self.readFile(keyPath, bytesMax: Self.keyFileBytesMax, option: "key")
            if algorithm == .hmacSHA256, material.last == 0x0A { material.removeLast() }
            do {
                switch keyRole {
                case .signing: key = .signing(try SigningKey(algorithm: algorithm, material: material))
                case .verifying: key = .verifying(try VerifyingKey(algorithm: algorithm, material: material))
                }
            } catch {
                throw UsageError("--key: \(error.description)")
            }

            let needsRequestLine: Bool
            switch (format, kind) {
            case (.jl1, .request), (.jl1, .callback), (.wechatpayV3, .request): needsRequestLine = true
            default: needsRequestLine = false
            }
            method = needsRequestLine ? try options.required("method") : options.value("method") ?? ""
            if needsRequestLine {
                path = try options.required("path")
            } else {
                path = format == .sortedParams ? options.value("path") ?? "" : ""
            }
            if let bodyPath = options.value("body-file") {
                body = try Self.readFile(bodyPath, bytesMax: Self.bodyBytesMax, option: "body-file")
            } else {
                body = []
            }
            if let text = options.value("timestamp") {
                guard let seconds = SigningSyntax.parseTimestamp(text) else { throw UsageError("--timestamp must be unix seconds (digits only)") }
                timestamp = seconds
            } else {
                timestamp = nil
            }
        }

        func requireTimestamp() throws -> Int64 {
            guard let timestamp else { throw UsageError("missing required option --timestamp") }
            return timestamp
        }

        /// Reads at most `bytesMax` bytes; a larger file is an error naming the option.
        static func readFile(_ path: String, bytesMax: Int, option: String) throws -> [UInt8] {
            let fd = path == "-" ? 0 : open(path, O_RDONLY)
            guard fd >= 0 else { throw UsageError("--\(option): cannot open \(path): \(String(cString: strerror(errno)))") }
            defer { if fd != 0 { close(fd) } }
            var out = [UInt8]()
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &chunk, chunk.count)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw UsageError("--\(option): cannot read \(path): \(String(cString: strerror(errno)))")
                }
                if n == 0 { break }
                out.append(contentsOf: chunk[0..<n])
                guard out.count <= bytesMax else { throw UsageError("--\(option): \(path) is larger than \(bytesMax) bytes") }
            }
            return out
        }
    }
}
