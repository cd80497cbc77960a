import Glibc
import Logging
import PushCore
import PushPosix
import Synchronization

/// Sets up swift-log once per process: text lines (swift-log's stderr handler) or JSON lines, behind one wrapper
/// that reads the process's current level (changed at runtime by `pushgw ctl log-level`) and rate-limits
/// repeated warnings and errors.
enum LogSetup {
    /// The level every handler of this process consults, as an index into `Logger.Level.allCases`. An atomic
    /// rather than a lock: it is read on every log call, and only the loop thread ever writes it.
    private static let currentLevel = Atomic<Int>(2)

    static func bootstrap(_ settings: GatewayConfiguration.Log) {
        setLevel(settings.level)
        switch settings.format {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = .trace
                return GatewayLogHandler(inner: handler)
            }
        case .json:
            LoggingSystem.bootstrap { label in
                GatewayLogHandler(inner: JSONLineLogHandler(label: label, logLevel: .trace))
            }
        }
    }

    /// The level in force in this process.
    static var level: Logger.Level {
        let index = currentLevel.load(ordering: .relaxed)
        return Logger.Level.allCases[min(max(index, 0), Logger.Level.allCases.count - 1)]
    }

    /// Changes the level of every logger of this process at once.
    static func setLevel(_ level: Logger.Level) {
        currentLevel.store(Logger.Level.allCases.firstIndex(of: level) ?? 2, ordering: .relaxed)
    }

    /// Writes one line for each message whose repeats were suppressed in a window that has ended; call about once
    /// a second from the loop.
    static func reportSuppressed(_ logger: Logger) {
        for (message, count) in RepeatLimiter.shared.ended(now: Posix.monotonicSeconds()) {
            logger.notice(
                "repeated log lines suppressed",
                metadata: [
                    "message": "\(message)", "suppressed": "\(count)", "window_s": "\(Int(RepeatLimiter.window))",
                ])
        }
    }
}

/// The handler every logger gets: the process-wide level instead of a per-logger one (so `log-level` reaches
/// loggers that were copied long ago), and at most `RepeatLimiter.burst` lines per warning-or-worse message per
/// window; the rest are counted and reported by `LogSetup.reportSuppressed`.
struct GatewayLogHandler<Inner: LogHandler>: LogHandler {
    var inner: Inner

    var logLevel: Logger.Level {
        get { LogSetup.level }
        set {}  // One level per process: `LogSetup.setLevel`.
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        if event.level >= .warning {
            guard RepeatLimiter.shared.admit("\(event.level) \(event.message)", now: Posix.monotonicSeconds()) else { return }
        }
        inner.log(event: event)
    }
}

/// Counts warnings and errors by message (messages are constant, the details are metadata): within a window of
/// `window` seconds from a message's first line, `burst` lines pass and the rest are only counted. The process is
/// single-threaded; the mutex is never contended and only keeps Swift's concurrency checking honest.
final class RepeatLimiter: Sendable {
    static let shared = RepeatLimiter()
    static let window = 10.0
    static let burst = 3

    private struct Entry {
        var started: Double
        var passed: Int
        var suppressed: Int
        /// Lines suppressed in earlier windows of this key, not reported yet.
        var unreported = 0
    }

    private let entries = Mutex<[String: Entry]>([:])

    /// Whether a line with `key` may be written now.
    func admit(_ key: String, now: Double) -> Bool {
        entries.withLock { entries in
            guard var entry = entries[key] else {
                entries[key] = Entry(started: now, passed: 1, suppressed: 0)
                return true
            }
            if now - entry.started >= Self.window {
                entry = Entry(started: now, passed: 0, suppressed: 0, unreported: entry.unreported + entry.suppressed)
            }
            if entry.passed < Self.burst {
                entry.passed += 1
                entries[key] = entry
                return true
            }
            entry.suppressed += 1
            entries[key] = entry
            return false
        }
    }

    /// The keys with suppressed lines in a window that has ended, and how many; forgets ended windows.
    func ended(now: Double) -> [(String, Int)] {
        entries.withLock { entries in
            var result: [(String, Int)] = []
            for (key, var entry) in entries {
                if now - entry.started >= Self.window {
                    if entry.unreported + entry.suppressed > 0 {
                        result.append((key, entry.unreported + entry.suppressed))
                    }
                    entries[key] = nil
                } else if entry.unreported > 0 {
                    result.append((key, entry.unreported))
                    entry.unreported = 0
                    entries[key] = entry
                }
            }
            return result.sorted { $0.0 < $1.0 }
        }
    }
}

/// One JSON object per line on stderr: `ts`, `level`, `msg`, then the metadata.
struct JSONLineLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var writer = JSONWriter()
        let now = Posix.wallMillis()
        writer.object {
            $0.key("ts")
            $0.value(Double(now / 1000) + Double(now % 1000) / 1000)
            $0.field("level", event.level.rawValue)
            $0.field("msg", "\(event.message)")
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
                $0.field(key, "\(value)")
            }
        }
        var line = writer.bytes
        line.append(UInt8(ascii: "\n"))
        line.withUnsafeBytes { _ = Posix.writeAll(2, $0) }
    }
}
