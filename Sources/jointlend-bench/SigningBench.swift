#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PartnerSigning

/// `jointlend-bench signing [--seconds N] [--rounds N] [--only ALGORITHM] [--wall-clock]`: sign and verify operations per second, one thread,
/// on a 512-byte message, beside `openssl speed` for the same algorithm measured in the same
/// run. The machine is shared and noisy, so each algorithm runs `--rounds` rounds of openssl
/// then ours, back to back, and each side keeps its best round. Prints a table and a JSON line.
enum SigningBench {
    static let messageBytes = 512
    static let targets: [String: Double] = ["HMAC-SHA256": 0.75, "RSA-SHA256": 0.85, "SM2-SM3": 0.85, "ED25519": 0.85]

    struct Row {
        var algorithm: String
        var signPerSecond: Double
        var verifyPerSecond: Double
        var opensslSignPerSecond: Double
        var opensslVerifyPerSecond: Double
        var opensslCommand: String

        var signRatio: Double { opensslSignPerSecond > 0 ? signPerSecond / opensslSignPerSecond : 0 }
        var verifyRatio: Double { opensslVerifyPerSecond > 0 ? verifyPerSecond / opensslVerifyPerSecond : 0 }
    }

    static func run(_ args: ArraySlice<String>) -> Int32 {
        guard let seconds = intOption(args, "--seconds", default: 2, range: 1...60),
            let rounds = intOption(args, "--rounds", default: 3, range: 1...20),
            args.allSatisfy({ !$0.hasPrefix("--") || ["--seconds", "--rounds", "--only", "--wall-clock"].contains($0) })
        else {
            writeError("USAGE: jointlend-bench signing [--seconds 1-60] [--rounds 1-20] [--only ALGORITHM] [--wall-clock]")
            return 2
        }
        var only: String?
        if let i = args.firstIndex(of: "--only"), args.index(after: i) < args.endIndex { only = args[args.index(after: i)] }
        let settings = Settings(seconds: seconds, rounds: rounds, wallClock: args.contains("--wall-clock"), only: only)
        let message = (0..<messageBytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        do {
            let hmac = try HMACSHA256(key: Array("bench-only-secret-0123456789abcdef".utf8))
            let mac = try hmac.authenticationCode(for: message)
            let rsa = try RSA.Signing.PrivateKey.generate(bits: 2048)
            let rsaPublic = try rsa.publicKey
            let rsaSignature = try rsa.signature(for: message)
            let sm2 = try SM2.Signing.PrivateKey.generate()
            let sm2Public = try sm2.publicKey
            let sm2Signature = try sm2.signature(for: message)
            let ed25519 = try Ed25519.Signing.PrivateKey.generate()
            let ed25519Public = try ed25519.publicKey
            let ed25519Signature = try ed25519.signature(for: message)
            let rows = [
                try compare(
                    "HMAC-SHA256", settings, openssl: "-bytes \(messageBytes) -hmac sha256", parse: macLine,
                    sign: { _ = try hmac.authenticationCode(for: message) },
                    verify: { hmac.isValidAuthenticationCode(mac, for: message) }),
                try compare(
                    "RSA-SHA256", settings, openssl: "rsa2048", parse: signVerifyLine("+F2"),
                    sign: { _ = try rsa.signature(for: message) },
                    verify: { rsaPublic.isValidSignature(rsaSignature, for: message) }),
                try compare(
                    "SM2-SM3", settings, openssl: "sm2", parse: signVerifyLine("+F7"),
                    sign: { _ = try sm2.signature(for: message) },
                    verify: { sm2Public.isValidSignature(sm2Signature, for: message) }),
                try compare(
                    "ED25519", settings, openssl: "ed25519", parse: signVerifyLine("+F6"),
                    sign: { _ = try ed25519.signature(for: message) },
                    verify: { ed25519Public.isValidSignature(ed25519Signature, for: message) }),
            ]
            let keys: [SigningKey] = [.hmacSHA256(hmac), .rsaSHA256(rsa), .sm2SM3(sm2), .ed25519(ed25519)]
            let schemeRows = try keys.map { try schemePath($0, settings, body: message) }
            report(rows, schemeRows, settings)
            return 0
        } catch {
            writeError("signing bench failed: \(error)")
            return 1
        }
    }

    struct Settings {
        var seconds: Int
        var rounds: Int
        /// Wall-clock time on both sides (`-elapsed`) instead of CPU time.
        var wallClock: Bool
        /// Run one algorithm only (e.g. under a profiler); the others report zeros.
        var only: String?
    }

    enum BenchError: Error { case verifyFailed }

    /// One row: `rounds` rounds of `openssl speed` then ours (sign, verify), back to back; each
    /// side keeps its best round, since noise from other work on the machine only ever slows.
    static func compare(
        _ algorithm: String, _ settings: Settings, openssl arguments: String, parse: (Substring) -> (Double, Double)?,
        sign: () throws -> Void, verify: () -> Bool
    ) throws -> Row {
        let command = "openssl speed -seconds \(settings.seconds)\(settings.wallClock ? " -elapsed" : "") -mr \(arguments)"
        var ours = (0.0, 0.0)
        var theirs = (0.0, 0.0)
        for _ in 0..<settings.rounds where settings.only == nil || settings.only == algorithm {
            let o = opensslSpeed(command, parse: parse) ?? (0, 0)
            let s = try measure(settings.seconds, wallClock: settings.wallClock, sign)
            let v = try measure(settings.seconds, wallClock: settings.wallClock) { guard verify() else { throw BenchError.verifyFailed } }
            ours = (max(ours.0, s), max(ours.1, v))
            theirs = (max(theirs.0, o.0), max(theirs.1, o.1))
        }
        return Row(algorithm: algorithm, signPerSecond: ours.0, verifyPerSecond: ours.1,
                   opensslSignPerSecond: theirs.0, opensslVerifyPerSecond: theirs.1, opensslCommand: command)
    }

    // MARK: Whole scheme path

    struct SchemeRow {
        var algorithm: String
        var signPerSecond: Double
        var verifyPerSecond: Double
    }

    /// Distinct pre-signed requests cycled through by the verify loop; the replay guard is
    /// replaced after each cycle so every verification is of a fresh nonce.
    static let schemeBatch = 1024

    /// `jl1` request signing and verification as the gateway does it: message building, header
    /// rendering and parsing, key lookup, freshness and the replay guard around the primitive.
    static func schemePath(_ key: SigningKey, _ settings: Settings, body: [UInt8]) throws -> SchemeRow {
        let algorithm = key.algorithm
        guard settings.only == nil || settings.only == algorithm.rawValue else { return SchemeRow(algorithm: algorithm.rawValue, signPerSecond: 0, verifyPerSecond: 0) }
        let scheme = SigningScheme(format: .jl1, algorithm: algorithm)
        let signer = try PartnerSigner(scheme: scheme, keyRing: KeyRing([.init(id: "bench-key", key: key)]))
        let ring = try VerifyingKeyRing([.init(id: "bench-key", key: key.verifyingKey)])
        let timestamp: Int64 = 1_763_700_000
        let nonces = (0..<schemeBatch).map { "bench-nonce-\(1_000_000 + $0)" }
        var signed: [SignedMessage] = []
        for nonce in nonces {
            signed.append(try signer.sign(.request, method: "POST", pathAndQuery: "/v1/fundings?loan=L-1", body: body, timestamp: timestamp, nonce: nonce))
        }
        var best = (0.0, 0.0)
        for _ in 0..<settings.rounds {
            var i = 0
            let sign = try measure(settings.seconds, wallClock: settings.wallClock) {
                _ = try signer.sign(.request, method: "POST", pathAndQuery: "/v1/fundings?loan=L-1", body: body, timestamp: timestamp, nonce: nonces[i % schemeBatch])
                i += 1
            }
            var verifier = try PartnerVerifier(scheme: scheme, keyRing: ring, replayGuard: NonceReplayGuard())
            var j = 0
            let verify = try measure(settings.seconds, wallClock: settings.wallClock) {
                if j == schemeBatch {
                    j = 0
                    verifier = try PartnerVerifier(scheme: scheme, keyRing: ring, replayGuard: NonceReplayGuard())
                }
                _ = try verifier.verify(.request, method: "POST", pathAndQuery: "/v1/fundings?loan=L-1", headers: signed[j].headers, body: body, now: timestamp)
                j += 1
            }
            best = (max(best.0, sign), max(best.1, verify))
        }
        return SchemeRow(algorithm: algorithm.rawValue, signPerSecond: best.0, verifyPerSecond: best.1)
    }

    // MARK: Measuring

    /// The value of `name`, `value` if absent, nil if present but not an integer in `range`.
    static func intOption(_ args: ArraySlice<String>, _ name: String, default value: Int, range: ClosedRange<Int>) -> Int? {
        guard let i = args.firstIndex(of: name) else { return value }
        guard args.index(after: i) < args.endIndex, let n = Int(args[args.index(after: i)]), range.contains(n) else { return nil }
        return n
    }

    /// Operations per second of `body`, run for `seconds` after a short warm-up. By default time
    /// is this thread's CPU time, as `openssl speed` without `-elapsed` uses its CPU time: on a
    /// machine shared with other builds, wall-clock rates swing by tens of percent.
    static func measure(_ seconds: Int, wallClock: Bool, _ body: () throws -> Void) throws -> Double {
        let clock = wallClock ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID
        let warmUpEnd = now(clock) + 0.2
        while now(clock) < warmUpEnd { try body() }
        let start = now(clock)
        let end = start + Double(seconds)
        var count = 0
        var t = start
        while t < end {
            for _ in 0..<16 { try body() }
            count += 16
            t = now(clock)
        }
        return Double(count) / (t - start)
    }

    static func now(_ clock: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// `+F:<n>:hmac(sha256):<bytes/s>` — one figure, the MAC rate, compared with both ours.
    static func macLine(_ line: Substring) -> (Double, Double)? {
        let parts = line.split(separator: ":")
        guard parts.first == "+F", parts.count == 4, let bytesPerSecond = Double(parts[3]) else { return nil }
        let ops = bytesPerSecond / Double(messageBytes)
        return (ops, ops)
    }

    /// `+Fn:<i>:<bits>:[name:]<sign/s>:<verify/s>` — OpenSSL 3.0's machine-readable PKI line.
    static func signVerifyLine(_ tag: String) -> (Substring) -> (Double, Double)? {
        { line in
            let parts = line.split(separator: ":")
            guard parts.first.map(String.init) == tag, parts.count >= 5,
                let sign = Double(parts[parts.count - 2]), let verify = Double(parts[parts.count - 1])
            else { return nil }
            return (sign, verify)
        }
    }

    /// Runs `command` (an `openssl speed` line) and parses its first matching output line.
    static func opensslSpeed(_ command: String, parse: (Substring) -> (Double, Double)?) -> (Double, Double)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command.split(separator: " ").map(String.init)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            if let parsed = parse(line) { return parsed }
        }
        return nil
    }

