import COpenSSL

/// AES-256-GCM for the sensitive fields a partner wants encrypted.
public enum AES {
    public enum GCM {
        public static let keyByteCount = 32
        public static let nonceByteCount = 12
        public static let tagByteCount = 16
        /// A bound on one field: GCM itself allows far more, a loan field never needs it.
        public static let plaintextBytesMax = 16 * 1024 * 1024

        /// Nonce, ciphertext and tag of one encryption.
        public struct SealedBox: Sendable, Hashable {
            public var nonce: [UInt8]
            public var ciphertext: [UInt8]
            public var tag: [UInt8]

            public init(nonce: [UInt8], ciphertext: [UInt8], tag: [UInt8]) {
                self.nonce = nonce
                self.ciphertext = ciphertext
                self.tag = tag
            }
        }

        /// Encrypts `plaintext` under `key`. A random 12-byte nonce is drawn unless one is given;
        /// a given nonce must never repeat under one key.
        public static func seal(
            _ plaintext: [UInt8], key: [UInt8], nonce: [UInt8]? = nil, authenticating aad: [UInt8] = []
        ) throws(SigningError) -> SealedBox {
            guard key.count == keyByteCount else { throw .invalidInput(field: "key") }
            guard plaintext.count <= plaintextBytesMax else { throw .invalidInput(field: "plaintext") }
            let iv: [UInt8]
            if let nonce { iv = nonce } else { iv = try SecureRandom.bytes(nonceByteCount) }
            guard iv.count == nonceByteCount else { throw .invalidInput(field: "nonce") }
            guard let ctx = EVP_CIPHER_CTX_new() else { throw .cryptoFailure(operation: "AES-GCM setup") }
            defer { EVP_CIPHER_CTX_free(ctx) }
            var ciphertext = [UInt8](repeating: 0, count: plaintext.count)
            var tag = [UInt8](repeating: 0, count: tagByteCount)
            var length: Int32 = 0
            var ok = EVP_EncryptInit_ex2(ctx, EVPAlgorithms.aes256GCM, key, iv, nil) == 1
            ok = ok && (aad.isEmpty || EVP_EncryptUpdate(ctx, nil, &length, aad, Int32(aad.count)) == 1)
            ok = ok && (plaintext.isEmpty || EVP_EncryptUpdate(ctx, &ciphertext, &length, plaintext, Int32(plaintext.count)) == 1)
            ok = ok && ciphertext.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress.map { $0 + Int(length) }, &length) == 1 }
            ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, Int32(tagByteCount), &tag) == 1
            guard ok else { EVPAlgorithms.clearErrors(); throw .cryptoFailure(operation: "AES-GCM seal") }
            return SealedBox(nonce: iv, ciphertext: ciphertext, tag: tag)
        }

        /// Decrypts and authenticates `box`; throws `decryptionFailed` if anything was altered.
        public static func open(_ box: SealedBox, key: [UInt8], authenticating aad: [UInt8] = []) throws(SigningError) -> [UInt8] {
            guard key.count == keyByteCount else { throw .invalidInput(field: "key") }
            guard box.nonce.count == nonceByteCount, box.tag.count == tagByteCount else { throw .decryptionFailed }
            guard box.ciphertext.count <= plaintextBytesMax else { throw .invalidInput(field: "ciphertext") }
            guard let ctx = EVP_CIPHER_CTX_new() else { throw .cryptoFailure(operation: "AES-GCM setup") }
            defer { EVP_CIPHER_CTX_free(ctx) }
            var plaintext = [UInt8](repeating: 0, count: box.ciphertext.count)
            var tag = box.tag
            var length: Int32 = 0
            var ok = EVP_DecryptInit_ex2(ctx, EVPAlgorithms.aes256GCM, key, box.nonce, nil) == 1
            ok = ok && (aad.isEmpty || EVP_DecryptUpdate(ctx, nil, &length, aad, Int32(aad.count)) == 1)
            ok = ok && (box.ciphertext.isEmpty || EVP_DecryptUpdate(ctx, &plaintext, &length, box.ciphertext, Int32(box.ciphertext.count)) == 1)
            ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, Int32(tagByteCount), &tag) == 1
            ok = ok && plaintext.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress.map { $0 + Int(length) }, &length) == 1 }
            guard ok else {
                EVPAlgorithms.clearErrors()
                throw .decryptionFailed
            }
            return plaintext
        }
    }
}
