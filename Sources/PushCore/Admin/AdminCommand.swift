import Logging

/// One line an operator sends on the admin socket (SPEC §6), parsed. Words are separated by spaces or tabs;
/// command names are case-insensitive, arguments are taken as they are.
public enum AdminCommand: Equatable, Sendable {
    /// One snapshot of every figure, as `name value` lines.
    case stats
    /// A figures line every second until the client hangs up.
    case tail
    /// The authenticated connections, all (up to a limit per worker) or one user's.
    case conns(user: String?)
    /// DISCONNECT and close a user's connections on this gateway, all of them or one device's.
    case kick(user: String, key: String?)
    /// The routing nodes registered in Redis, this gateway's marked.
    case nodes
    /// Re-read the configuration and replace the workers (as SIGHUP).
    case reload
    /// Stop taking clients and send the connected ones away (DISCONNECT, reconnect), keeping the HTTP API up.
    case drain
    /// Change the log level of the master and every worker until the next reload.
    case logLevel(Logger.Level)
    case help

    /// What `help` answers, one line per command.
    public static let helpLines = [
        "stats               one snapshot of every figure, as `name value` lines",
        "tail                a figures line every second until you hang up",
        "conns [uid]         authenticated connections (all, up to 1000 per worker, or one user's)",
        "kick <uid> [key]    DISCONNECT and close a user's connections here (all devices, or one)",
        "nodes               routing nodes registered in Redis; this gateway's are marked local",
        "reload              re-read the configuration and start new workers (as SIGHUP)",
        "drain               stop taking clients and send connected ones away; the HTTP API stays; reload undoes it",
        "log-level <level>   trace, debug, info, notice, warning, error or critical, until the next reload",
        "help                this list",
        "Every reply ends with a line holding a single `.`; an error reply is one line starting with `ERR `.",
    ]

    /// Parses a command line; the error is the message to send after `ERR `.
    public static func parse(_ line: String) -> Result<AdminCommand, AdminCommandError> {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let first = words.first else { return .failure(AdminCommandError("empty command (try help)")) }
        let arguments = Array(words.dropFirst())
        func expect(_ range: ClosedRange<Int>, _ usage: String) -> AdminCommandError? {
            range.contains(arguments.count) ? nil : AdminCommandError("usage: \(usage)")
        }
        switch first.lowercased() {
        case "stats":
            if let error = expect(0...0, "stats") { return .failure(error) }
            return .success(.stats)
        case "tail":
            if let error = expect(0...0, "tail") { return .failure(error) }
            return .success(.tail)
        case "conns":
            if let error = expect(0...1, "conns [uid]") { return .failure(error) }
            return .success(.conns(user: arguments.first))
        case "kick":
            if let error = expect(1...2, "kick <uid> [key]") { return .failure(error) }
            return .success(.kick(user: arguments[0], key: arguments.count > 1 ? arguments[1] : nil))
        case "nodes":
            if let error = expect(0...0, "nodes") { return .failure(error) }
            return .success(.nodes)
        case "reload":
            if let error = expect(0...0, "reload") { return .failure(error) }
            return .success(.reload)
        case "drain":
            if let error = expect(0...0, "drain") { return .failure(error) }
            return .success(.drain)
        case "log-level":
            let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            guard arguments.count == 1, let level = Logger.Level(rawValue: arguments[0].lowercased()) else {
                return .failure(AdminCommandError("usage: log-level <level>, one of \(levels)"))
            }
            return .success(.logLevel(level))
        case "help":
            return .success(.help)
        default:
            return .failure(AdminCommandError("unknown command \"\(first)\" (try help)"))
        }
    }
}

/// Why an admin command line was refused.
public struct AdminCommandError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
