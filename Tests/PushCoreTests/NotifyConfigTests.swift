import Testing

@testable import PushCore

/// The keys of SPEC §10: the notifier processes, the webhook, APNs, FCM and presence events.
@Suite("Configuration: notifications")
struct NotifyConfigTests {
    /// One notifier, 8 attempts, every provider off, Apple's and Google's URLs, no presence events.
    @Test func defaults() throws {
        let configuration = try load()
        #expect(configuration.notify.workers == 1 && configuration.notify.maxAttempts == 8)
        #expect(configuration.notify.webhookURL == nil && configuration.notify.webhookSecret == nil)
        #expect(configuration.apns.url.description == "https://api.push.apple.com")
        #expect(configuration.apns.sandboxURL.description == "https://api.sandbox.push.apple.com")
        #expect(configuration.apns.keyFile == nil && configuration.apns.keyID == nil)
        #expect(configuration.apns.teamID == nil && configuration.apns.caFile == nil)
        #expect(configuration.fcm.url.description == "https://fcm.googleapis.com")
        #expect(configuration.fcm.tokenURL.description == "https://oauth2.googleapis.com/token")
        #expect(configuration.fcm.serviceAccountFile == nil && configuration.fcm.projectID == nil)
        #expect(configuration.fcm.caFile == nil)
        #expect(configuration.presence.events == false)
        #expect(configuration.notify.retryPolicy == RetryPolicy(base: 1, cap: 300, maxAttempts: 8))
    }

    struct Override: Sendable, CustomTestStringConvertible {
        let variable: String
        let value: String
        let expect: @Sendable (GatewayConfiguration) -> Bool
        var testDescription: String { "\(variable)=\(value)" }

        init(_ variable: String, _ value: String, _ expect: @escaping @Sendable (GatewayConfiguration) -> Bool) {
            self.variable = variable
            self.value = value
            self.expect = expect
        }
    }

    /// Every key from its environment variable.
    @Test(arguments: [
        Override("PUSHGW_NOTIFY_WORKERS", "0") { $0.notify.workers == 0 },
        Override("PUSHGW_NOTIFY_WORKERS", "64") { $0.notify.workers == 64 },
        Override("PUSHGW_NOTIFY_MAX_ATTEMPTS", "3") {
            $0.notify.maxAttempts == 3 && $0.notify.retryPolicy.maxAttempts == 3
        },
        Override("PUSHGW_NOTIFY_WEBHOOK_SECRET", "s") { $0.notify.webhookSecret == "s" },
        Override("PUSHGW_APNS_URL", "http://127.0.0.1:8443") { $0.apns.url.description == "http://127.0.0.1:8443" },
        Override("PUSHGW_APNS_SANDBOX_URL", "https://localhost:2197") {
            $0.apns.sandboxURL == ProviderURL(host: "localhost", port: 2197)
        },
        Override("PUSHGW_APNS_CA_FILE", "/tmp/ca.pem") { $0.apns.caFile == "/tmp/ca.pem" },
        Override("PUSHGW_FCM_URL", "http://[::1]:9000/fcm") { $0.fcm.url.path == "/fcm" && $0.fcm.url.host == "::1" },
        Override("PUSHGW_FCM_TOKEN_URL", " https://oauth.test/token ") {
            $0.fcm.tokenURL.description == "https://oauth.test/token"
        },
        Override("PUSHGW_FCM_SERVICE_ACCOUNT_FILE", "/etc/sa.json") { $0.fcm.serviceAccountFile == "/etc/sa.json" },
        Override("PUSHGW_FCM_PROJECT_ID", "my-project") { $0.fcm.projectID == "my-project" },
        Override("PUSHGW_FCM_CA_FILE", "ca.pem") { $0.fcm.caFile == "ca.pem" },
        Override("PUSHGW_PRESENCE_EVENTS", "true") { $0.presence.events },
        Override("PUSHGW_PRESENCE_EVENTS", "0") { !$0.presence.events },
    ])
    func environmentOverride(_ override: Override) throws {
        #expect(override.expect(try load(nil, [override.variable: override.value])))
    }

    /// Providers switched on in the file, each with what it needs.
    @Test func fromFile() throws {
        let toml = """
            [notify]
            workers = 2
            max_attempts = 12
            webhook_url = "https://backend.example.com/hooks/pushgw"
            webhook_secret = "whsec"
            [apns]
            url = "http://127.0.0.1:8443/apns"
            key_file = "AuthKey.p8"
            key_id = "ABC123DEFG"
            team_id = "DEF123GHIJ"
            ca_file = "test-ca.pem"
            [fcm]
            service_account_file = "sa.json"
            project_id = "p"
            [presence]
            events = true
            """
        let configuration = try load(toml)
        #expect(configuration.notify.workers == 2 && configuration.notify.maxAttempts == 12)
        #expect(configuration.notify.webhookURL?.description == "https://backend.example.com/hooks/pushgw")
        #expect(configuration.notify.webhookSecret == "whsec")
        #expect(configuration.apns.url.description == "http://127.0.0.1:8443/apns" && !configuration.apns.url.isTLS)
        #expect(configuration.apns.keyFile == "AuthKey.p8" && configuration.apns.keyID == "ABC123DEFG")
        #expect(configuration.apns.teamID == "DEF123GHIJ" && configuration.apns.caFile == "test-ca.pem")
        #expect(configuration.fcm.serviceAccountFile == "sa.json" && configuration.fcm.projectID == "p")
        #expect(configuration.presence.events)
        #expect(try load("[notify]\nwebhook_url = \"\"\n").notify.webhookURL == nil)
    }

