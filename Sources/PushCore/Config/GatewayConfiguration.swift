import Logging

/// Everything the gateway reads at start, each setting with its default beside it.
///
/// Build one with `GatewayConfiguration.load(path:environment:cores:)`, which reads `Config/pushgw.toml` and then
/// the `PUSHGW_<SECTION>_<KEY>` environment variables. The example file lists every key with the same defaults.
public struct GatewayConfiguration: Sendable, Equatable {
    /// `[server]`: listeners, worker processes and the admin socket.
    public var server: Server
    /// `[redis]`: the Redis server that holds sessions, inboxes and routes.
    public var redis = Redis()
    /// `[auth]`: client tokens.
    public var auth = Auth()
    /// `[api]`: keys for the backends' HTTP API.
    public var api = API()
    /// `[limits]`: sizes and timeouts per connection.
    public var limits = Limits()
    /// `[inbox]`: messages kept for offline users.
    public var inbox = Inbox()
    /// `[tls]`: the certificate of the TLS listeners (`server.tls`, `server.wss`, `server.https`).
    public var tls = TLS()
    /// `[log]`: what is logged, and how.
    public var log = Log()
    /// `[notify]`: the notifier processes and the webhook provider (SPEC §10).
    public var notify = Notify()
    /// `[apns]`: Apple Push Notification service.
    public var apns = APNs()
    /// `[fcm]`: Firebase Cloud Messaging.
    public var fcm = FCM()
    /// `[presence]`: online/offline events of users.
    public var presence = Presence()

    /// The defaults, with one worker per core.
    public init(cores: Int) {
        self.server = Server(workers: max(1, cores))
    }
}

extension GatewayConfiguration {
    /// `[server]`: where the gateway listens and how many workers it runs.
    public struct Server: Sendable, Equatable {
        /// `server.tcp`: the client TCP listener. Default `0.0.0.0:3101`; `""` turns it off.
        public var tcp: ListenAddress? = ListenAddress(host: "0.0.0.0", port: 3101)
        /// `server.websocket`: the client WebSocket listener. Default `0.0.0.0:3102`; `""` turns it off.
        public var websocket: ListenAddress? = ListenAddress(host: "0.0.0.0", port: 3102)
        /// `server.http`: the backends' HTTP API listener. Default `0.0.0.0:3111`; `""` turns it off.
        public var http: ListenAddress? = ListenAddress(host: "0.0.0.0", port: 3111)
        /// `server.tls`: the client protocol over TLS (SPEC §8). Default off; e.g. `0.0.0.0:3103`.
        public var tls: ListenAddress? = nil
        /// `server.wss`: WebSocket over TLS. Default off; e.g. `0.0.0.0:3104`.
        public var wss: ListenAddress? = nil
        /// `server.https`: the HTTP API over TLS. Default off.
        public var https: ListenAddress? = nil
        /// `server.workers`: worker processes, at least 1. Default: the number of cores.
        public var workers: Int
        /// `server.admin_socket`: path of the admin Unix socket. Default `run/pushgw.sock`.
        public var adminSocket = "run/pushgw.sock"
        /// `server.drain_timeout`: seconds a stopping worker spreads its clients' DISCONNECTs over before it
        /// exits, > 0. Default 10.
        public var drainTimeout: Double = 10
        /// `server.proxy_protocol`: the client listeners (tcp, websocket, tls, wss; not the HTTP API's) expect a PROXY
        /// v1/v2 header (HAProxy, cloud load balancers) and take the client's address from it; a connection without
        /// one is closed. Default `false`.
        public var proxyProtocol = false
        /// `server.group`: the group this node's gateways belong to, for the route rules' gray release. Default
        /// `default`.
        public var group = "default"

        /// The defaults, with `workers` worker processes.
        public init(workers: Int) {
            self.workers = workers
        }
    }

