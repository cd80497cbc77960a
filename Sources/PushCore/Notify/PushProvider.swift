/// Who delivers a device's notifications: the `provider` of its push token (SPEC §10), stream field `p`.
public enum PushProvider: String, Sendable, Equatable, CaseIterable {
    /// Apple Push Notification service, HTTP/2 with a provider JWT (ES256).
    case apns
    /// Firebase Cloud Messaging, HTTP v1 with an OAuth2 access token.
    case fcm
    /// A POST of JSON to `notify.webhook_url`, signed with `notify.webhook_secret`.
    case webhook
}
