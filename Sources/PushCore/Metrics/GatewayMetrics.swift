/// The master's view of every worker's figures: the latest snapshot of each live worker, the rates derived from
/// its consecutive snapshots, the totals of workers that have exited (so that gateway-wide counters never go back
/// when a worker is restarted or replaced by a reload), and a short history of the latency histograms for
/// percentiles over the last seconds rather than since start.
public struct GatewayMetrics: Sendable {
    /// One live worker: its latest snapshot and its per-second rates.
    public struct Worker: Sendable {
        public var snapshot: WorkerSnapshot
        /// The snapshot rates are measured from (at least `minimumInterval` older than the latest).
        var base: WorkerSnapshot
        public var rates: [WorkerCounter: Double] = [:]
        public var closeRates: [CloseReason.Kind: Double] = [:]
    }

    /// Rates are measured over at least this many seconds, so an extra snapshot (a worker's first and last are
    /// sent at once) does not turn one event into a spike.
    public static let minimumInterval = 0.5

    /// Live workers by pid.
    public private(set) var workers: [Int: Worker] = [:]
    /// What exited workers had counted.
    public private(set) var retired = MetricTotals()
    /// Latency histogram totals sampled once a second, oldest first, at most `window + 1` of them.
    private var history: [(pushDelivery: Histogram, redisLatency: Histogram)] = []
    /// Seconds (samples) the recent percentiles cover.
    public let window: Int

    public init(window: Int = 10) {
        self.window = max(1, window)
    }

    /// Takes a worker's snapshot and updates its rates.
    public mutating func record(_ snapshot: WorkerSnapshot) {
        guard var worker = workers[snapshot.pid] else {
            workers[snapshot.pid] = Worker(snapshot: snapshot, base: snapshot)
            return
        }
        worker.snapshot = snapshot
        let elapsed = snapshot.time - worker.base.time
        if elapsed >= Self.minimumInterval {
            let before = worker.base.totals
            let now = snapshot.totals
            for counter in WorkerCounter.allCases {
                worker.rates[counter] = Double(max(0, now[counter] - before[counter])) / elapsed
            }
            for reason in CloseReason.Kind.allCases {
                worker.closeRates[reason] =
                    Double(max(0, (now.closes[reason] ?? 0) - (before.closes[reason] ?? 0))) / elapsed
            }
            worker.base = snapshot
        }
        workers[snapshot.pid] = worker
    }

    /// A worker exited: its last counts join the retired totals and it leaves the live set.
    public mutating func retire(pid: Int) {
        guard let worker = workers.removeValue(forKey: pid) else { return }
        retired.add(worker.snapshot.totals)
    }

    /// Everything counted since the master started: retired workers plus the live ones' latest snapshots.
    public var totals: MetricTotals {
        var totals = retired
        for worker in workers.values { totals.add(worker.snapshot.totals) }
        return totals
    }

    /// Per-second rates summed over the live workers.
    public var rates: [WorkerCounter: Double] {
        var sum: [WorkerCounter: Double] = [:]
        for worker in workers.values {
            for (counter, rate) in worker.rates { sum[counter, default: 0] += rate }
        }
        return sum
    }

    /// Closes per second by reason, summed over the live workers.
    public var closeRates: [CloseReason.Kind: Double] {
        var sum: [CloseReason.Kind: Double] = [:]
        for worker in workers.values {
            for (reason, rate) in worker.closeRates { sum[reason, default: 0] += rate }
        }
        return sum
    }

    /// Records the latency totals; call once a second.
    public mutating func sample() {
        let totals = self.totals
        history.append((totals.pushDelivery, totals.redisLatency))
        if history.count > window + 1 { history.removeFirst(history.count - window - 1) }
    }

    /// The latency observations of the last `window` seconds (since the oldest sample kept).
    public var recent: (pushDelivery: Histogram, redisLatency: Histogram) {
        let totals = self.totals
        guard let oldest = history.first else { return (totals.pushDelivery, totals.redisLatency) }
        return (
            totals.pushDelivery.subtracting(oldest.pushDelivery), totals.redisLatency.subtracting(oldest.redisLatency)
        )
    }
}
