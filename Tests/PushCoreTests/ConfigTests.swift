import Logging
import Testing

@testable import PushCore

private let shippedFile = String(#filePath.split(separator: "/").dropLast(3).map { "/" + $0 }.joined())
    + "/Config/pushgw.toml"

@Suite("Configuration")
struct ConfigTests {
    /// No file, no variables: every documented default, and a warning that the API is open.
    @Test func defaultsWithNoFile() throws {
        let (configuration, warnings) = try GatewayConfiguration.load(path: nil, environment: [:], cores: 3)
        #expect(configuration.server.tcp?.description == "0.0.0.0:3101")
        #expect(configuration.server.websocket?.description == "0.0.0.0:3102")
        #expect(configuration.server.http?.description == "0.0.0.0:3111")
        #expect(configuration.server.workers == 3)
        #expect(configuration.server.adminSocket == "run/pushgw.sock")
        #expect(configuration.redis.url == RedisURL(host: "127.0.0.1", port: 6379))
        #expect(configuration.auth.required == false && configuration.auth.secret == nil)
        #expect(configuration.api.keys.isEmpty)
        #expect(configuration.limits.maxFrame == 65536)
        #expect(configuration.limits.handshakeTimeout == 10)
        #expect(configuration.limits.heartbeat == 240)
        #expect(configuration.limits.idleTimeout == 310)
        #expect(configuration.limits.maxWriteQueue == 262_144)
        #expect(configuration.limits.maxBody == 1_048_576)
        #expect(configuration.limits.httpIdleTimeout == 60)
        #expect(configuration.inbox.max == 200 && configuration.inbox.ttl == 604_800)
        #expect(configuration.log.level == .info && configuration.log.format == .text)
        #expect(configuration == GatewayConfiguration(cores: 3))
        #expect(warnings == ["api.keys is empty: the HTTP API is open (development only)"])
    }

    /// The example file shipped in Config/ holds exactly the defaults, and mentions every key.
    @Test func shippedFileEqualsDefaults() throws {
        let (configuration, _) = try GatewayConfiguration.load(path: shippedFile, environment: [:], cores: 5)
        #expect(configuration == GatewayConfiguration(cores: 5))
        let text = try #require(try? GatewayConfiguration.readFile(shippedFile))
        for field in GatewayConfiguration.fields {
            #expect(text.contains("[\(field.section)]"), "section of \(field.key)")
            #expect(text.contains("\n\(field.name) =") || text.contains("\n# \(field.name) ="), "\(field.key)")
        }
    }

    /// A path that cannot be read is an error naming it.
    @Test func unreadablePath() {
        #expect {
            try GatewayConfiguration.load(path: "/nonexistent/pushgw.toml", environment: [:], cores: 1)
        } throws: { error in
            "\(error)".hasPrefix("/nonexistent/pushgw.toml: cannot read") && "\(error)".contains("No such file")
        }
    }

    /// A value in the file replaces the default; the environment wins over the file.
    @Test func environmentWinsOverFile() throws {
        let toml = "[limits]\nmax_frame = 1024\nheartbeat = 30.5\n"
        let configuration = try load(toml, ["PUSHGW_LIMITS_MAX_FRAME": "2048"])
        #expect(configuration.limits.maxFrame == 2048)
        #expect(configuration.limits.heartbeat == 30.5)
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

    /// Every kind of value can come from the environment.
    @Test(arguments: [
        Override("PUSHGW_SERVER_TCP", "127.0.0.1:0") { $0.server.tcp == ListenAddress(host: "127.0.0.1", port: 0) },
        Override("PUSHGW_SERVER_TCP", "") { $0.server.tcp == nil },
        Override("PUSHGW_SERVER_WEBSOCKET", "[::1]:9000") { $0.server.websocket?.description == "[::1]:9000" },
        Override("PUSHGW_SERVER_HTTP", " localhost:8080 ") { $0.server.http?.description == "127.0.0.1:8080" },
        Override("PUSHGW_SERVER_WORKERS", "7") { $0.server.workers == 7 },
        Override("PUSHGW_SERVER_ADMIN_SOCKET", "/tmp/a.sock") { $0.server.adminSocket == "/tmp/a.sock" },
        Override("PUSHGW_REDIS_URL", "redis://:pw@redis:7000/2") {
            $0.redis.url == RedisURL(host: "redis", port: 7000, password: "pw", db: 2)
        },
        Override("PUSHGW_REDIS_CLUSTER", "10.0.0.1:7000, [::1]:7001,10.0.0.1:7000") {
            $0.redis.cluster == [ClusterNode(host: "10.0.0.1", port: 7000), ClusterNode(host: "::1", port: 7001)]
        },
        Override("PUSHGW_REDIS_CLUSTER", "") { $0.redis.cluster.isEmpty },
        Override("PUSHGW_REDIS_WAIT_REPLICAS", "1") { $0.redis.waitReplicas == 1 },
        Override("PUSHGW_REDIS_WAIT_TIMEOUT_MS", "250") { $0.redis.waitTimeoutMillis == 250 },
        Override("PUSHGW_AUTH_SECRET", "s3cret") { $0.auth.secret == "s3cret" },
        Override("PUSHGW_API_KEYS", "a, b,,c,") { $0.api.keys == ["a", "b", "c"] },
        Override("PUSHGW_API_KEYS", "") { $0.api.keys.isEmpty },
        Override("PUSHGW_LIMITS_MAX_FRAME", "16") { $0.limits.maxFrame == 16 },
        Override("PUSHGW_LIMITS_HANDSHAKE_TIMEOUT", "2.5") { $0.limits.handshakeTimeout == 2.5 },
        Override("PUSHGW_LIMITS_HEARTBEAT", "60") { $0.limits.heartbeat == 60 && $0.limits.idleTimeout == 85 },
        Override("PUSHGW_LIMITS_MAX_WRITE_QUEUE", "1024") { $0.limits.maxWriteQueue == 1024 },
        Override("PUSHGW_LIMITS_MAX_BODY", "1") { $0.limits.maxBody == 1 },
        Override("PUSHGW_LIMITS_HTTP_IDLE_TIMEOUT", "0.5") { $0.limits.httpIdleTimeout == 0.5 },
        Override("PUSHGW_INBOX_MAX", "5") { $0.inbox.max == 5 },
        Override("PUSHGW_INBOX_TTL", "3600") { $0.inbox.ttl == 3600 },
        Override("PUSHGW_LOG_LEVEL", "DEBUG") { $0.log.level == .debug },
        Override("PUSHGW_LOG_FORMAT", "json") { $0.log.format == .json },
    ])
    func environmentOverride(_ override: Override) throws {
        let configuration = try load(nil, [override.variable: override.value])
        #expect(override.expect(configuration))
    }

    /// `auth.required` reads the usual spellings of a boolean from the environment.
    @Test(arguments: [("true", true), ("1", true), ("YES", true), ("false", false), ("0", false), ("no", false)])
    func environmentBoolean(_ text: String, _ value: Bool) throws {
        let configuration = try load(nil, ["PUSHGW_AUTH_REQUIRED": text, "PUSHGW_AUTH_SECRET": "k"])
        #expect(configuration.auth.required == value)
    }

    /// A bad value in the file names its key, exactly as written in the file.
    @Test(arguments: [
        ("[server]\ntcp = \"0.0.0.0\"", "server.tcp"),
        ("[server]\ntcp = \"1.2.3:80\"", "server.tcp"),
        ("[server]\ntcp = \"example.com:80\"", "server.tcp"),
        ("[server]\ntcp = \"0.0.0.0:65536\"", "server.tcp"),
        ("[server]\ntcp = \"0.0.0.0:+80\"", "server.tcp"),
        ("[server]\ntcp = 3101", "server.tcp"),
        ("[server]\ntcp = \"localhost\"", "server.tcp"),
        ("[server]\nwebsocket = \"::1:3102\"", "server.websocket"),
        ("[server]\nhttp = \"[::1]\"", "server.http"),
        ("[server]\nhttp = \"0.0.0.0:3101\"", "server.http"),
        ("[server]\nworkers = 0", "server.workers"),
        ("[server]\nworkers = \"4\"", "server.workers"),
        ("[server]\nadmin_socket = \"\"", "server.admin_socket"),
        ("[redis]\nurl = \"http://127.0.0.1\"", "redis.url"),
        ("[redis]\nurl = \"redis://host:0\"", "redis.url"),
        ("[redis]\nurl = \"redis://host/x\"", "redis.url"),
        ("[redis]\nurl = \"redis://password@host\"", "redis.url"),
        ("[redis]\ncluster = [\"10.0.0.1\"]", "redis.cluster"),
        ("[redis]\ncluster = \"10.0.0.1:7000,x:0\"", "redis.cluster"),
        ("[redis]\ncluster = [7000]", "redis.cluster"),
        ("[redis]\nwait_replicas = -1", "redis.wait_replicas"),
        ("[redis]\nwait_timeout_ms = 0", "redis.wait_timeout_ms"),
        ("[auth]\nrequired = \"yes\"", "auth.required"),
        ("[auth]\nsecret = 42", "auth.secret"),
        ("[api]\nkeys = \"abc\"", "api.keys"),
        ("[api]\nkeys = [1, 2]", "api.keys"),
        ("[api]\nkeys = [\"\"]", "api.keys"),
        ("[limits]\nmax_frame = 15", "limits.max_frame"),
        ("[limits]\nmax_frame = 16777217", "limits.max_frame"),
        ("[limits]\nmax_frame = 1024.0", "limits.max_frame"),
        ("[limits]\nhandshake_timeout = 0", "limits.handshake_timeout"),
        ("[limits]\nheartbeat = -1.5", "limits.heartbeat"),
        ("[limits]\nheartbeat = \"240\"", "limits.heartbeat"),
        ("[limits]\nmax_write_queue = 1023", "limits.max_write_queue"),
        ("[limits]\nmax_body = 0", "limits.max_body"),
        ("[limits]\nhttp_idle_timeout = 0", "limits.http_idle_timeout"),
        ("[inbox]\nmax = 0", "inbox.max"),
        ("[inbox]\nttl = 0", "inbox.ttl"),
        ("[log]\nlevel = \"verbose\"", "log.level"),
        ("[log]\nformat = \"xml\"", "log.format"),
    ])
    func badFileValueNamesKey(_ toml: String, _ key: String) throws {
        let error = try #require(loadError(toml))
        #expect(error.key == key)
        #expect(error.environmentVariable == nil)
        #expect("\(error)".hasPrefix("\(key): "))
    }

    /// A bad value in the environment names the key and the variable, and says what was expected.
    @Test(arguments: [
        ("PUSHGW_LIMITS_MAX_FRAME", "big", "limits.max_frame", "an integer from 16 to 16777216"),
        ("PUSHGW_LIMITS_MAX_FRAME", "8", "limits.max_frame", "an integer from 16 to 16777216"),
        ("PUSHGW_LIMITS_HEARTBEAT", "nan", "limits.heartbeat", "a number of seconds > 0"),
        ("PUSHGW_LIMITS_HANDSHAKE_TIMEOUT", "-1", "limits.handshake_timeout", "a number of seconds > 0"),
        ("PUSHGW_AUTH_REQUIRED", "maybe", "auth.required", "true/false"),
        ("PUSHGW_SERVER_TCP", "nowhere", "server.tcp", "IPv4:port"),
        ("PUSHGW_SERVER_WORKERS", "", "server.workers", "an integer"),
        ("PUSHGW_REDIS_URL", "localhost:6379", "redis.url", "redis://"),
        ("PUSHGW_REDIS_CLUSTER", "a:1,b", "redis.cluster", "host:port seeds"),
        ("PUSHGW_INBOX_TTL", "1d", "inbox.ttl", "an integer >= 1"),
        ("PUSHGW_LOG_LEVEL", "loud", "log.level", "one of trace, debug"),
    ])
    func badEnvironmentValueNamesKey(_ variable: String, _ value: String, _ key: String, _ expected: String) throws {
        let error = try #require(loadError(nil, [variable: value]))
        #expect(error.key == key && error.environmentVariable == variable)
        #expect("\(error)".hasPrefix("\(key) (from \(variable)): expected \(expected)"))
    }

    /// A typo in a section or key stops the start instead of being ignored.
    @Test(arguments: [
        ("[limits]\nmax_frames = 100", "limits.max_frames"),
        ("[limit]\nmax_frame = 100", "limit"),
        ("workers = 2", "workers"),
        ("[server.extra]\nx = 1", "server.extra"),
    ])
    func unknownFileKeyRejected(_ toml: String, _ key: String) throws {
        let error = try #require(loadError(toml))
        #expect(error.key == key)
        #expect(error.message.hasPrefix("unknown"))
    }

    /// Variables for our sections that are not settings warn; other PUSHGW_ variables are none of our business.
    @Test func unknownEnvironmentVariablesWarn() throws {
        let environment = ["PUSHGW_LIMITS_MAX_FRAMES": "1", "PUSHGW_HOME": "/x", "PUSHGW_API_KEYS": "k"]
        let (_, warnings) = try GatewayConfiguration.load(toml: nil, environment: environment, cores: 1)
        #expect(warnings == ["PUSHGW_LIMITS_MAX_FRAMES is not a pushgw setting: ignored"])
    }

    /// A TOML syntax error says where.
    @Test func syntaxErrorHasLine() throws {
        let error = try #require(loadError("[server]\ntcp = \"0.0.0.0:1\"\nworkers = = 2\n"))
        #expect(error.message.contains("syntax error at line 3"))
    }

    /// An empty address turns a listener off; absent keeps the default.
    @Test func emptyAddressTurnsListenerOff() throws {
        let configuration = try load("[server]\ntcp = \"\"\nhttp = \"127.0.0.1:0\"\n")
        #expect(configuration.server.tcp == nil)
        #expect(configuration.server.websocket?.description == "0.0.0.0:3102")
        #expect(configuration.server.http == ListenAddress(host: "127.0.0.1", port: 0))
    }

    /// Listen addresses: IPv4, IPv6 in brackets, localhost, port 0; names and bare IPv6 are refused.
    @Test(arguments: [
        ("0.0.0.0:3101", "0.0.0.0", 3101, false),
        ("127.0.0.1:0", "127.0.0.1", 0, false),
        ("localhost:3101", "127.0.0.1", 3101, false),
        ("[::1]:3101", "::1", 3101, true),
        ("[::]:80", "::", 80, true),
        ("[::ffff:10.0.0.1]:65535", "::ffff:10.0.0.1", 65535, true),
    ])
    func listenAddress(_ text: String, _ host: String, _ port: Int, _ isIPv6: Bool) throws {
        let address = try #require(ListenAddress(text))
        #expect(address.host == host && Int(address.port) == port && address.isIPv6 == isIPv6)
        #expect(ListenAddress(address.description) == address)
    }

    @Test(arguments: ["", "3101", ":3101", "::1:3101", "[::1]3101", "[1.2.3.4]:1", "1.2.3.4:", "host:1", "[::1]:-1"])
    func invalidListenAddress(_ text: String) {
        #expect(ListenAddress(text) == nil)
    }

    /// Redis URLs with and without credentials, port and database.
    @Test(arguments: [
        ("redis://127.0.0.1", RedisURL(host: "127.0.0.1")),
        ("redis://redis.internal:6380", RedisURL(host: "redis.internal", port: 6380)),
        ("redis://:secret@h/3", RedisURL(host: "h", password: "secret", db: 3)),
        ("redis://app:p%40ss@h:1/", RedisURL(host: "h", port: 1, username: "app", password: "p@ss")),
        ("redis://[::1]:7000/0", RedisURL(host: "::1", port: 7000)),
        ("redis://[::1]", RedisURL(host: "::1")),
    ])
    func redisURL(_ text: String, _ expected: RedisURL) throws {
        #expect(RedisURL(text) == expected)
    }

    @Test(arguments: [
        "", "redis://", "rediss://h", "redis://h:x", "redis://h:0", "redis://h/-1", "redis://a b", "redis://h?x",
        "redis://password@h", "redis://:p%4@h",
    ])
    func invalidRedisURL(_ text: String) {
        #expect(RedisURL(text) == nil)
    }

    /// The password never reaches a log line.
    @Test func redisURLDescriptionHidesPassword() {
        #expect(RedisURL(host: "h", password: "pw").description == "redis://:***@h:6379/0")
        #expect(RedisURL(host: "::1").description == "redis://[::1]:6379/0")
    }

    /// auth.required without a secret cannot start, and says which key is missing.
    @Test(arguments: [
        ("[auth]\nrequired = true", [String: String]()),
        ("[auth]\nrequired = true\nsecret = \"\"", [:]),
        (nil, ["PUSHGW_AUTH_REQUIRED": "yes"]),
    ])
    func requiredAuthNeedsSecret(_ toml: String?, _ environment: [String: String]) throws {
        let error = try #require(loadError(toml, environment))
        #expect(error.key == "auth.secret")
        #expect(try load(toml, environment.merging(["PUSHGW_AUTH_SECRET": "k"]) { $1 }).auth.required)
    }

    // MARK: - The internet edge (SPEC §8; the TLS keys are elsewhere)

    /// The edge keys' defaults: off or generous.
    @Test func edgeDefaults() throws {
        let configuration = try load()
        #expect(configuration.server.proxyProtocol == false && configuration.server.group == "default")
        #expect(configuration.api.allow.isEmpty)
        let limits = configuration.limits
        #expect(limits.apiLimit == .unlimited && limits.connectLimit == .unlimited && limits.maxConnsPerIP == 0)
        #expect(limits.clientRate == 50 && limits.clientBurst == 200)
        #expect(limits.clientLimit == RateLimit(rate: 50, burst: 200))
        #expect(limits.autobanErrors == 50 && limits.autobanWindow == 60 && limits.autobanTTL == 600)
    }

    /// Every edge key can come from the environment.
    @Test(arguments: [
        Override("PUSHGW_SERVER_PROXY_PROTOCOL", "yes") { $0.server.proxyProtocol },
        Override("PUSHGW_SERVER_GROUP", "gray") { $0.server.group == "gray" },
        Override("PUSHGW_API_ALLOW", "10.0.0.0/8, 192.0.2.7,2001:db8::/32") {
            $0.api.allow.map(\.description) == ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
        },
        Override("PUSHGW_LIMITS_API_RATE", "100") { $0.limits.apiLimit == RateLimit(rate: 100, burst: 100) },
        Override("PUSHGW_LIMITS_API_BURST", "20") { $0.limits.apiBurst == 20 },
        Override("PUSHGW_LIMITS_CONNECT_RATE", "0.5") { $0.limits.connectRate == 0.5 },
        Override("PUSHGW_LIMITS_CONNECT_BURST", "5") { $0.limits.connectBurst == 5 },
        Override("PUSHGW_LIMITS_MAX_CONNS_PER_IP", "100") { $0.limits.maxConnsPerIP == 100 },
        Override("PUSHGW_LIMITS_CLIENT_RATE", "0") { $0.limits.clientLimit.isUnlimited },
        Override("PUSHGW_LIMITS_CLIENT_BURST", "10") { $0.limits.clientBurst == 10 },
        Override("PUSHGW_LIMITS_AUTOBAN_ERRORS", "0") { $0.limits.autobanErrors == 0 },
        Override("PUSHGW_LIMITS_AUTOBAN_WINDOW", "2.5") { $0.limits.autobanWindow == 2.5 },
        Override("PUSHGW_LIMITS_AUTOBAN_TTL", "86400") { $0.limits.autobanTTL == 86400 },
    ])
    func edgeEnvironmentOverride(_ override: Override) throws {
        #expect(override.expect(try load(nil, [override.variable: override.value])))
    }

    /// The edge keys from the file, with every kind of value.
    @Test func edgeFromFile() throws {
        let toml = """
            [server]
            proxy_protocol = true
            group = "canary"
            [api]
            allow = ["127.0.0.1", "::1", "10.1.0.0/16"]
            [limits]
            api_rate = 2.5
            connect_rate = 10
            client_burst = 0
            """
        let configuration = try load(toml)
        #expect(configuration.server.proxyProtocol && configuration.server.group == "canary")
        #expect(configuration.api.allow == [try CIDR("127.0.0.1"), try CIDR("::1"), try CIDR("10.1.0.0/16")])
        #expect(configuration.limits.apiRate == 2.5 && configuration.limits.connectRate == 10)
        #expect(configuration.limits.clientLimit == RateLimit(rate: 50, burst: 50))
    }

    /// A bad edge value in the file names its key.
    @Test(arguments: [
        ("[server]\nproxy_protocol = \"on\"", "server.proxy_protocol"),
        ("[server]\ngroup = \"\"", "server.group"),
        ("[api]\nallow = \"10.0.0.0/8\"", "api.allow"),
        ("[api]\nallow = [\"10.0.0.0/33\"]", "api.allow"),
        ("[limits]\napi_rate = -1", "limits.api_rate"),
        ("[limits]\napi_burst = 1.5", "limits.api_burst"),
        ("[limits]\nconnect_rate = \"fast\"", "limits.connect_rate"),
        ("[limits]\nconnect_burst = -1", "limits.connect_burst"),
        ("[limits]\nmax_conns_per_ip = -1", "limits.max_conns_per_ip"),
        ("[limits]\nclient_rate = nan", "limits.client_rate"),
        ("[limits]\nclient_burst = -5", "limits.client_burst"),
        ("[limits]\nautoban_errors = -1", "limits.autoban_errors"),
        ("[limits]\nautoban_window = 0", "limits.autoban_window"),
        ("[limits]\nautoban_ttl = 0", "limits.autoban_ttl"),
    ])
    func edgeBadFileValueNamesKey(_ toml: String, _ key: String) throws {
        let error = try #require(loadError(toml))
        #expect(error.key == key && error.environmentVariable == nil)
        #expect("\(error)".hasPrefix("\(key): "))
    }

    /// A bad edge value in the environment names the key and the variable, and says what was wrong.
    @Test(arguments: [
        ("PUSHGW_API_ALLOW", "10.0.0.1/8", "api.allow", "\"10.0.0.1/8\" has bits set after the prefix"),
        ("PUSHGW_API_ALLOW", "10.0.0.0/8,intranet", "api.allow", "\"intranet\" is not an IPv4 or IPv6 address"),
        ("PUSHGW_LIMITS_API_RATE", "-2", "limits.api_rate", "expected a number per second >= 0"),
        ("PUSHGW_LIMITS_CLIENT_RATE", "inf", "limits.client_rate", "expected a number per second >= 0"),
        ("PUSHGW_LIMITS_MAX_CONNS_PER_IP", "many", "limits.max_conns_per_ip", "expected an integer from 0"),
        ("PUSHGW_SERVER_PROXY_PROTOCOL", "maybe", "server.proxy_protocol", "expected true/false"),
        ("PUSHGW_LIMITS_AUTOBAN_TTL", "0", "limits.autoban_ttl", "expected an integer from 1"),
    ])
    func edgeBadEnvironmentValueNamesKey(_ variable: String, _ value: String, _ key: String, _ message: String) throws {
        let error = try #require(loadError(nil, [variable: value]))
        #expect(error.key == key && error.environmentVariable == variable)
        #expect("\(error)".hasPrefix("\(key) (from \(variable)): \(message)"))
    }
}
