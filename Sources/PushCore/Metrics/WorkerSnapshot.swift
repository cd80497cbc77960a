/// The counters every worker keeps, by the name they travel under to the master; each becomes a Prometheus
/// counter `pushgw_<…>_total`. One list, so that the snapshot, the aggregation, `stats` and `/metrics` cannot
/// disagree on what exists.
public enum WorkerCounter: String, CaseIterable, Sendable {
    case accepted
    case authenticated
    case framesIn = "frames_in"
    case framesOut = "frames_out"
    case pushes
    case deliveries
    case stored
    case gapFills = "gap_fills"
    case catchUps = "catch_ups"
    case httpRequests = "http_requests"
    case httpBackpressure = "http_backpressure"
    case httpClosedOverflow = "http_closed_overflow"
    case redisCommands = "redis_commands"
    case redisErrors = "redis_errors"
    case redisReconnects = "redis_reconnects"
    case flushSlices = "flush_slices"
    case tlsHandshakesDeferred = "tls_handshakes_deferred"
    case apiForbidden = "api_forbidden"
    case apiRateLimited = "api_rate_limited"
    case bannedAtAccept = "banned_at_accept"
    case bannedAtAuth = "banned_at_auth"
    case bannedDisconnects = "banned_disconnects"
    case bannedRegisters = "banned_registers"
    case refusedConnectRate = "refused_connect_rate"
    case refusedMaxConnsPerIP = "refused_max_conns_per_ip"
    case rateLimitedFrames = "rate_limited_frames"
    case rateLimitedCloses = "rate_limited_closes"
    case autobans

    /// The Prometheus counter's name.
    public var metricName: String {
        switch self {
        case .accepted: "pushgw_connections_accepted_total"
        case .authenticated: "pushgw_connections_authenticated_total"
        default: "pushgw_\(rawValue)_total"
        }
    }

    /// The Prometheus `# HELP` text.
    public var help: String {
        switch self {
        case .accepted: "Client connections accepted."
        case .authenticated: "Client connections that completed AUTH."
        case .framesIn: "Frames received from clients."
        case .framesOut: "Frames queued to clients (replies, control frames and messages)."
        case .pushes: "Push requests received by the HTTP API (each item of a batch counts)."
        case .deliveries: "Application messages queued to client connections."
        case .stored: "Messages stored in user inboxes in Redis."
        case .gapFills: "Sequence gaps filled from Redis before an in-order delivery."
        case .catchUps: "Users whose connections re-read their inbox from Redis after a Redis connection came back."
        case .httpRequests: "HTTP API requests."
        case .httpBackpressure:
            "Times an HTTP connection was not read until its answers went out (64 requests unanswered or 256 KiB queued)."
        case .httpClosedOverflow: "HTTP connections closed because their peer did not read 16 MiB of answers."
        case .redisCommands: "Commands sent to Redis."
        case .redisErrors: "Redis commands that failed: no reply (Redis down, timed out, overloaded) or an error reply."
        case .redisReconnects: "Times a Redis connection came back after being down."
        case .flushSlices: "Loop iterations that left queued output for the next one (fan-outs larger than one slice of writes)."
        case .tlsHandshakesDeferred:
            "TLS ClientHellos put off to a later loop iteration (more than 64 came in one; answered oldest first)."
        case .apiForbidden: "HTTP API requests refused with 403 forbidden: the caller's address is not in api.allow."
        case .apiRateLimited: "HTTP API requests refused with 429 rate_limited: over limits.api_rate for their API key."
        case .bannedAtAccept: "Client connections closed at accept: their address is banned."
        case .bannedAtAuth: "Client AUTHs refused with ERROR banned: the user, device or address is banned."
        case .bannedDisconnects: "Open client connections sent DISCONNECT banned: a ban added since covers them."
        case .bannedRegisters: "POST /v1/register requests refused with 403 banned."
        case .refusedConnectRate: "Client connections closed at accept: over limits.connect_rate for their address."
        case .refusedMaxConnsPerIP:
            "Client connections closed at accept: their address has limits.max_conns_per_ip open already."
        case .rateLimitedFrames: "Client frames dropped with ERROR rate_limited: over limits.client_rate."
        case .rateLimitedCloses:
            "Client connections closed still over limits.client_rate after a burst of dropped frames."
        case .autobans:
            "Addresses banned automatically: more than limits.autoban_errors failures within limits.autoban_window."
        }
    }
}

/// Counters, closes by reason and latency histograms: what adds up across workers and over time.
public struct MetricTotals: Sendable, Equatable {
    public var counters: [WorkerCounter: Int] = [:]
    public var closes: [CloseReason.Kind: Int] = [:]
    /// Seconds from a push's arrival to its frame being queued on a connection (stored pushes delivered live).
    public var pushDelivery = Histogram()
    /// Round-trip seconds of Redis commands.
    public var redisLatency = Histogram()

    public init() {}

