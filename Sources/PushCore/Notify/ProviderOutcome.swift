/// What one delivery attempt came to, whatever the provider: what the notifier does with the entry next.
public enum ProviderOutcome: Sendable, Equatable {
    /// The provider took the notification: XACK.
    case delivered
    /// The provider says the device's token is no longer valid (the app was removed, the token was replaced):
    /// remove the token from the user's devices, XACK.
    case invalidToken
    /// Worth another try: after `after` seconds when the provider said (`Retry-After`), else after the
    /// ``RetryPolicy``'s backoff. Rate limits, provider errors (5xx), connection failures, expired credentials.
    case retry(after: Double?)
    /// Refused for good (a malformed request, a payload too large, a wrong topic): another try would get the same
    /// answer. To the dead-letter stream with `reason`.
    case failed(reason: String)

    /// The outcome when no answer came: the connection could not be made, broke, or timed out.
    public static let connectionFailed = ProviderOutcome.retry(after: nil)
}

/// A provider's answer to one request, classified: the outcome, the provider's own words for the logs, and
/// whether the credential sent is to be replaced before the retry.
public struct ProviderAnswer: Sendable, Equatable {
    /// What to do with the entry.
    public var outcome: ProviderOutcome
    /// The provider's reason: APNs' `reason` (`BadDeviceToken`), FCM's error status and code (`NOT_FOUND
    /// UNREGISTERED`); nil when it gave none.
    public var reason: String?
    /// The provider refused the credential as expired (APNs 403 `ExpiredProviderToken`, FCM 401): drop the cached
    /// provider token or access token, so the retry carries a new one.
    public var renewCredentials: Bool

    public init(_ outcome: ProviderOutcome, reason: String? = nil, renewCredentials: Bool = false) {
        self.outcome = outcome
        self.reason = reason
        self.renewCredentials = renewCredentials
    }
}

/// The `Retry-After` header (RFC 9110 §10.2.3).
public enum RetryAfter {
    /// The delay in seconds of a `Retry-After: <seconds>` value; nil when absent or not a number of seconds
    /// (an HTTP date is not read: the backoff is used instead).
    public static func seconds(_ value: String?) -> Double? {
        guard let value else { return nil }
        let text = value.trimmingSpaces
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let seconds = Int(text)
        else { return nil }
        return Double(seconds)
    }
}
