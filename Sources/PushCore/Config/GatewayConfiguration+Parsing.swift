import Logging
import TOMLKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension GatewayConfiguration {
    /// Reads the TOML file at `path` (nil: no file, only defaults), then the `PUSHGW_*` environment variables.
    ///
    /// - Parameter cores: the number of cores, the default for `server.workers`.
    /// - Returns: the configuration, and warnings to log (ignored variables, an open API).
    /// - Throws: `ConfigError` naming the path if the file cannot be read, or the key whose value is bad.
    public static func load(
        path: String?,
        environment: [String: String],
        cores: Int
    ) throws -> (GatewayConfiguration, warnings: [String]) {
        guard let path else {
            return try load(toml: nil, environment: environment, cores: cores)
        }
        let text = try readFile(path)
        return try load(toml: text, fileName: path, environment: environment, cores: cores)
    }

    /// Reads settings from TOML text (nil: only defaults), then the `PUSHGW_<SECTION>_<KEY>` environment variables,
    /// which win over the file.
    public static func load(
        toml: String?,
        environment: [String: String],
        cores: Int
    ) throws -> (GatewayConfiguration, warnings: [String]) {
        try load(toml: toml, fileName: nil, environment: environment, cores: cores)
    }

    static func load(
        toml: String?,
        fileName: String?,
        environment: [String: String],
        cores: Int
    ) throws -> (GatewayConfiguration, warnings: [String]) {
        var configuration = GatewayConfiguration(cores: cores)
        let fileSettings = try toml.map { try Self.fileSettings($0, fileName: fileName) } ?? []
        let (environmentSettings, warnings) = Self.environmentSettings(environment)
        for setting in fileSettings + environmentSettings {
            try Self.fieldsByKey[setting.key]!.apply(&configuration, setting)
        }
        try configuration.validate()
        var allWarnings = warnings
        if configuration.api.keys.isEmpty {
            allWarnings.append("api.keys is empty: the HTTP API is open (development only)")
        }
        return (configuration, allWarnings)
    }

    /// Checks that involve more than one key.
    func validate() throws {
        if auth.required && (auth.secret ?? "").isEmpty {
            throw ConfigError(
                key: "auth.secret",
                message: "must be set when auth.required is true (in [auth] or PUSHGW_AUTH_SECRET)"
            )
        }
        if notify.webhookURL != nil && notify.webhookSecret == nil {
            throw ConfigError(
                key: "notify.webhook_secret",
                message: "must be set when notify.webhook_url is set (in [notify] or PUSHGW_NOTIFY_WEBHOOK_SECRET)"
            )
        }
        if apns.keyFile != nil {
            for (key, value) in [("apns.key_id", apns.keyID), ("apns.team_id", apns.teamID)] where value == nil {
                throw ConfigError(key: key, message: "must be set when apns.key_file is set")
            }
        }
        let listeners = [
            ("server.tcp", server.tcp), ("server.websocket", server.websocket), ("server.http", server.http),
            ("server.tls", server.tls), ("server.wss", server.wss), ("server.https", server.https),
        ]
        if let (listener, _) = tlsListeners.first {
            for (key, value) in [("tls.cert", tls.cert), ("tls.key", tls.key)] where value == nil {
                throw ConfigError(key: key, message: "must be set (a PEM file) when \(listener) is on")
            }
        }
        for (index, (key, address)) in listeners.enumerated() {
            guard let address, address.port != 0 else { continue }
            for (otherKey, other) in listeners[..<index] {
                if let other, address.overlaps(other) {
                    throw ConfigError(key: key, message: "\(address) is already used by \(otherKey) (\(other))")
                }
            }
        }
    }
}

// MARK: - Keys

extension GatewayConfiguration {
    /// One key: its dotted name and how a raw value is checked and stored.
    struct Field: Sendable {
        let key: String
        let apply: @Sendable (inout GatewayConfiguration, RawSetting) throws -> Void

        init(_ key: String, _ apply: @escaping @Sendable (inout GatewayConfiguration, RawSetting) throws -> Void) {
            self.key = key
            self.apply = apply
        }

        var section: String { String(key.prefix { $0 != "." }) }
        var name: String { String(key.drop { $0 != "." }.dropFirst()) }
        /// `limits.max_frame` → `PUSHGW_LIMITS_MAX_FRAME`.
        var variable: String { "PUSHGW_" + String(key.uppercased().map { $0 == "." ? "_" : $0 }) }
    }

