import Glibc
import Logging
import PushCore

/// Sets up swift-log once per process: text lines (swift-log's stderr handler) or JSON lines.
enum LogSetup {
    static func bootstrap(_ settings: GatewayConfiguration.Log) {
        let level = settings.level
        switch settings.format {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in
                var handler = JSONLineLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
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
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        writer.object {
            $0.key("ts")
            $0.value(Double(now.tv_sec) + Double(now.tv_nsec / 1_000_000) / 1000)
            $0.field("level", event.level.rawValue)
            $0.field("msg", "\(event.message)")
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
                $0.field(key, "\(value)")
            }
        }
        var line = writer.bytes
        line.append(UInt8(ascii: "\n"))
        line.withUnsafeBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
