// The sections of offline notifications and presence (SPEC §10); their keys are parsed with the others in
// GatewayConfiguration+Parsing.swift.

extension GatewayConfiguration {
    /// `[notify]`: offline notifications (SPEC §10), delivered by `pushgw notify` processes from a Redis stream.
    public struct Notify: Sendable, Equatable {
        /// `notify.workers`: notifier processes the master starts (and restarts), 0 to 64; 0 starts none (the queue
        /// still fills, for notifiers run elsewhere). Default 1.
        public var workers = 1
        /// `notify.max_attempts`: delivery attempts per notification, the first included, 1 to 100; after the last
        /// failed one the entry goes to the dead-letter stream. Default 8.
        public var maxAttempts = 8
        /// `notify.webhook_url`: where webhook notifications are posted. Default none (`""`): the webhook provider
        /// is off.
        public var webhookURL: ProviderURL? = nil
        /// `notify.webhook_secret`: the HMAC-SHA256 key of the webhook's `x-pushgw-signature`. Default none;
        /// required when `webhook_url` is set.
        public var webhookSecret: String? = nil
        /// `notify.claim_after`: seconds a notification stays pending with a notifier that makes no progress before
        /// another notifier claims it (XAUTOCLAIM: the first died). Retries wait at most half of it. Default 60.
        public var claimAfter = 60.0
        /// `notify.webhook_ca_file`: PEM bundle of the CAs trusted for the webhook's certificate instead of the
        /// system's. Default none.
        public var webhookCAFile: String? = nil

        /// The defaults.
        public init() {}

        /// Backoff between attempts (1 s base, 5 min cap, full jitter) with ``maxAttempts``.
        public var retryPolicy: RetryPolicy { RetryPolicy(maxAttempts: maxAttempts) }
    }

    /// `[apns]`: the APNs provider, on when `key_file` is set.
    public struct APNs: Sendable, Equatable {
        /// `apns.url`: APNs for production tokens. Default `https://api.push.apple.com`.
        public var url = ProviderURL(host: "api.push.apple.com")
        /// `apns.sandbox_url`: APNs for sandbox tokens (development builds; entries with `sb` = 1). Default
        /// `https://api.sandbox.push.apple.com`.
        public var sandboxURL = ProviderURL(host: "api.sandbox.push.apple.com")
        /// `apns.key_file`: the `.p8` token-signing key (PEM, EC P-256). Default none: APNs is off.
        public var keyFile: String? = nil
        /// `apns.key_id`: the key's 10-character id. Default none; required with `key_file`.
        public var keyID: String? = nil
        /// `apns.team_id`: the Apple developer team id. Default none; required with `key_file`.
        public var teamID: String? = nil
        /// `apns.ca_file`: PEM bundle of the CAs trusted for APNs' certificate instead of the system's. Default
        /// none (the system's).
        public var caFile: String? = nil

        /// The defaults.
        public init() {}

        /// ``sandboxURL`` for a sandbox token, else ``url``.
        public func url(sandbox: Bool) -> ProviderURL { sandbox ? sandboxURL : url }
    }

    /// `[fcm]`: the FCM provider, on when `service_account_file` is set.
    public struct FCM: Sendable, Equatable {
        /// `fcm.url`: the FCM HTTP v1 API. Default `https://fcm.googleapis.com`.
        public var url = ProviderURL(host: "fcm.googleapis.com")
        /// `fcm.token_url`: the OAuth2 token endpoint, and the audience of the grant. Default
        /// `https://oauth2.googleapis.com/token`.
        public var tokenURL = ProviderURL(host: "oauth2.googleapis.com", path: "/token")
        /// `fcm.service_account_file`: the Google service account's JSON key file. Default none: FCM is off.
        public var serviceAccountFile: String? = nil
        /// `fcm.project_id`: the Firebase project. Default none: the file's `project_id`.
        public var projectID: String? = nil
        /// `fcm.ca_file`: PEM bundle of the CAs trusted for FCM's and the token endpoint's certificates instead
        /// of the system's. Default none (the system's).
        public var caFile: String? = nil

        /// The defaults.
        public init() {}

        /// The project to send to: ``projectID`` when set, else the service account's `project_id`; nil when
        /// neither says (FCM cannot be used).
        public func projectID(for account: ServiceAccount) -> String? { projectID ?? account.projectID }
    }

    /// `[presence]`: presence events (SPEC §10).
    public struct Presence: Sendable, Equatable {
        /// `presence.events`: append a user's first session anywhere and last session leaving to the capped
        /// stream `pg:presence`. Default `false`.
        public var events = false

        /// The defaults.
        public init() {}
    }
}
