/// The OAuth2 grant that turns a service account into an FCM access token (RFC 7523, Google's "OAuth 2.0 for
/// server to server applications"): a JWT signed with the account's key is posted to the token endpoint, which
/// answers `{"access_token","expires_in","token_type":"Bearer"}`.
public enum GoogleOAuth {
    /// The only scope FCM HTTP v1 needs.
    public static let scope = "https://www.googleapis.com/auth/firebase.messaging"
    /// The grant type of a JWT assertion.
    public static let grantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    /// Seconds an assertion is valid: Google's maximum, one hour.
    public static let assertionLifetime: UInt64 = 3600

    /// The signed assertion: RS256, header `{"alg":"RS256","typ":"JWT"}`, claims `{"iss":<client_email>,
    /// "scope":…,"aud":<token url>,"iat":now,"exp":now + 3600}`.
    public static func assertion(
        account: ServiceAccount, audience: String, issuedAt: UInt64
    ) throws(CredentialError) -> String {
        var claims = JSONWriter()
        claims.object { claims in
            claims.field("iss", account.clientEmail)
            claims.field("scope", scope)
            claims.field("aud", audience)
            claims.field("iat", issuedAt)
            claims.field("exp", issuedAt + assertionLifetime)
        }
        return try JWT.sign(claims: claims.bytes, key: account.key, type: "JWT")
    }

    /// The token request: `POST <fcm.token_url>` with the form
    /// `grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=<jwt>`. The form is
    /// `application/x-www-form-urlencoded` (so the grant type's colons are `%3A`; a JWT has only characters that
    /// need no escape).
    public static func tokenRequest(assertion: String, url: ProviderURL) -> ProviderRequest {
        let body = "grant_type=" + formEncoded(grantType) + "&assertion=" + formEncoded(assertion)
        return ProviderRequest(
            path: url.requestPath,
            headers: [("content-type", "application/x-www-form-urlencoded")],
            body: Array(body.utf8))
    }

    /// The assertion for `url` and the request carrying it, made at `now`; the assertion's audience is the URL
    /// posted to.
    public static func tokenRequest(
        account: ServiceAccount, url: ProviderURL, now: UInt64
    ) throws(CredentialError) -> ProviderRequest {
        tokenRequest(assertion: try assertion(account: account, audience: url.description, issuedAt: now), url: url)
    }

    /// Reads the token endpoint's answer, received at `now` (unix seconds).
    ///
    /// - Throws: ``CredentialError/tokenRefused(status:error:)`` for a status other than 200 (its `isTemporary`
    ///   says whether to ask again later), ``CredentialError/badTokenResponse(_:)`` for a 200 without a token.
    public static func accessToken(status: Int, body: [UInt8], now: UInt64) throws(CredentialError) -> AccessToken {
        let json = try? JSONParser.parse(body)
        guard status == 200 else {
            // `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`
            var error = json?["error"]?.stringValue ?? "no error given"
            if let detail = json?["error_description"]?.stringValue { error += " (\(detail))" }
            throw .tokenRefused(status: status, error: error)
        }
        guard let json else { throw .badTokenResponse("the token endpoint's answer is not JSON") }
        guard let token = json["access_token"]?.stringValue, !token.isEmpty else {
            throw .badTokenResponse("no access_token in the token endpoint's answer")
        }
        guard let lifetime = json["expires_in"]?.int64Value, lifetime > 0 else {
            throw .badTokenResponse("no positive integer expires_in in the token endpoint's answer")
        }
        return AccessToken(token: token, expiresAt: now + UInt64(lifetime))
    }

    /// `text` as a form value: unreserved characters (RFC 3986) kept, every other byte `%XX`.
    static func formEncoded(_ text: String) -> String {
        PercentEncoding.pathSegment(text)
    }
}

/// An OAuth2 access token and when it stops working.
public struct AccessToken: Sendable, Equatable {
    /// The bearer token (`authorization: Bearer <token>`).
    public var token: String
    /// Unix seconds at which the token endpoint said it expires.
    public var expiresAt: UInt64

    public init(token: String, expiresAt: UInt64) {
        self.token = token
        self.expiresAt = expiresAt
    }
}

/// The FCM access token in use: kept until shortly before it expires, so that no request carries a token that
/// expires on its way. The caller passes the time, so tests can move it.
public struct AccessTokenCache: Sendable {
    /// Seconds before expiry at which a token stops being used: 5 minutes (Google's tokens last an hour); at most
    /// half a token's remaining life, so a short-lived token is still used.
    public let margin: UInt64
    private var current: (token: AccessToken, usableUntil: UInt64)? = nil

    public init(margin: UInt64 = 300) {
        self.margin = margin
    }

    /// The token to use at `now`, or nil when a new one must be fetched.
    public func token(now: UInt64) -> String? {
        guard let current, now < current.usableUntil else { return nil }
        return current.token.token
    }

    /// Keeps `token`, received at `now`.
    public mutating func store(_ token: AccessToken, now: UInt64) {
        let life = token.expiresAt > now ? token.expiresAt - now : 0
        current = (token, now + max(life / 2, life > margin ? life - margin : 0))
    }

    /// Forgets the token: after FCM answered 401, it is no good, whatever its expiry said.
    public mutating func invalidate() { current = nil }
}
