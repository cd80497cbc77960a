import COpenSSL

/// Signature checks through OpenSSL's public-key API (EVP_DigestVerify), independent of the signing code under
/// test: a raw ES256 `r ‖ s` is turned into DER by OpenSSL's own `ECDSA_SIG`, not by `ECDSASignature`.
enum OpenSSLVerify {
    /// A public key (`BEGIN PUBLIC KEY`) or the public half of a private key, owned by the caller
    /// (`EVP_PKEY_free`).
    static func key(pem: String, isPrivate: Bool = false) -> OpaquePointer? {
        let bytes = Array(pem.utf8)
        return bytes.withUnsafeBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return isPrivate ? PEM_read_bio_PrivateKey(bio, nil, nil, nil) : PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
    }

    /// A new EC P-256 key pair, owned by the caller.
    static func generateP256() -> OpaquePointer? {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else { return nil }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer? = nil
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_group_name(context, "P-256") == 1,
            EVP_PKEY_generate(context, &key) == 1
        else { return nil }
        return key
    }

    /// The private key as PKCS#8 PEM.
    static func privatePEM(_ key: OpaquePointer) -> String? {
        guard let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, key, nil, nil, 0, nil, nil) == 1 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(bio)))
        let read = BIO_read(bio, &bytes, Int32(bytes.count))
        guard read == bytes.count else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// DER of a raw ES256 signature, through `ECDSA_SIG`; nil unless it is 64 bytes.
    static func der(fromRaw raw: [UInt8]) -> [UInt8]? {
        guard raw.count == 64, let signature = ECDSA_SIG_new() else { return nil }
        defer { ECDSA_SIG_free(signature) }
        let r = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, 32, nil) }
        let s = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress! + 32, 32, nil) }
        guard let r, let s, ECDSA_SIG_set0(signature, r, s) == 1 else { return nil }
        let length = i2d_ECDSA_SIG(signature, nil)
        guard length > 0 else { return nil }
        var der = [UInt8](repeating: 0, count: Int(length))
        let written = der.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return i2d_ECDSA_SIG(signature, &cursor)
        }
        return written == length ? der : nil
    }

    /// Whether `signature` (JWS form: raw `r ‖ s` for EC keys, PKCS#1 v1.5 for RSA) is `key`'s SHA-256 signature
    /// of `message`.
    static func verify(_ signature: [UInt8], of message: [UInt8], key: OpaquePointer) -> Bool {
        let isEC = EVP_PKEY_is_a(key, "EC") == 1
        guard let encoded = isEC ? der(fromRaw: signature) : signature else { return false }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, EVP_sha256(), nil, key) == 1 else { return false }
        let ok = encoded.withUnsafeBufferPointer { sig in
            message.withUnsafeBufferPointer { tbs in
                EVP_DigestVerify(context, sig.baseAddress, sig.count, tbs.baseAddress, tbs.count)
            }
        }
        ERR_clear_error()
        return ok == 1
    }
}
