extension APNsProvider {
    /// Reasons of a 400 that mean the token itself is no good for this app: remove it.
    static let invalidTokenReasons: Set<String> = ["BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"]

    /// Classifies APNs' answer: its `:status`, its `retry-after` header if any, and its body, `{"reason":"…"}` on
    /// errors (plus `"timestamp"` on 410).
    ///
    /// | answer | outcome |
    /// |---|---|
    /// | 200 | delivered |
    /// | 410 (`Unregistered`, `ExpiredToken`) | invalid token |
    /// | 400 `BadDeviceToken`, `Unregistered`, `DeviceTokenNotForTopic` | invalid token |
    /// | 403 `ExpiredProviderToken` | retry, with a new provider token |
    /// | 408, 429 (`TooManyRequests`, `TooManyProviderTokenUpdates`), 5xx | retry, after `retry-after` if given |
    /// | any other | failed, with the reason |
    public static func answer(status: Int, retryAfter: String? = nil, body: [UInt8]) -> ProviderAnswer {
        let reason = (try? JSONParser.parse(body))?["reason"]?.stringValue
        switch status {
        case 200..<300:
            return ProviderAnswer(.delivered, reason: reason)
        case 410:
            return ProviderAnswer(.invalidToken, reason: reason ?? "Unregistered")
        case 400 where reason.map(invalidTokenReasons.contains) == true:
            return ProviderAnswer(.invalidToken, reason: reason)
        case 403 where reason == "ExpiredProviderToken":
            return ProviderAnswer(.retry(after: nil), reason: reason, renewCredentials: true)
        case 408, 429, 500..<600:
            return ProviderAnswer(.retry(after: RetryAfter.seconds(retryAfter)), reason: reason)
        default:
            return ProviderAnswer(.failed(reason: "APNs \(status) \(reason ?? "(no reason)")"), reason: reason)
        }
    }
}