    /// `[redis]`: the Redis server.
    public struct Redis: Sendable, Equatable {
        /// `redis.url`: `redis://[[user]:password@]host[:port][/db]`. Default `redis://127.0.0.1:6379`.
        public var url = RedisURL(host: "127.0.0.1")
        /// `redis.cluster`: seeds (`host:port`) of a Redis Cluster (SPEC §9); when set, storage runs on the cluster
        /// and `redis.url` is not used. Default none (one Redis server at `redis.url`).
        public var cluster: [ClusterNode] = []
        /// `redis.wait_replicas`: a stored push is answered 200 only once this many replicas have it (`WAIT`).
        /// Default 0 (answered once the master has it).
        public var waitReplicas = 0
        /// `redis.wait_timeout_ms`: how long `WAIT` waits for those replicas before the push is answered 503
        /// (a retry with the same `id` is safe). Default 100.
        public var waitTimeoutMillis = 100

        /// The defaults.
        public init() {}
    }

    /// `[auth]`: whether clients must present a signed token, and the key that signs them.
    public struct Auth: Sendable, Equatable {
        /// `auth.required`: reject clients without a valid token. Default `false`.
        public var required = false
        /// `auth.secret`: the HMAC key for tokens. Default none; must be set when `auth.required` is true.
        public var secret: String? = nil
        /// `auth.token_ttl`: seconds a token from `POST /v1/register` stays valid, at least 1. Default 2592000
        /// (30 days).
        public var tokenTTL = 2_592_000

        /// The defaults.
        public init() {}
    }

    /// `[api]`: who may call the HTTP API.
    public struct API: Sendable, Equatable {
        /// `api.keys`: accepted API keys. Default empty, which leaves the API open (development only).
        public var keys: [String] = []
        /// `api.allow`: addresses and ranges allowed to call the HTTP API besides the keys; others get 403
        /// `forbidden` (`/healthz` stays open). Default empty: any address.
        public var allow: [CIDR] = []

        /// The defaults.
        public init() {}
    }

    /// `[limits]`: bounds on every connection, so one peer cannot hold more than its share.
    public struct Limits: Sendable, Equatable {
        /// `limits.max_frame`: largest client frame in bytes, 16 to 16 MiB. Default 65536.
        public var maxFrame = 65536
        /// `limits.handshake_timeout`: seconds a new connection has to authenticate, > 0. Default 10.
        public var handshakeTimeout: Double = 10
        /// `limits.heartbeat`: seconds between client heartbeats, > 0. Default 240.
        public var heartbeat: Double = 240
        /// `limits.max_write_queue`: bytes queued to one client before it is dropped, at least 1024. Default 262144.
        public var maxWriteQueue = 262_144
        /// `limits.max_body`: largest HTTP request body in bytes, at least 1. Default 1048576.
        public var maxBody = 1_048_576
        /// `limits.http_idle_timeout`: seconds an idle HTTP keep-alive connection is kept, > 0. Default 60.
        public var httpIdleTimeout: Double = 60
        // Rates are per second and ≥ 0, 0 for unlimited; a burst of 0 is one second's worth (`RateLimit`).
        /// `limits.api_rate`, `limits.api_burst`: HTTP API requests per API key per instance; over it, 429
        /// `rate_limited` with `Retry-After`. Default 0, 0 (unlimited).
        public var apiRate: Double = 0
        public var apiBurst = 0
        /// `limits.connect_rate`, `limits.connect_burst`: new client connections per client address per instance;
        /// over it, closed at accept. Default 0, 0 (unlimited).
        public var connectRate: Double = 0
        public var connectBurst = 0
        /// `limits.max_conns_per_ip`: open client connections per address per instance, ≥ 0. Default 0 (no maximum).
        public var maxConnsPerIP = 0
        /// `limits.client_rate`, `limits.client_burst`: frames per connection, heartbeats and ACKs excluded; over
        /// it, ERROR `rate_limited`. Default 50, 200.
        public var clientRate: Double = 50
        public var clientBurst = 200
        /// `limits.autoban_errors`: failed AUTHs or fatal protocol errors from one address within
        /// `autoban_window` beyond which it is banned for `autoban_ttl`, ≥ 0. Default 50; 0 turns it off.
        public var autobanErrors = 50
        /// `limits.autoban_window`: seconds, > 0. Default 60.
        public var autobanWindow: Double = 60
        /// `limits.autoban_ttl`: seconds an automatic ban lasts, at least 1. Default 600.
        public var autobanTTL = 600

        /// The defaults.
        public init() {}