    /// Every key, in the order of the example file. Ranges here are the documented ones in the struct.
    static let fields: [Field] = [
        Field("server.tcp") { $0.server.tcp = try $1.listenAddress() },
        Field("server.websocket") { $0.server.websocket = try $1.listenAddress() },
        Field("server.http") { $0.server.http = try $1.listenAddress() },
        Field("server.tls") { $0.server.tls = try $1.listenAddress() },
        Field("server.wss") { $0.server.wss = try $1.listenAddress() },
        Field("server.https") { $0.server.https = try $1.listenAddress() },
        Field("server.workers") { $0.server.workers = try $1.int(1...1024) },
        Field("server.admin_socket") { $0.server.adminSocket = try $1.nonEmptyString() },
        Field("server.drain_timeout") { $0.server.drainTimeout = try $1.seconds() },
        Field("server.proxy_protocol") { $0.server.proxyProtocol = try $1.bool() },
        Field("server.group") { $0.server.group = try $1.nonEmptyString() },
        Field("redis.url") { $0.redis.url = try $1.redisURL() },
        Field("redis.cluster") { $0.redis.cluster = try $1.clusterSeeds() },
        Field("redis.wait_replicas") { $0.redis.waitReplicas = try $1.int(0...64) },
        Field("redis.wait_timeout_ms") { $0.redis.waitTimeoutMillis = try $1.int(1...60_000) },
        Field("auth.required") { $0.auth.required = try $1.bool() },
        Field("auth.secret") { $0.auth.secret = try $1.optionalString() },
        Field("auth.token_ttl") { $0.auth.tokenTTL = try $1.int(1...Int(Int32.max)) },
        Field("api.keys") { $0.api.keys = try $1.strings() },
        Field("api.allow") { $0.api.allow = try $1.ranges() },
        Field("limits.max_frame") { $0.limits.maxFrame = try $1.int(16...16 << 20) },
        Field("limits.handshake_timeout") { $0.limits.handshakeTimeout = try $1.seconds() },
        Field("limits.heartbeat") { $0.limits.heartbeat = try $1.seconds() },
        Field("limits.max_write_queue") { $0.limits.maxWriteQueue = try $1.int(1024...Int.max) },
        Field("limits.max_body") { $0.limits.maxBody = try $1.int(1...Int.max) },
        Field("limits.http_idle_timeout") { $0.limits.httpIdleTimeout = try $1.seconds() },
        Field("limits.api_rate") { $0.limits.apiRate = try $1.rate() },
        Field("limits.api_burst") { $0.limits.apiBurst = try $1.int(0...Int(Int32.max)) },
        Field("limits.connect_rate") { $0.limits.connectRate = try $1.rate() },
        Field("limits.connect_burst") { $0.limits.connectBurst = try $1.int(0...Int(Int32.max)) },
        Field("limits.max_conns_per_ip") { $0.limits.maxConnsPerIP = try $1.int(0...Int(Int32.max)) },
        Field("limits.client_rate") { $0.limits.clientRate = try $1.rate() },
        Field("limits.client_burst") { $0.limits.clientBurst = try $1.int(0...Int(Int32.max)) },
        Field("limits.autoban_errors") { $0.limits.autobanErrors = try $1.int(0...Int(Int32.max)) },
        Field("limits.autoban_window") { $0.limits.autobanWindow = try $1.seconds() },
        Field("limits.autoban_ttl") { $0.limits.autobanTTL = try $1.int(1...Int(Int32.max)) },
        Field("inbox.max") { $0.inbox.max = try $1.int(1...Int.max) },
        Field("inbox.ttl") { $0.inbox.ttl = try $1.int(1...Int.max) },
        Field("tls.cert") { $0.tls.cert = try $1.optionalString() },
        Field("tls.key") { $0.tls.key = try $1.optionalString() },
        Field("tls.min_version") { $0.tls.minVersion = try $1.oneOf(TLSVersion.allCases) },
        Field("log.level") { $0.log.level = try $1.oneOf(Logger.Level.allCases) },
        Field("log.format") { $0.log.format = try $1.oneOf(LogFormat.allCases) },
        Field("notify.workers") { $0.notify.workers = try $1.int(0...64) },
        Field("notify.max_attempts") { $0.notify.maxAttempts = try $1.int(1...100) },
        Field("notify.webhook_url") { $0.notify.webhookURL = try $1.optionalProviderURL() },
        Field("notify.webhook_secret") { $0.notify.webhookSecret = try $1.optionalString() },
        Field("notify.claim_after") { $0.notify.claimAfter = try $1.seconds() },
        Field("notify.webhook_ca_file") { $0.notify.webhookCAFile = try $1.optionalString() },
        Field("apns.url") { $0.apns.url = try $1.providerURL() },
        Field("apns.sandbox_url") { $0.apns.sandboxURL = try $1.providerURL() },
        Field("apns.key_file") { $0.apns.keyFile = try $1.optionalString() },
        Field("apns.key_id") { $0.apns.keyID = try $1.optionalString() },
        Field("apns.team_id") { $0.apns.teamID = try $1.optionalString() },
        Field("apns.ca_file") { $0.apns.caFile = try $1.optionalString() },
        Field("fcm.url") { $0.fcm.url = try $1.providerURL() },
        Field("fcm.token_url") { $0.fcm.tokenURL = try $1.providerURL() },
        Field("fcm.service_account_file") { $0.fcm.serviceAccountFile = try $1.optionalString() },
        Field("fcm.project_id") { $0.fcm.projectID = try $1.optionalString() },
        Field("fcm.ca_file") { $0.fcm.caFile = try $1.optionalString() },
        Field("presence.events") { $0.presence.events = try $1.bool() },
    ]