    // MARK: Output

    static func report(_ rows: [Row], _ schemeRows: [SchemeRow], _ settings: Settings) {
        let seconds = settings.seconds
        func f(_ x: Double) -> String { String(format: "%.0f", x) }
        func r(_ x: Double) -> String { String(format: "%.2f", x) }
        let clock = settings.wallClock ? "wall-clock" : "CPU"
        print("signing: one thread, \(messageBytes)-byte message, \(seconds) s \(clock) time per measurement, best of \(settings.rounds) rounds; openssl speed in the same run")
        print("algorithm     sign/s      verify/s    openssl sign/s  openssl verify/s  sign ratio  verify ratio  target")
        for row in rows {
            let target = targets[row.algorithm] ?? 0
            let cells = [
                row.algorithm.padding(toLength: 12, withPad: " ", startingAt: 0), f(row.signPerSecond).padding(toLength: 11, withPad: " ", startingAt: 0),
                f(row.verifyPerSecond).padding(toLength: 11, withPad: " ", startingAt: 0),
                f(row.opensslSignPerSecond).padding(toLength: 15, withPad: " ", startingAt: 0),
                f(row.opensslVerifyPerSecond).padding(toLength: 17, withPad: " ", startingAt: 0), r(row.signRatio).padding(toLength: 11, withPad: " ", startingAt: 0),
                r(row.verifyRatio).padding(toLength: 13, withPad: " ", startingAt: 0), ">= " + r(target),
            ]
            print(cells.joined(separator: "  "))
        }
        let json: [[String: Any]] = rows.map { row in
            [
                "algorithm": row.algorithm, "sign_per_second": row.signPerSecond.rounded(), "verify_per_second": row.verifyPerSecond.rounded(),
                "openssl_sign_per_second": row.opensslSignPerSecond.rounded(), "openssl_verify_per_second": row.opensslVerifyPerSecond.rounded(),
                "sign_ratio": (row.signRatio * 1000).rounded() / 1000, "verify_ratio": (row.verifyRatio * 1000).rounded() / 1000,
                "target_ratio": targets[row.algorithm] ?? 0, "openssl_command": row.opensslCommand,
            ]
        }
        print("")
        print("jl1 request, whole path (message, header, parse, key ring, freshness, replay guard), \(messageBytes)-byte body")
        print("algorithm     sign/s      verify/s    of primitive sign  of primitive verify")
        for (row, primitive) in zip(schemeRows, rows) {
            let cells = [
                row.algorithm.padding(toLength: 12, withPad: " ", startingAt: 0), f(row.signPerSecond).padding(toLength: 11, withPad: " ", startingAt: 0),
                f(row.verifyPerSecond).padding(toLength: 11, withPad: " ", startingAt: 0),
                r(primitive.signPerSecond > 0 ? row.signPerSecond / primitive.signPerSecond : 0).padding(toLength: 17, withPad: " ", startingAt: 0),
                r(primitive.verifyPerSecond > 0 ? row.verifyPerSecond / primitive.verifyPerSecond : 0),
            ]
            print(cells.joined(separator: "  "))
        }
        let schemeJSON: [[String: Any]] = schemeRows.map {
            ["algorithm": $0.algorithm, "format": "jl1", "sign_per_second": $0.signPerSecond.rounded(), "verify_per_second": $0.verifyPerSecond.rounded()]
        }
        let object: [String: Any] = [
            "bench": "signing", "message_bytes": messageBytes, "seconds": seconds, "rounds": settings.rounds, "clock": clock, "rows": json,
            "scheme_rows": schemeJSON,
        ]
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
            print(String(decoding: data, as: UTF8.self))
        }
    }

    static func writeError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