    public subscript(_ counter: WorkerCounter) -> Int {
        get { counters[counter] ?? 0 }
        set { counters[counter] = newValue == 0 ? nil : newValue }
    }

    /// Connections closed for any reason.
    public var closedTotal: Int { closes.values.reduce(0, +) }

    public mutating func add(_ other: MetricTotals) {
        for (counter, value) in other.counters { counters[counter, default: 0] += value }
        for (reason, value) in other.closes { closes[reason, default: 0] += value }
        pushDelivery.add(other.pushDelivery)
        redisLatency.add(other.redisLatency)
    }
}

/// What a worker reports to the master once a second over its control pipe: who it is, its gauges now, and its
/// counters and histograms since it started. The master derives rates from two consecutive snapshots.
public struct WorkerSnapshot: Sendable, Equatable {
    public var pid: Int
    /// The worker's slot, 0..<server.workers.
    public var index: Int
    /// Its routing node id.
    public var node: String
    /// Monotonic seconds when the snapshot was taken (CLOCK_MONOTONIC is system-wide, so the master can compare).
    public var time: Double
    /// Unix seconds when the worker started.
    public var startedAt: Double
    public var connections: Int = 0
    /// Distinct users with a connection on this worker.
    public var users: Int = 0
    public var httpConnections: Int = 0
    /// Bytes waiting in the worker's output queues.
    public var writeQueueBytes: Int = 0
    public var residentBytes: Int = 0
    /// Whether the worker's Redis command connection is ready.
    public var redisUp = false
    /// Whether the worker stopped taking clients (`drain`, or stopping).
    public var draining = false
    /// Exact Redis round-trip percentiles over the worker's last 1,024 replies, in seconds.
    public var redisP50: Double?
    public var redisP99: Double?
    public var totals = MetricTotals()

    public init(pid: Int, index: Int, node: String, time: Double, startedAt: Double) {
        self.pid = pid
        self.index = index
        self.node = node
        self.time = time
        self.startedAt = startedAt
    }

    /// The snapshot as one JSON object (the pipe carries one a line).
    public func write(to writer: inout JSONWriter) {
        writer.object { o in
            o.field("pid", pid)
            o.field("index", index)
            o.field("node", node)
            o.key("time")
            o.value(time)
            o.key("started")
            o.value(startedAt)
            o.field("conns", connections)
            o.field("users", users)
            o.field("http", httpConnections)
            o.field("wq", writeQueueBytes)
            o.field("rss", residentBytes)
            o.field("redis_up", redisUp)
            o.field("draining", draining)
            if let redisP50, let redisP99 {
                o.key("redis_p50")
                o.value(redisP50)
                o.key("redis_p99")
                o.value(redisP99)
            }
            o.key("counters")
            o.object { c in
                for counter in WorkerCounter.allCases where totals[counter] != 0 {
                    c.field(counter.rawValue, totals[counter])
                }
            }
            o.key("closes")
            o.object { c in
                for reason in CloseReason.Kind.allCases {
                    if let value = totals.closes[reason], value != 0 { c.field(reason.rawValue, value) }
                }
            }
            o.key("push_delivery")
            totals.pushDelivery.write(to: &o)
            o.key("redis_latency")
            totals.redisLatency.write(to: &o)
        }
    }

    /// Reads what `write(to:)` wrote; nil when an identifying field is missing. Unknown counters and reasons are
    /// skipped (a worker of a newer build during a reload).
    public init?(json: JSONValue) {
        guard let pid = json["pid"]?.int64Value, let index = json["index"]?.int64Value,
            let node = json["node"]?.stringValue, let time = json["time"]?.doubleValue
        else { return nil }
        self.init(
            pid: Int(pid), index: Int(index), node: node, time: time, startedAt: json["started"]?.doubleValue ?? 0)
        func int(_ key: String) -> Int { Int(json[key]?.int64Value ?? 0) }
        connections = int("conns")
        users = int("users")
        httpConnections = int("http")
        writeQueueBytes = int("wq")
        residentBytes = int("rss")
        redisUp = json["redis_up"]?.boolValue ?? false
        draining = json["draining"]?.boolValue ?? false
        redisP50 = json["redis_p50"]?.doubleValue
        redisP99 = json["redis_p99"]?.doubleValue
        if case .object(let members) = json["counters"] {
            for (name, value) in members {
                if let counter = WorkerCounter(rawValue: name), let number = value.int64Value {
                    totals[counter] = Int(number)
                }
            }
        }
        if case .object(let members) = json["closes"] {
            for (name, value) in members {
                if let reason = CloseReason.Kind(rawValue: name), let number = value.int64Value {
                    totals.closes[reason] = Int(number)
                }
            }
        }
        totals.pushDelivery = Histogram(json: json["push_delivery"]) ?? Histogram()
        totals.redisLatency = Histogram(json: json["redis_latency"]) ?? Histogram()
    }
}
