/// Compact JSON Web Tokens (RFC 7519) signed with a ``SigningKey``: `base64url(header).base64url(claims)
/// .base64url(signature)`, base64url without padding.
public enum JWT {
    /// Signs `claims` (a JSON object's bytes) under the header `{"alg":…,"kid":…,"typ":…}`, `alg` from the key,
    /// `kid` and `typ` only when given, in that order.
    public static func sign(
        claims: [UInt8], key: SigningKey, keyID: String? = nil, type: String? = nil
    ) throws(CredentialError) -> String {
        var header = JSONWriter()
        header.object { header in
            header.field("alg", key.algorithm.rawValue)
            if let keyID { header.field("kid", keyID) }
            if let type { header.field("typ", type) }
        }
        let signingInput = Base64.encode(header.bytes, url: true) + "." + Base64.encode(claims, url: true)
        let signature = try key.signature(Array(signingInput.utf8))
        return signingInput + "." + Base64.encode(signature, url: true)
    }
}
