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
    /// The bans in force (SPEC §8), as Redis holds them.
    case bans
    /// Adds a ban, as `POST /v1/bans` does.
    case ban(BanRequest)
    /// Lifts the ban with this id, as `DELETE /v1/bans/{id}` does.
    case unban(String)
    /// The newest `count` dead letters of the notifiers (SPEC §10), and the queue's figures.
    case notify(count: Int)
    case help

    /// Dead letters `notify` shows by default, and at most.
    public static let notifyDefault = 20
    public static let notifyMost = 1000

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
        "bans                the bans in force on every node: id, ip, user, device, expiry, reason",
        "ban ip=<addr|cidr> user=<uid> device=<key> ttl=<s> reason=<text…>",
        "                    ban on every node (any of ip, user, device; ttl 0 or none: no expiry; reason last)",
        "unban <id>          lift a ban on every node",
        "notify [count]      the notifiers' queue and their newest dead letters (default 20, at most 1000)",
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
        case "bans":
            if let error = expect(0...0, "bans") { return .failure(error) }
            return .success(.bans)
        case "ban":
            return parseBan(arguments).map { .ban($0) }
        case "unban":
            if let error = expect(1...1, "unban <id>") { return .failure(error) }
            return .success(.unban(arguments[0]))
        case "notify":
            if let error = expect(0...1, "notify [count]") { return .failure(error) }
            guard let text = arguments.first else { return .success(.notify(count: notifyDefault)) }
            guard let count = Int(text), (1...notifyMost).contains(count) else {
                return .failure(AdminCommandError("notify: count must be 1 to \(notifyMost), got \"\(text)\""))
            }
            return .success(.notify(count: count))
        case "help":
            return .success(.help)
        default:
            return .failure(AdminCommandError("unknown command \"\(first)\" (try help)"))
        }
    }

    /// `ban ip=… user=… device=… ttl=… reason=…`: `name=value` words in any order, `reason=` last, taking the rest
    /// of the line (its words joined by one space). Checked as a `POST /v1/bans` body, so the rules and messages
    /// are the API's.
    private static func parseBan(_ words: [String]) -> Result<BanRequest, AdminCommandError> {
        let usage = "usage: ban ip=<address|cidr> user=<uid> device=<key> ttl=<seconds> reason=<text>"
        var writer = JSONWriter()
        var failure: AdminCommandError?
        writer.object { object in
            var seen: Set<String> = []
            for (index, word) in words.enumerated() {
                guard let equals = word.firstIndex(of: "=") else {
                    failure = AdminCommandError("\(usage): \"\(word)\" is not name=value")
                    return
                }
                let name = String(word[..<equals])
                var value = String(word[word.index(after: equals)...])
                guard seen.insert(name).inserted else {
                    failure = AdminCommandError("\(usage): \(name) given twice")
                    return
                }
                switch name {
                case "ip", "user", "device":
                    object.field(name, value)
                case "ttl":
                    guard let seconds = Int(value) else {
                        failure = AdminCommandError("ttl must be whole seconds, got \"\(value)\"")
                        return
                    }
                    object.field("ttl", seconds)
                case "reason":
                    value = ([value] + words[(index + 1)...]).joined(separator: " ")
                    object.field("reason", value)
                    return
                default:
                    failure = AdminCommandError("\(usage): unknown \"\(name)\"")
                    return
                }
            }
        }
        if let failure { return .failure(failure) }
        do {
            return .success(try BanRequest(body: writer.bytes))
        } catch {
            return .failure(AdminCommandError(error.message))
        }
    }
}

/// Why an admin command line was refused.
public struct AdminCommandError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
