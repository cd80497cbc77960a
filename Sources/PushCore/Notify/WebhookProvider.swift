/// The webhook provider (`notify.webhook_url`): the backend's own endpoint receives each notification as JSON,
/// signed so it can tell pushgw's requests from anyone else's.
public enum WebhookProvider {
    /// The signature header: `x-pushgw-signature: sha256=<hex HMAC-SHA256 of the body under notify.webhook_secret>`.
    public static let signatureHeader = "x-pushgw-signature"

    /// `POST <url>` with `content-type: application/json`, the signature header and the body ``body(of:)``.
    public static func request(for entry: NotificationEntry, url: ProviderURL, secret: String) -> ProviderRequest {
        let body = body(of: entry)
        return ProviderRequest(
            path: url.requestPath,
            headers: [("content-type", "application/json"), (signatureHeader, signature(of: body, secret: secret))],
            body: body)
    }

    /// `{"user":…,"device":…,"provider":…,"token":…,"seq":…,"badge":…,"notify":{…}}`, `notify` byte for byte
    /// as the backend sent it.
    public static func body(of entry: NotificationEntry) -> [UInt8] {
        var writer = JSONWriter()
        writer.object { writer in
            writer.field("user", entry.user)
            writer.field("device", entry.device)
            writer.field("provider", entry.provider.rawValue)
            writer.field("token", entry.token)
            writer.field("seq", entry.seq)
            writer.field("badge", entry.badge)
            writer.key("notify")
            writer.raw(entry.notifyJSON)
        }
        return writer.bytes
    }

    /// `sha256=` and the lowercase hex HMAC-SHA256 of `body` under the UTF-8 bytes of `secret`. The receiver
    /// computes the same over the raw body it got and compares in constant time.
    public static func signature(of body: [UInt8], secret: String) -> String {
        "sha256=" + Hex.lowercase(OpenSSLHMAC(secret: secret).mac(body))
    }

    /// Classifies the webhook's answer by status alone: 2xx delivered; 410 Gone says the device is gone (invalid
    /// token, removed); 408, 429 and 5xx retry (after `retry-after` if given); any other failed.
    public static func answer(status: Int, retryAfter: String? = nil) -> ProviderAnswer {
        switch status {
        case 200..<300: return ProviderAnswer(.delivered)
        case 410: return ProviderAnswer(.invalidToken, reason: "410")
        case 408, 429, 500..<600:
            return ProviderAnswer(.retry(after: RetryAfter.seconds(retryAfter)), reason: "\(status)")
        default: return ProviderAnswer(.failed(reason: "webhook answered \(status)"), reason: "\(status)")
        }
    }
}
