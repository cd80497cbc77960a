import ArgumentParser
import Glibc
import PushPosix

/// `pushgw-bench child receivers|pusher …`: the processes a scenario spawns. Not for direct use: they wait
/// for commands on stdin and report on stdout.
struct ChildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "child", abstract: "A worker process of a scenario (spawned by the coordinator).",
        shouldDisplay: false, subcommands: [ReceiversCommand.self, PusherCommand.self])
}

struct ReceiversCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "receivers")

    @Option var host: String
    @Option var port: Int
    @Option var first: Int
    @Option var count: Int
    @Option var userPrefix: String
    @Option(help: "Comma-separated source addresses.") var sources: String = ""
    @Option var inFlight: Int
    @Option var rate: Double = 0
    @Option var heartbeat: Double
    @Option var lastSeq: Int?
    @Flag var replay = false
    @Option var ackInterval: Double = 0
    @Option var messages: Int = 0
    @Option var connectTimeout: Double
    @Option var lifetime: Double

    func run() throws {
        var addresses: [in_addr] = []
        for text in sources.split(separator: ",") {
            guard let address = Posix.ipv4(String(text)) else { throw BenchError("bad source address \(text)") }
            addresses.append(address)
        }
        let plan = ReceiverPlan(
            host: host, port: port, first: first, count: count, userPrefix: userPrefix, sources: addresses,
            inFlight: max(1, inFlight), rate: rate, heartbeat: max(0.1, heartbeat), lastSeq: lastSeq, replay: replay,
            ackInterval: ackInterval, messages: messages, connectTimeout: connectTimeout, lifetime: lifetime)
        try Receivers(plan: plan).run()
    }
}

struct PusherCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pusher")

    @Option var host: String
    @Option var port: Int
    @Option var source: String?
    @Option var connections: Int
    @Option var depth: Int
    @Option var mode: String
    @Option var rate: Double = 0
    @Option var duration: Double
    @Flag var store = false
    @Option var batch: Int = 1
    @Option var first: Int = 0
    @Option var users: Int
    @Option var userPrefix: String
    @Option var op: Int = 1000
    @Option var payloadBytes: Int = 0
    @Option var messages: Int = 0
    @Option var usersPerPush: Int = 1
    @Option var interval: Double = 1
    @Option var lifetime: Double

    func run() throws {
        guard let mode = PusherPlan.Mode(rawValue: mode) else { throw BenchError("bad --mode \(mode)") }
        let plan = PusherPlan(
            host: host, port: port, source: source.flatMap { Posix.ipv4($0) }, connections: max(1, connections),
            depth: max(1, depth), mode: mode, rate: rate, duration: duration, store: store, batch: max(1, batch),
            first: first, users: max(1, users), userPrefix: userPrefix, operation: op, payloadBytes: payloadBytes,
            messages: messages, usersPerPush: max(1, usersPerPush), interval: interval, lifetime: lifetime)
        try Pusher(plan: plan).run()
    }
}
