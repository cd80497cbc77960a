import ArgumentParser

/// `pushgw-bench`: the load generator of `Scripts/bench`. The command a user runs is the coordinator: it spawns
/// receiver and pusher processes (fresh executions of this binary, `pushgw-bench child …`), steers them over
/// their stdin, collects their JSON-line reports from their stdout, merges them and prints one table.
@main
struct PushBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pushgw-bench",
        abstract: "Load generator for pushgw: connections, unicast, fan-out and replay benchmarks (loopback only).",
        discussion: """
            Each scenario stops by itself. Connections are spread over several processes (at most --per-process \
            each, under the 20,000-file limit) and over source addresses 127.0.0.2… (12,000 connections each by \
            default). Scripts/bench starts a gateway and Redis for each scenario and runs these.
            """,
        subcommands: [Connect.self, Unicast.self, Fanout.self, Replay.self, ChildCommand.self]
    )
}
