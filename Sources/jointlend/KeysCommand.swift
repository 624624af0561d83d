#if canImport(Glibc)
import Glibc
#endif
import PartnerSigning

/// `jointlend keys generate --algorithm sm2|rsa|ed25519|hmac --out DIR`: writes `private.pem`
/// (0600) and `public.pem`, or `secret` (0600) for HMAC. Existing files are never overwritten.
enum KeysCommand {
    static let help = """
        USAGE: jointlend keys generate --algorithm sm2|rsa|ed25519|hmac --out DIR [--rsa-bits N]

        Writes DIR/private.pem (mode 0600, PKCS#8) and DIR/public.pem (SubjectPublicKeyInfo), or for
        hmac DIR/secret (mode 0600: 64 base64 characters from 48 random bytes; the HMAC key is the
        file's bytes). DIR is created (0700) if missing; existing key files are never overwritten.

          --rsa-bits N   RSA modulus size, 2048 (default) to 16384
        """

    static let hmacSecretRandomBytes = 48

    static func run(_ args: ArraySlice<String>) -> Int32 {
        if args.contains("--help") || args.contains("-h") || args.isEmpty {
            print(help)
            return args.isEmpty ? 2 : 0
        }
        do {
            let options = try Options(args, valued: ["algorithm", "out", "rsa-bits"])
            guard options.positionals == ["generate"] else { throw UsageError("expected `keys generate`; see `jointlend keys --help`") }
            guard let algorithm = SignatureAlgorithm(name: try options.required("algorithm")) else {
                throw UsageError("--algorithm must be sm2, rsa, ed25519 or hmac")
            }
            let directory = try options.required("out")
            if mkdir(directory, 0o700) != 0, errno != EEXIST {
                throw UsageError("--out: cannot create \(directory): \(String(cString: strerror(errno)))")
            }
            switch algorithm {
            case .hmacSHA256:
                let secret = Base64.encode(try SecureRandom.bytes(hmacSecretRandomBytes))
                try write(Array(secret.utf8), to: directory + "/secret", mode: 0o600)
                print("wrote \(directory)/secret")
            case .rsaSHA256, .sm2SM3, .ed25519:
                let (privatePEM, publicPEM) = try generate(algorithm, rsaBits: options.value("rsa-bits"))
                try write(Array(privatePEM.utf8), to: directory + "/private.pem", mode: 0o600)
                try write(Array(publicPEM.utf8), to: directory + "/public.pem", mode: 0o644)
                print("wrote \(directory)/private.pem \(directory)/public.pem")
            }
            return 0
        } catch let error as UsageError {
            writeStderr("jointlend keys: \(error.description)")
            return 2
        } catch {
            writeStderr("jointlend keys: \(error)")
            return 2
        }
    }

    static func generate(_ algorithm: SignatureAlgorithm, rsaBits: String?) throws -> (String, String) {
        switch algorithm {
        case .rsaSHA256:
            let bits = try rsaBits.map { text -> Int in
                guard let bits = Int(text), bits >= RSA.keyBitsMin, bits <= RSA.keyBitsMax else { throw UsageError("--rsa-bits must be 2048-16384") }
                return bits
            } ?? RSA.keyBitsMin
            let key = try RSA.Signing.PrivateKey.generate(bits: bits)
            return (try key.pemRepresentation, try key.publicKey.pemRepresentation)
        case .sm2SM3:
            let key = try SM2.Signing.PrivateKey.generate()
            return (try key.pemRepresentation, try key.publicKey.pemRepresentation)
        case .ed25519:
            let key = try Ed25519.Signing.PrivateKey.generate()
            return (try key.pemRepresentation, try key.publicKey.pemRepresentation)
        case .hmacSHA256:
            throw UsageError("hmac has no key pair")
        }
    }

    /// Creates `path` with `mode` (never replacing an existing file) and writes `bytes`.
    static func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { throw UsageError("--out: cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // The umask may have narrowed the mode; make it exact.
        _ = fchmod(fd, mode)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw UsageError("--out: cannot write \(path): \(String(cString: strerror(errno)))")
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw UsageError("--out: cannot sync \(path)") }
    }
}