        /// `api_rate`/`api_burst` as a policy.
        public var apiLimit: RateLimit { RateLimit(rate: apiRate, burst: apiBurst) }
        /// `connect_rate`/`connect_burst` as a policy.
        public var connectLimit: RateLimit { RateLimit(rate: connectRate, burst: connectBurst) }
        /// `client_rate`/`client_burst` as a policy.
        public var clientLimit: RateLimit { RateLimit(rate: clientRate, burst: clientBurst) }

        /// Seconds without a frame after which a client is dropped: a heartbeat late by a quarter, plus 10 s of
        /// slack for slow mobile networks.
        public var idleTimeout: Double { heartbeat * 1.25 + 10 }
    }

    /// `[inbox]`: messages kept in Redis for users who are offline.
    public struct Inbox: Sendable, Equatable {
        /// `inbox.max`: messages kept per user, at least 1; older ones are dropped. Default 200.
        public var max = 200
        /// `inbox.ttl`: seconds a message is kept, at least 1. Default 604800 (7 days).
        public var ttl = 604_800

        /// The defaults.
        public init() {}
    }

    /// `[tls]`: the certificate and protocol floor of every TLS listener.
    public struct TLS: Sendable, Equatable {
        /// `tls.cert`: PEM file with the certificate, then any intermediates (a chain). Default none; required
        /// when a TLS listener is on.
        public var cert: String? = nil
        /// `tls.key`: PEM file with the certificate's private key. Default none; required with `tls.cert`.
        public var key: String? = nil
        /// `tls.min_version`: the oldest protocol accepted, `1.2` or `1.3`. Default `1.2`.
        public var minVersion: TLSVersion = .v1_2

        /// The defaults.
        public init() {}
    }

    /// The TLS listeners that are on, with their keys.
    public var tlsListeners: [(key: String, address: ListenAddress)] {
        [("server.tls", server.tls), ("server.wss", server.wss), ("server.https", server.https)]
            .compactMap { key, address in address.map { (key, $0) } }
    }

    /// `[log]`: the log written to stderr.
    public struct Log: Sendable, Equatable {
        /// `log.level`: trace, debug, info, notice, warning, error or critical. Default `info`.
        public var level: Logger.Level = .info
        /// `log.format`: `text` for people, `json` for one JSON object a line. Default `text`.
        public var format: LogFormat = .text

        /// The defaults.
        public init() {}
    }
}

/// How log lines are written.
public enum LogFormat: String, Sendable, Equatable, CaseIterable {
    /// Plain text for a person at a terminal.
    case text
    /// One JSON object a line, for log collectors.
    case json
}

/// A TLS protocol version, as `tls.min_version` spells it.
public enum TLSVersion: String, Sendable, Equatable, CaseIterable {
    case v1_2 = "1.2"
    case v1_3 = "1.3"
}

/// An address to listen on: an IPv4 or IPv6 literal and a port (0 lets the OS pick one).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// The address as a literal: `0.0.0.0`, `127.0.0.1`, `::1`; IPv6 without brackets.
    public var host: String
    /// The port; 0 lets the OS pick one.
    public var port: UInt16
    /// Whether `host` is an IPv6 literal.
    public var isIPv6: Bool

    /// An address from a literal host, which is not checked here: `ListenAddress("host:port")` checks it.
    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
        self.isIPv6 = host.contains(":")
    }

    /// `host:port`, or `[host]:port` for IPv6, as `ListenAddress(_:)` reads it back.
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Where Redis is: `redis://[[user]:password@]host[:port][/db]`.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    /// Host name or address literal; IPv6 without brackets.
    public var host: String
    /// TCP port. Default 6379.
    public var port: UInt16
    /// The ACL user for `AUTH user password`; nil uses Redis's `default` user.
    public var username: String?
    /// The password for `AUTH`; nil sends no `AUTH`.
    public var password: String?
    /// The database for `SELECT`. Default 0.
    public var db: Int

    /// A URL from its parts.
    public init(host: String, port: UInt16 = 6379, username: String? = nil, password: String? = nil, db: Int = 0) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.db = db
    }

    /// The URL with the password masked, safe to log.
    public var description: String {
        let credentials = password == nil ? "" : "\(username ?? ""):***@"
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "redis://\(credentials)\(host):\(port)/\(db)"
    }
}