    /// `fcm.project_id` defaults to the service account's `project_id`.
    @Test func projectIDFromServiceAccount() throws {
        let account = try ServiceAccount(json: Array(NotifyTestKeys.serviceAccount.utf8))
        #expect(try load().fcm.projectID(for: account) == "pushgw-test")
        #expect(try load("[fcm]\nproject_id = \"other\"").fcm.projectID(for: account) == "other")
    }

    /// A bad value in the file names its key.
    @Test(arguments: [
        ("[notify]\nworkers = 65", "notify.workers"),
        ("[notify]\nworkers = -1", "notify.workers"),
        ("[notify]\nworkers = \"1\"", "notify.workers"),
        ("[notify]\nmax_attempts = 0", "notify.max_attempts"),
        ("[notify]\nmax_attempts = 101", "notify.max_attempts"),
        ("[notify]\nwebhook_url = \"ftp://host/x\"", "notify.webhook_url"),
        ("[notify]\nwebhook_url = \"https://\"", "notify.webhook_url"),
        ("[notify]\nwebhook_url = 1", "notify.webhook_url"),
        ("[notify]\nwebhook_secret = true", "notify.webhook_secret"),
        ("[apns]\nurl = \"\"", "apns.url"),
        ("[apns]\nurl = \"api.push.apple.com\"", "apns.url"),
        ("[apns]\nsandbox_url = \"https://host:0\"", "apns.sandbox_url"),
        ("[apns]\nkey_file = 1", "apns.key_file"),
        ("[apns]\nkey_id = []", "apns.key_id"),
        ("[apns]\nteam_id = 2", "apns.team_id"),
        ("[apns]\nca_file = false", "apns.ca_file"),
        ("[fcm]\nurl = \"https://user@fcm\"", "fcm.url"),
        ("[fcm]\ntoken_url = 5", "fcm.token_url"),
        ("[fcm]\nservice_account_file = 1", "fcm.service_account_file"),
        ("[fcm]\nproject_id = 1", "fcm.project_id"),
        ("[fcm]\nca_file = 1", "fcm.ca_file"),
        ("[presence]\nevents = \"yes\"", "presence.events"),
        ("[presence]\nevent = true", "presence.event"),
    ])
    func badFileValueNamesKey(_ toml: String, _ key: String) throws {
        let error = try #require(loadError(toml))
        #expect(error.key == key && error.environmentVariable == nil, "\(error)")
        #expect("\(error)".hasPrefix("\(key): "))
    }

    /// A bad value in the environment names the key and the variable, and says what was expected.
    @Test(arguments: [
        ("PUSHGW_NOTIFY_WORKERS", "many", "notify.workers", "expected an integer from 0 to 64"),
        ("PUSHGW_NOTIFY_MAX_ATTEMPTS", "0", "notify.max_attempts", "expected an integer from 1 to 100"),
        ("PUSHGW_NOTIFY_WEBHOOK_URL", "backend:80", "notify.webhook_url", "expected https://host[:port][/path]"),
        ("PUSHGW_APNS_URL", "apple", "apns.url", "expected https://host[:port][/path]"),
        ("PUSHGW_FCM_TOKEN_URL", "", "fcm.token_url", "expected https://host[:port][/path]"),
        ("PUSHGW_PRESENCE_EVENTS", "maybe", "presence.events", "expected true/false"),
    ])
    func badEnvironmentValueNamesKey(_ variable: String, _ value: String, _ key: String, _ message: String) throws {
        let error = try #require(loadError(nil, [variable: value]))
        #expect(error.key == key && error.environmentVariable == variable)
        #expect("\(error)".hasPrefix("\(key) (from \(variable)): \(message)"), "\(error)")
    }

    /// A provider switched on without what it needs stops the start, naming the missing key.
    @Test(arguments: [
        (["PUSHGW_NOTIFY_WEBHOOK_URL": "https://h/x"], "notify.webhook_secret"),
        (["PUSHGW_NOTIFY_WEBHOOK_URL": "https://h/x", "PUSHGW_NOTIFY_WEBHOOK_SECRET": ""], "notify.webhook_secret"),
        (["PUSHGW_APNS_KEY_FILE": "k.p8"], "apns.key_id"),
        (["PUSHGW_APNS_KEY_FILE": "k.p8", "PUSHGW_APNS_KEY_ID": "K"], "apns.team_id"),
        (["PUSHGW_APNS_KEY_FILE": "k.p8", "PUSHGW_APNS_TEAM_ID": "T"], "apns.key_id"),
    ])
    func providerNeedsItsKeys(_ environment: [String: String], _ key: String) throws {
        let error = try #require(loadError(nil, environment))
        #expect(error.key == key && error.message.hasPrefix("must be set when"), "\(error)")
        var complete = environment
        complete["PUSHGW_NOTIFY_WEBHOOK_SECRET"] = "s"
        complete["PUSHGW_APNS_KEY_ID"] = "K"
        complete["PUSHGW_APNS_TEAM_ID"] = "T"
        #expect(loadError(nil, complete) == nil)
    }
}
