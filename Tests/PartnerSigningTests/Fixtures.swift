import Foundation
@testable import PartnerSigning

/// Keys made once per test process: RSA generation costs ~100 ms.
enum Fixtures {
    static let rsa = try! RSA.Signing.PrivateKey.generate(bits: 2048)
    static let rsaOther = try! RSA.Signing.PrivateKey.generate(bits: 2048)
    static let sm2 = try! SM2.Signing.PrivateKey.generate()
    static let sm2Other = try! SM2.Signing.PrivateKey.generate()
    static let ed25519 = try! Ed25519.Signing.PrivateKey.generate()
    static let ed25519Other = try! Ed25519.Signing.PrivateKey.generate()
    static let hmacSecret: [UInt8] = Array("0123456789abcdef0123456789abcdef-test-only".utf8)
    static let hmacOtherSecret: [UInt8] = Array("fedcba9876543210fedcba9876543210-test-only".utf8)

    static func signingKey(_ algorithm: SignatureAlgorithm, other: Bool = false) -> SigningKey {
        switch algorithm {
        case .hmacSHA256: .hmacSHA256(try! HMACSHA256(key: other ? hmacOtherSecret : hmacSecret))
        case .rsaSHA256: .rsaSHA256(other ? rsaOther : rsa)
        case .sm2SM3: .sm2SM3(other ? sm2Other : sm2)
        case .ed25519: .ed25519(other ? ed25519Other : ed25519)
        }
    }

    static func vectors() throws -> [String: Any] {
        let here = URL(fileURLWithPath: #filePath)
        let repoRoot = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [
            repoRoot.deletingLastPathComponent().appendingPathComponent("shared/vectors/signing-vectors.json"),
            URL(fileURLWithPath: "/work/shared/vectors/signing-vectors.json"),
        ]
        for url in candidates where FileManager.default.fileExists(atPath: url.path) {
            let data = try Data(contentsOf: url)
            return try JSONSerialization.jsonObject(with: data) as! [String: Any]
        }
        throw CocoaError(.fileNoSuchFile)
    }

    static func hex(_ text: String) -> [UInt8] {
        var out = [UInt8]()
        var chars = Array(text.utf8)
        if chars.count % 2 == 1 { chars.insert(UInt8(ascii: "0"), at: 0) }
        for i in stride(from: 0, to: chars.count, by: 2) {
            out.append(UInt8(String(decoding: chars[i..<i + 2], as: UTF8.self), radix: 16)!)
        }
        return out
    }

    static func hexString(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
}
