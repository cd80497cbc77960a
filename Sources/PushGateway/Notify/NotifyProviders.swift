import Glibc
import Logging
import PushCore
import PushPosix

/// Delivers one notification to its provider (SPEC §10) and classifies the answer: APNs with a provider JWT (ES256,
/// reused for 50 minutes), FCM HTTP v1 with an OAuth2 access token (an RS256 grant to `fcm.token_url`, cached until
/// shortly before it expires), the webhook signed with HMAC-SHA256. One ``HTTP2Client`` per origin, many streams
/// each; a slow or failing provider holds only its own requests.
final class NotifyProviders {
    private let loop: EventLoop
    private let logger: Logger
    private let config: GatewayConfiguration
    /// By origin (`https://host:port`).
    private var clients: [String: HTTP2Client] = [:]
    private var apnsToken: APNsProviderToken?
    private var account: ServiceAccount?
    private var accessToken = AccessTokenCache()
    /// FCM deliveries waiting for an access token, and whether one is being fetched.
    private var waitingForToken: [(String?) -> Void] = []

    /// Reads the APNs key and the service-account file named by the configuration; a provider whose credentials
    /// are not configured refuses its notifications (dead letters), one whose files are bad stops the start.
    init(loop: EventLoop, config: GatewayConfiguration, logger: Logger) throws {
        self.loop = loop
        self.config = config
        self.logger = logger
        if let path = config.apns.keyFile, let keyID = config.apns.keyID, let teamID = config.apns.teamID {
            apnsToken = try APNsProviderToken(key: try SigningKey(pem: try Self.read(path)), keyID: keyID, teamID: teamID)
        }
        if let path = config.fcm.serviceAccountFile { account = try ServiceAccount(json: try Self.read(path)) }
    }

    func stop() { for client in clients.values { client.close() } }

    func deliver(_ entry: NotificationEntry, _ done: @escaping (ProviderAnswer) -> Void) {
        switch entry.provider {
        case .apns: apns(entry, done)
        case .fcm: fcm(entry, done)
        case .webhook: webhook(entry, done)
        }
    }

    private func apns(_ entry: NotificationEntry, _ done: @escaping (ProviderAnswer) -> Void) {
        guard apnsToken != nil else { return done(ProviderAnswer(.failed(reason: "apns.key_file is not configured"))) }
        let jwt: String
        do { jwt = try apnsToken!.token(now: Self.now()) } catch {
            return done(ProviderAnswer(.failed(reason: "APNs provider token: \(error)")))
        }
        let url = config.apns.url(sandbox: entry.sandbox)
        let request = APNsProvider.request(for: entry, providerToken: jwt, url: url, inboxTTL: config.inbox.ttl)
        send(request, to: url, caFile: config.apns.caFile) { [weak self] status, headers, body in
            guard let status else { return done(ProviderAnswer(.connectionFailed)) }
            let answer = APNsProvider.answer(status: status, retryAfter: headers("retry-after"), body: body)
            if answer.renewCredentials { self?.apnsToken?.invalidate() }
            done(answer)
        }
    }

    private func fcm(_ entry: NotificationEntry, _ done: @escaping (ProviderAnswer) -> Void) {
        guard let account, let project = config.fcm.projectID(for: account) else {
            return done(ProviderAnswer(.failed(reason: "fcm.service_account_file (with a project id) is not configured")))
        }
        withAccessToken { [weak self] token in
            guard let self else { return }
            guard let token else { return done(ProviderAnswer(.retry(after: nil), reason: "no FCM access token")) }
            let url = self.config.fcm.url
            let request = FCMProvider.request(for: entry, projectID: project, accessToken: token, url: url)
            self.send(request, to: url, caFile: self.config.fcm.caFile) { status, headers, body in
                guard let status else { return done(ProviderAnswer(.connectionFailed)) }
                let answer = FCMProvider.answer(status: status, retryAfter: headers("retry-after"), body: body)
                if answer.renewCredentials { self.accessToken.invalidate() }
                done(answer)
            }
        }
    }

    /// Calls `then` with a valid access token (nil when the token endpoint gave none): the cached one, or one
    /// fetched for all the deliveries waiting.
    private func withAccessToken(_ then: @escaping (String?) -> Void) {
        if let token = accessToken.token(now: Self.now()) { return then(token) }
        waitingForToken.append(then)
        guard waitingForToken.count == 1, let account else { return }
        let url = config.fcm.tokenURL
        let request: ProviderRequest
        do { request = try GoogleOAuth.tokenRequest(account: account, url: url, now: Self.now()) } catch {
            logger.error("FCM token grant not made", metadata: ["error": "\(error)"])
            return finishTokenFetch(nil)
        }
        send(request, to: url, caFile: config.fcm.caFile) { [weak self] status, _, body in
            guard let self else { return }
            guard let status else { return self.finishTokenFetch(nil) }
            do {
                let token = try GoogleOAuth.accessToken(status: status, body: body, now: Self.now())
                self.accessToken.store(token, now: Self.now())
                self.finishTokenFetch(token.token)
            } catch {
                self.logger.warning("FCM access token refused", metadata: ["error": "\(error)"])
                self.finishTokenFetch(nil)
            }
        }
    }

    private func finishTokenFetch(_ token: String?) {
        let waiting = waitingForToken
        waitingForToken.removeAll()
        for then in waiting { then(token) }
    }

    private func webhook(_ entry: NotificationEntry, _ done: @escaping (ProviderAnswer) -> Void) {
        guard let url = config.notify.webhookURL, let secret = config.notify.webhookSecret else {
            return done(ProviderAnswer(.failed(reason: "notify.webhook_url is not configured")))
        }
        let request = WebhookProvider.request(for: entry, url: url, secret: secret)
        send(request, to: url, caFile: config.notify.webhookCAFile) { status, headers, _ in
            guard let status else { return done(ProviderAnswer(.connectionFailed)) }
            done(WebhookProvider.answer(status: status, retryAfter: headers("retry-after")))
        }
    }

    /// Sends `request` to `url`'s origin; `done` gets the status (nil when no answer came), a header lookup and the
    /// body.
    private func send(
        _ request: ProviderRequest, to url: ProviderURL, caFile: String?,
        _ done: @escaping (Int?, (String) -> String?, [UInt8]) -> Void
    ) {
        guard let client = client(for: url, caFile: caFile) else { return done(nil, { _ in nil }, []) }
        client.request(method: request.method, path: request.path, headers: request.headers, body: request.body) {
            [logger] result in
            switch result {
            case .success(let response):
                done(response.status, { response.header($0) }, response.body)
            case .failure(let error):
                logger.debug("provider request failed", metadata: ["url": "\(url)", "error": "\(error)"])
                done(nil, { _ in nil }, [])
            }
        }
    }

    private func client(for url: ProviderURL, caFile: String?) -> HTTP2Client? {
        let origin = (url.isTLS ? "https://" : "http://") + url.authority
        if let client = clients[origin] { return client }
        do {
            let client = try HTTP2Client(
                loop: loop, host: url.host, port: Int(url.port), options: .init(tls: url.isTLS, caFile: caFile),
                logger: logger)
            clients[origin] = client
            return client
        } catch {
            logger.error("cannot make a provider client", metadata: ["url": "\(url)", "error": "\(error)"])
            return nil
        }
    }

    private static func now() -> UInt64 { Posix.wallMillis() / 1000 }

    private static func read(_ path: String) throws -> [UInt8] {
        do { return try FileContents.read(path) } catch { throw StartError("\(error)") }
    }
}
