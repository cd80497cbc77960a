// `pushgw ctl` against the real binary (SPEC §6): the client's output and exit status.
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("pushgw ctl", .timeLimit(.minutes(1)))
struct CtlTests {
    /// `ctl stats` prints tables with the connection count; the socket comes from --socket or the configuration.
    @Test func statsTable() async throws {
        let gateway = try await startTwoWorkers()
        defer { gateway.stop() }
        let clients = try await connectClients(gateway, users: ["ctl-1", "ctl-2", "ctl-3"])
        defer { clients.forEach { $0.close() } }
        #expect(try await eventually { try await gateway.stats().values["connections"] == "3" })

        let result = try await runCtl(["stats", "--socket", gateway.adminSocketPath])
        #expect(result.state == .exited(0), "\(result)")
        #expect(result.stdout.contains("connections  3"), "\(result.stdout)")
        #expect(result.stdout.contains("per second") && result.stdout.contains("push to delivery"), "\(result.stdout)")
        let workerRows = result.stdout.split(separator: "\n").filter { $0.hasPrefix("0 ") || $0.hasPrefix("1 ") }
        #expect(workerRows.count == 2, "\(result.stdout)")

        let fromConfig = try await runCtl(
            ["stats", "--raw"], environment: ["PUSHGW_SERVER_ADMIN_SOCKET": gateway.adminSocketPath])
        #expect(fromConfig.state == .exited(0), "\(fromConfig)")
        #expect(fromConfig.stdout.split(separator: "\n").contains("connections 3"), "\(fromConfig.stdout)")
    }

    /// Other commands print the gateway's lines; a refused command exits 1 with the reason on stderr.
    @Test func commandsAndRefusals() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let clients = try await connectClients(gateway, users: ["ctl-k"])
        defer { clients.forEach { $0.close() } }
        let kick = try await runCtl(["kick", "ctl-k", "key-0", "--socket", gateway.adminSocketPath])
        #expect(kick.state == .exited(0) && kick.stdout == "OK kicked 1\n", "\(kick)")
        let frames = try await clients[0].readUntilClosed()
        #expect(frames.first?.op == Op.disconnect)

        let bogus = try await runCtl(["bogus", "--socket", gateway.adminSocketPath])
        #expect(bogus.state == .exited(1), "\(bogus)")
        #expect(bogus.stderr.contains("unknown command"), "\(bogus)")
    }

    /// Not a terminal: `ctl tail` prints plain lines, one a second, until interrupted.
    @Test func tailPrintsLines() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let result = try await runCtl(["tail", "--socket", gateway.adminSocketPath], timeout: 2.5)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count >= 2, "\(result)")
        #expect(!result.stdout.contains("\r") && lines.allSatisfy { $0.contains(" conns ") }, "\(result)")
    }

    /// No gateway behind the socket: a clear message and a non-zero exit.
    @Test func unreachableGateway() async throws {
        let path = NSTemporaryDirectory() + "pushgw-none-\(UUID().uuidString.prefix(8)).sock"
        let result = try await runCtl(["stats", "--socket", path])
        #expect(result.state == .exited(3), "\(result)")
        #expect(result.stderr.contains("cannot reach the gateway") && result.stderr.contains(path), "\(result)")
        #expect(result.stdout.isEmpty)
    }
}
