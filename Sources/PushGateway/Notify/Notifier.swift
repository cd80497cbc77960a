import Glibc
import Logging
import PushCore
import PushPosix

/// A `pushgw notify` process (SPEC §10): its own libev loop, reading the notification stream as one consumer of
/// the group and calling the providers. Started and restarted by the master (`notify.workers`); SIGTERM stops it
/// (entries it had not settled stay pending and are claimed by another notifier).
final class Notifier {
    private let loop: EventLoop
    private let logger: Logger
    private let providers: NotifyProviders
    private var queue: NotifyQueue!
    private var statsTimer: LoopTimer?

    init(config: GatewayConfiguration, index: Int, logger: Logger) throws {
        self.logger = logger
        loop = try EventLoop(capacity: 4096)
        providers = try NotifyProviders(loop: loop, config: config, logger: logger)
        let consumer = "\(Posix.hostName())-\(Posix.pid())-\(index)"
        queue = NotifyQueue(
            loop: loop, redis: config.redis, consumer: consumer, policy: config.notify.retryPolicy,
            claimAfter: config.notify.claimAfter, logger: logger
        ) { [providers] entry, done in providers.deliver(entry, done) }
        loop.onSignal(SIGTERM) { [unowned self] in self.stop() }
        loop.onSignal(SIGINT) { [unowned self] in self.stop() }
        let redis = config.redis.cluster.isEmpty ? "\(config.redis.url)" : "cluster \(config.redis.cluster.map { "\($0)" }.joined(separator: ","))"
        logger.info("notifier", metadata: ["consumer": "\(consumer)", "redis": "\(redis)"])
    }

    func run() {
        queue.start()
        let timer = LoopTimer(loop: loop) { [unowned self] in self.report() }
        timer.start(after: 10, repeat: 10)
        statsTimer = timer
        loop.run()
        logger.info("notifier stopped")
    }

    private func stop() {
        statsTimer?.stop()
        queue.stop()
        providers.stop()
        loop.stop()
    }

    /// Every 10 s, a log line per provider with its figures, and the queue's depth.
    private func report() {
        NotifyFigures.fetch(queue.redis) { [queue, logger] figures in
            var metadata: Logger.Metadata = [
                "queued": "\(figures.lag)", "pending": "\(figures.pending)", "oldest_s": "\(Int(figures.oldestPendingSeconds))",
            ]
            for (provider, figures) in queue?.stats ?? [:] {
                metadata[provider.rawValue] =
                    "sent \(figures.sent) failed \(figures.failed) retried \(figures.retried) invalid \(figures.invalidTokens)"
            }
            logger.info("notifications", metadata: metadata)
        }
    }
}
