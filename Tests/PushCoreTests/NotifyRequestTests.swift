import COpenSSL
import Testing

@testable import PushCore

/// An entry for `provider` with the `notify` JSON given, stored at 1700000000.123, badge 3, seq 17.
private func entry(
    _ provider: PushProvider = .apns, notify: String = #"{"title":"Hi","body":"You have mail"}"#, topic: String = "",
    token: String = "a1b2c3", badge: Int = 3
) throws -> NotificationEntry {
    try NotificationEntry(
        user: "u1", device: "d1", provider: provider, token: token, topic: topic, notifyJSON: Array(notify.utf8),
        badge: badge, seq: 17, timestampMillis: 1_700_000_000_123, op: 1000)
}

private let apple = ProviderURL(host: "api.push.apple.com")
private let google = ProviderURL(host: "fcm.googleapis.com")

/// The data of these tests' rich notifications: a string, a number, nested JSON, and a member named `aps`.
private let richNotify =
    #"{"title":"Hi","body":"You have mail","sound":"default","collapse_id":"chat-7","#
    + #""data":{"room":"r1","n":42,"nested":{"a":[1,true,null]},"aps":"x"}}"#

@Suite("Notifications: provider requests")
struct NotifyRequestTests {
    // MARK: - APNs

    /// Every header SPEC §10 names, in order, for a high-priority notification with a collapse id.
    @Test func apnsHeadersHigh() throws {
        let notify = #"{"title":"Hi","collapse_id":"chat-7","priority":"high"}"#
        let request = APNsProvider.request(
            for: try entry(notify: notify, topic: "com.example.app"), providerToken: "JWT", url: apple,
            inboxTTL: 604_800)
        #expect(request.method == "POST" && request.path == "/3/device/a1b2c3")
        #expect(request.headers.map(\.name) == [
            "authorization", "apns-topic", "apns-push-type", "apns-priority", "apns-expiration", "apns-collapse-id",
        ])
        #expect(request.headers.map(\.value) == [
            "bearer JWT", "com.example.app", "alert", "10", "1700604800", "chat-7",
        ])
    }

    /// `apns-priority` 10 for high (the default), 5 for normal.
    @Test(arguments: [(#"{}"#, "10"), (#"{"priority":"high"}"#, "10"), (#"{"priority":"normal"}"#, "5")])
    func apnsPriority(_ notify: String, _ priority: String) throws {
        let request = APNsProvider.request(
            for: try entry(notify: notify), providerToken: "JWT", url: apple, inboxTTL: 60)
        #expect(request.header("apns-priority") == priority)
    }

    /// No collapse id, no `apns-collapse-id`; no topic, no `apns-topic`; `apns-expiration` always, from the
    /// entry's store time and `inbox.ttl`, not from the clock.
    @Test func apnsOptionalHeadersAndExpiration() throws {
        let request = APNsProvider.request(for: try entry(), providerToken: "JWT", url: apple, inboxTTL: 3600)
        #expect(request.header("apns-collapse-id") == nil && request.header("apns-topic") == nil)
        #expect(request.header("apns-expiration") == "1700003600")
        #expect(APNsProvider.expiration(of: try entry(), inboxTTL: 604_800) == 1_700_604_800)
    }

    /// A base URL's path goes before `/3/device/`; the sandbox URL serves sandbox entries.
    @Test func apnsPathsAndSandbox() throws {
        let local = try #require(ProviderURL("http://127.0.0.1:8080/apns/"))
        let request = APNsProvider.request(for: try entry(), providerToken: "JWT", url: local, inboxTTL: 60)
        #expect(request.path == "/apns/3/device/a1b2c3")
        let settings = GatewayConfiguration.APNs()
        #expect(settings.url(sandbox: true).description == "https://api.sandbox.push.apple.com")
        #expect(settings.url(sandbox: false).description == "https://api.push.apple.com")
    }

    /// `aps` with alert, badge and sound, then data's members beside it (not one named `aps`), exactly.
    @Test func apnsBodyExact() throws {
        let body = APNsProvider.body(of: try entry(notify: richNotify))
        #expect(
            String(decoding: body, as: UTF8.self)
                == #"{"aps":{"alert":{"title":"Hi","body":"You have mail"},"badge":3,"sound":"default"},"#
                + #""room":"r1","n":42,"nested":{"a":[1,true,null]}}"#)
    }

    /// Absent members stay out; badge 0 is written (it clears the icon); text is escaped.
    @Test func apnsBodyMinimal() throws {
        let body = APNsProvider.body(of: try entry(notify: #"{"body":"say \"hi\"\n"}"#, badge: 0))
        #expect(String(decoding: body, as: UTF8.self) == #"{"aps":{"alert":{"body":"say \"hi\"\n"},"badge":0}}"#)
        #expect((try? JSONParser.parse(body)) != nil)
    }

    // MARK: - FCM

    /// `POST /v1/projects/<id>/messages:send` with the bearer access token, and the body exactly: data values as
    /// strings, the badge as `notification_count`.
    @Test func fcmRequestExact() throws {
        let request = FCMProvider.request(
            for: try entry(.fcm, notify: richNotify, token: "fcm-token"), projectID: "pushgw-test",
            accessToken: "ya29.token", url: google)
        #expect(request.method == "POST" && request.path == "/v1/projects/pushgw-test/messages:send")
        #expect(request.headers.map(\.name) == ["authorization", "content-type"])
        #expect(request.headers.map(\.value) == ["Bearer ya29.token", "application/json"])
        #expect(
            String(decoding: request.body, as: UTF8.self)
                == #"{"message":{"token":"fcm-token","notification":{"title":"Hi","body":"You have mail"},"#
                + #""data":{"room":"r1","n":"42","nested":"{\"a\":[1,true,null]}","aps":"x"},"#
                + #""android":{"priority":"HIGH","collapse_key":"chat-7","#
                + #""notification":{"notification_count":3,"sound":"default"}}}}"#)
    }

    /// Normal priority; no title or body, no `notification`; no data, no `data`; no collapse id or sound, none.
    @Test func fcmBodyMinimal() throws {
        let body = FCMProvider.body(of: try entry(.fcm, notify: #"{"priority":"normal"}"#, token: "t", badge: 0))
        #expect(
            String(decoding: body, as: UTF8.self)
                == #"{"message":{"token":"t","android":{"priority":"NORMAL","#
                + #""notification":{"notification_count":0}}}}"#)
    }

    // MARK: - The OAuth2 grant

    /// The form body, percent-encoded, posted to the token URL's path.
    @Test func tokenRequestForm() throws {
        let url = GatewayConfiguration.FCM().tokenURL
        let request = GoogleOAuth.tokenRequest(assertion: "aaa.bbb.c-_", url: url)
        #expect(request.method == "POST" && request.path == "/token")
        #expect(request.header("content-type") == "application/x-www-form-urlencoded")
        #expect(
            String(decoding: request.body, as: UTF8.self)
                == "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=aaa.bbb.c-_")
    }

    /// Made from the account: the assertion's audience is the URL posted to, and it verifies.
    @Test func tokenRequestFromAccount() throws {
        let account = try ServiceAccount(json: Array(NotifyTestKeys.serviceAccount.utf8))
        let url = try #require(ProviderURL("http://127.0.0.1:9000/oauth/token"))
        let request = try GoogleOAuth.tokenRequest(account: account, url: url, now: 1000)
        let form = String(decoding: request.body, as: UTF8.self)
        let prefix = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
        #expect(form.hasPrefix(prefix) && request.path == "/oauth/token")
        let parts = form.dropFirst(prefix.count).split(separator: ".").map(String.init)
        try #require(parts.count == 3)
        let claims = try JSONParser.parse(try #require(Base64.decode(parts[1])))
        #expect(claims["aud"] == .string("http://127.0.0.1:9000/oauth/token"))
        #expect(claims["iat"] == .number("1000") && claims["exp"] == .number("4600"))
        let publicKey = try #require(OpenSSLVerify.key(pem: NotifyTestKeys.rsa2048Public))
        defer { EVP_PKEY_free(publicKey) }
        let signature = try #require(Base64.decode(parts[2]))
        #expect(OpenSSLVerify.verify(signature, of: Array((parts[0] + "." + parts[1]).utf8), key: publicKey))
    }

    /// The token endpoint's 200 gives the token and its expiry from the time received.
    @Test func accessTokenAnswer() throws {
        let body = Array(#"{"access_token":"ya29.abc","expires_in":3599,"token_type":"Bearer"}"#.utf8)
        let token = try GoogleOAuth.accessToken(status: 200, body: body, now: 1000)
        #expect(token == AccessToken(token: "ya29.abc", expiresAt: 4599))
    }

    /// Refusals and answers without a token are errors; only 429 and 5xx are worth asking again.
    @Test(arguments: [
        (400, #"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#, "token_refused", false,
         "token endpoint answered 400: invalid_grant (Invalid JWT Signature.)"),
        (401, #"{"error":"unauthorized_client"}"#, "token_refused", false, "answered 401: unauthorized_client"),
        (503, "", "token_refused", true, "answered 503: no error given"),
        (429, "{}", "token_refused", true, "answered 429"),
        (200, "not json", "bad_token_response", false, "not JSON"),
        (200, #"{"expires_in":3599}"#, "bad_token_response", false, "no access_token"),
        (200, #"{"access_token":"t","expires_in":"3599"}"#, "bad_token_response", false, "expires_in"),
        (200, #"{"access_token":"t","expires_in":0}"#, "bad_token_response", false, "expires_in"),
    ])
    func accessTokenErrors(_ status: Int, _ body: String, _ code: String, _ temporary: Bool, _ message: String) {
        do {
            _ = try GoogleOAuth.accessToken(status: status, body: Array(body.utf8), now: 0)
            Issue.record("accepted")
        } catch {
            #expect(error.code == code && error.isTemporary == temporary && error.message.contains(message), "\(error)")
        }
    }

    /// A token is used until 5 minutes before its expiry, a short-lived one for half its life; `invalidate()` drops
    /// it (after a 401).
    @Test func accessTokenCache() {
        var cache = AccessTokenCache()
        #expect(cache.token(now: 0) == nil)
        cache.store(AccessToken(token: "a", expiresAt: 4599), now: 1000)
        #expect(cache.token(now: 1000) == "a" && cache.token(now: 4298) == "a")
        #expect(cache.token(now: 4299) == nil)
        cache.invalidate()
        #expect(cache.token(now: 1000) == nil)
        cache.store(AccessToken(token: "b", expiresAt: 1400), now: 1000)
        #expect(cache.token(now: 1199) == "b" && cache.token(now: 1200) == nil)
        cache.store(AccessToken(token: "c", expiresAt: 900), now: 1000)
        #expect(cache.token(now: 1000) == nil)
    }

    // MARK: - Webhook

    /// The body exactly, `notify` byte for byte as the backend wrote it, and its signature (computed apart, with
    /// Python's hmac module).
    @Test func webhookRequestExact() throws {
        let hook = try entry(.webhook, notify: #"{"title":"Hi", "body":"You have mail"}"#, token: "hook-7")
        let url = try #require(ProviderURL("https://backend.example.com/hooks/pushgw?v=1"))
        let request = WebhookProvider.request(for: hook, url: url, secret: "whsec-test")
        #expect(request.method == "POST" && request.path == "/hooks/pushgw?v=1")
        #expect(
            String(decoding: request.body, as: UTF8.self)
                == #"{"user":"u1","device":"d1","provider":"webhook","token":"hook-7","seq":17,"badge":3,"#
                + #""notify":{"title":"Hi", "body":"You have mail"}}"#)
        #expect(request.headers.map(\.name) == ["content-type", "x-pushgw-signature"])
        #expect(request.header("content-type") == "application/json")
        #expect(
            request.header("x-pushgw-signature")
                == "sha256=dc9f814c5691b79cbdc4847c0a952c9a24ef7dc243da13de9499399d2e595bf3")
    }

    // MARK: - Provider URLs

    /// What provider URLs may be, and how they print.
    @Test(arguments: [
        ("https://api.push.apple.com", "api.push.apple.com", 443, "", "https://api.push.apple.com"),
        ("https://api.push.apple.com:443/", "api.push.apple.com", 443, "/", "https://api.push.apple.com/"),
        ("https://api.development.push.apple.com:2197", "api.development.push.apple.com", 2197, "",
         "https://api.development.push.apple.com:2197"),
        ("http://127.0.0.1:8080/apns", "127.0.0.1", 8080, "/apns", "http://127.0.0.1:8080/apns"),
        ("http://[::1]:9000/token?x=1", "::1", 9000, "/token?x=1", "http://[::1]:9000/token?x=1"),
        ("http://localhost", "localhost", 80, "", "http://localhost"),
    ])
    func providerURL(_ text: String, _ host: String, _ port: Int, _ path: String, _ description: String) throws {
        let url = try #require(ProviderURL(text))
        #expect(url.host == host && Int(url.port) == port && url.path == path)
        #expect(url.description == description)
    }

    @Test(arguments: [
        "", "api.push.apple.com", "ftp://host", "https://", "https://:443", "https://host:0", "https://host:65536",
        "https://host:x", "https://user@host", "https://host/a b", "https://host/#frag", "https://[::1", "https://a_b",
        "https://host:443:1",
    ])
    func invalidProviderURL(_ text: String) {
        #expect(ProviderURL(text) == nil)
    }

    /// A base URL's path, with or without a trailing slash, goes before a request's path; its own request path is
    /// `/` when it has none.
    @Test func providerURLPaths() throws {
        #expect(try #require(ProviderURL("https://h")).path(appending: "/v1/x") == "/v1/x")
        #expect(try #require(ProviderURL("https://h/")).path(appending: "/v1/x") == "/v1/x")
        #expect(try #require(ProviderURL("https://h/p/")).path(appending: "/v1/x") == "/p/v1/x")
        #expect(try #require(ProviderURL("https://h")).requestPath == "/")
        #expect(try #require(ProviderURL("https://h?x=1")).requestPath == "/?x=1")
        #expect(try #require(ProviderURL("https://[2001:db8::1]:8443")).authority == "[2001:db8::1]:8443")
    }
}