    static let fieldsByKey = Dictionary(uniqueKeysWithValues: fields.map { ($0.key, $0) })

    /// The sections in file order: `server`, `redis`, …
    static let sections: [String] = fields.reduce(into: []) { sections, field in
        if !sections.contains(field.section) { sections.append(field.section) }
    }
}

// MARK: - Sources

extension GatewayConfiguration {
    /// The settings in a TOML document; any section or key that is not ours is an error, to catch typos.
    static func fileSettings(_ text: String, fileName: String?) throws -> [RawSetting] {
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let position = error.source.begin
            throw ConfigError(
                key: fileName ?? "TOML",
                message: "syntax error at line \(position.line), column \(position.column): \(error.description)"
            )
        }
        let known = sections.map { "[\($0)]" }.joined(separator: ", ")
        var settings: [RawSetting] = []
        for (section, value) in root {
            guard sections.contains(section) else {
                throw ConfigError(key: section, message: "unknown section; the sections are \(known)")
            }
            guard let table = value.table else {
                throw ConfigError(key: section, message: "expected a [\(section)] table, got \(value.type)")
            }
            for (name, value) in table {
                let key = "\(section).\(name)"
                guard fieldsByKey[key] != nil else {
                    let names = fields.filter { $0.section == section }.map(\.name).joined(separator: ", ")
                    throw ConfigError(key: key, message: "unknown key; the keys in [\(section)] are \(names)")
                }
                settings.append(RawSetting(key: key, value: .toml(value)))
            }
        }
        return settings
    }

    /// Our settings among `PUSHGW_*` variables, and a warning for each `PUSHGW_<SECTION>_*` that is not one.
    ///
    /// Other tools use the `PUSHGW_` prefix too, so only names inside one of our sections are flagged.
    static func environmentSettings(_ environment: [String: String]) -> ([RawSetting], warnings: [String]) {
        let fieldsByVariable = Dictionary(uniqueKeysWithValues: fields.map { ($0.variable, $0) })
        let sectionPrefixes = sections.map { "PUSHGW_\($0.uppercased())_" }
        var settings: [RawSetting] = []
        var warnings: [String] = []
        for (variable, value) in environment.sorted(by: { $0.key < $1.key }) where variable.hasPrefix("PUSHGW_") {
            if let field = fieldsByVariable[variable] {
                settings.append(RawSetting(key: field.key, value: .text(value), variable: variable))
            } else if sectionPrefixes.contains(where: { variable.hasPrefix($0) }) {
                warnings.append("\(variable) is not a pushgw setting: ignored")
            }
        }
        return (settings, warnings)
    }

    /// The whole file as UTF-8; errors name the path and say why (`No such file or directory`).
    static func readFile(_ path: String) throws -> String {
        do {
            return String(decoding: try FileContents.read(path), as: UTF8.self)
        } catch {
            throw ConfigError(key: path, message: "cannot read the configuration file: \(error.reason)")
        }
    }
}
