/// A Google service account's key file (`fcm.service_account_file`), the JSON the Firebase console downloads:
/// `{"type":"service_account","project_id","private_key_id","private_key","client_email","token_uri",…}`.
public struct ServiceAccount: Sendable {
    /// `client_email`: the account, the grant's `iss`.
    public let clientEmail: String
    /// `private_key`: its RSA key (PEM), which signs the grant.
    public let key: SigningKey
    /// `private_key_id`, when present.
    public let keyID: String?
    /// `project_id`, when present: the default of `fcm.project_id`.
    public let projectID: String?
    /// `token_uri`, when present: Google's token endpoint. pushgw posts to `fcm.token_url` (by default the same
    /// URL), so that tests can point it elsewhere.
    public let tokenURI: String?

    /// Reads the file's JSON.
    ///
    /// - Throws: ``CredentialError/badServiceAccount(_:)`` when it is not such a file, or its key's error.
    public init(json bytes: [UInt8]) throws(CredentialError) {
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            throw .badServiceAccount("not JSON: \(error)")
        }
        guard case .object = json else { throw .badServiceAccount("expected a JSON object") }
        func string(_ name: String, required: Bool) throws(CredentialError) -> String? {
            switch json[name] {
            case .string(let text)? where !text.isEmpty: return text
            case nil, .null?, .string?:
                if required { throw .badServiceAccount("\(name) is missing") }
                return nil
            case _?: throw .badServiceAccount("\(name) must be a string")
            }
        }
        if let type = try string("type", required: false), type != "service_account" {
            throw .badServiceAccount("type is \"\(type)\", expected \"service_account\"")
        }
        clientEmail = try string("client_email", required: true)!
        key = try SigningKey(pem: Array(try string("private_key", required: true)!.utf8))
        guard key.algorithm == .rs256 else {
            throw .wrongKeyType("the service account's private_key must be RSA (RS256)")
        }
        keyID = try string("private_key_id", required: false)
        projectID = try string("project_id", required: false)
        tokenURI = try string("token_uri", required: false)
    }
}
