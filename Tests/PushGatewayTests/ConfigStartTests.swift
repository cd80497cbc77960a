// Starting the gateway: config file, environment overrides, bad values (SPEC §7).
import Foundation
import Testing

struct BadConfigCase: Sendable, CustomTestStringConvertible {
    let variable: String
    let value: String
    let key: String
    var testDescription: String { "\(variable)=\(value.debugDescription)" }

    static let all: [BadConfigCase] = [
        BadConfigCase(variable: "PUSHGW_LIMITS_MAX_FRAME", value: "abc", key: "limits.max_frame"),
        BadConfigCase(variable: "PUSHGW_LIMITS_MAX_FRAME", value: "-1", key: "limits.max_frame"),
        BadConfigCase(variable: "PUSHGW_LIMITS_HEARTBEAT", value: "often", key: "limits.heartbeat"),
        BadConfigCase(variable: "PUSHGW_LIMITS_HANDSHAKE_TIMEOUT", value: "soon", key: "limits.handshake_timeout"),
        BadConfigCase(variable: "PUSHGW_LIMITS_MAX_WRITE_QUEUE", value: "lots", key: "limits.max_write_queue"),
        BadConfigCase(variable: "PUSHGW_LIMITS_MAX_BODY", value: "1MB", key: "limits.max_body"),
        BadConfigCase(variable: "PUSHGW_SERVER_TCP", value: "not an address", key: "server.tcp"),
        BadConfigCase(variable: "PUSHGW_SERVER_HTTP", value: "127.0.0.1:99999", key: "server.http"),
        BadConfigCase(variable: "PUSHGW_AUTH_REQUIRED", value: "maybe", key: "auth.required"),
    ]
}

@Suite("Configuration at start", .timeLimit(.minutes(1)))
struct ConfigStartTests {
    @Test("A bad value stops the start with a non-zero exit and a message naming the key", arguments: BadConfigCase.all)
    func badEnvironmentValue(_ bad: BadConfigCase) async throws {
        let result = try await GatewayProcess.runToExit([bad.variable: bad.value])
        guard case .exited(let status) = result.state else {
            Issue.record("expected an exit with \(bad.testDescription), got \(result.state); log:\n\(result.log)")
            return
        }
        #expect(status != 0)
        #expect(result.log.contains(bad.key), "the message should name \(bad.key):\n\(result.log)")
    }

    @Test("A second gateway on ports another one listens on exits at once with 'address already in use'; the first keeps serving and reloading (issue 10 item 5)")
    func secondInstanceRefused() async throws {
        let first = try await GatewayProcess.start(["PUSHGW_SERVER_WORKERS": "2"])
        defer { first.stop() }
        for (variable, port) in [("PUSHGW_SERVER_TCP", first.tcpPort), ("PUSHGW_SERVER_HTTP", first.httpPort)] {
            let result = try await GatewayProcess.runToExit([variable: "127.0.0.1:\(port)"])
            guard case .exited(let status) = result.state else {
                Issue.record("\(variable): the second gateway kept running: \(result.state); log:\n\(result.log)")
                continue
            }
            #expect(status != 0, "\(variable)")
            #expect(result.log.contains("127.0.0.1:\(port)") && result.log.contains("address already in use"), "\(result.log)")
        }
        first.process.signal(SIGHUP)
        try await pause(1.5)
        let health = try await first.http(HTTP.request("GET", "/healthz"))
        #expect(health.status == 200, "the first gateway still serves after a reload: \(health)")
        #expect(first.isRunning)
    }

    @Test("A bad value in the --config file names the key")
    func badFileValue() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushgw-it-cfg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("bad.toml")
        try "[limits]\nmax_frame = \"big\"\n".write(to: file, atomically: true, encoding: .utf8)
        let result = try await GatewayProcess.runToExit(arguments: ["--config", file.path])
        guard case .exited(let status) = result.state else {
            Issue.record("expected an exit, got \(result.state); log:\n\(result.log)")
            return
        }
        #expect(status != 0)
        #expect(result.log.contains("limits.max_frame"), "\(result.log)")
    }

    @Test("--config values apply and PUSHGW_* variables win over them")
    func fileThenEnvironment() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pushgw-it-cfg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("gw.toml")
        try "[limits]\nheartbeat = 7\nhandshake_timeout = 1\n".write(to: file, atomically: true, encoding: .utf8)

        let fromFile = try await GatewayProcess.start(arguments: ["--config", file.path])
        defer { fromFile.stop() }
        let client = try await WireClient.connect(fromFile)
        let reply = try await client.auth(mid: "cfg", key: "k")
        #expect(number(reply["heartbeat"]) == 7, "heartbeat from the file: \(reply)")
        let silent = try await WireClient.connect(fromFile)
        let frames = try await silent.readUntilClosed(timeout: 5)
        #expect(frames.first?.errorCode == "handshake_timeout", "handshake_timeout = 1 from the file: \(frames)")

        let overridden = try await GatewayProcess.start(["PUSHGW_LIMITS_HEARTBEAT": "9"], arguments: ["--config", file.path])
        defer { overridden.stop() }
        let other = try await WireClient.connect(overridden)
        let otherReply = try await other.auth(mid: "cfg", key: "k")
        #expect(number(otherReply["heartbeat"]) == 9, "the variable wins over the file: \(otherReply)")
    }

    @Test("The shipped Config/pushgw.toml starts (listeners overridden by variables)")
    func shippedConfig() async throws {
        let gateway = try await GatewayProcess.start(arguments: ["--config", GatewayProcess.shippedConfigPath])
        defer { gateway.stop() }
        let client = try await WireClient.connect(gateway)
        let reply = try await client.auth(mid: 1, key: "k")
        #expect(number(reply["heartbeat"]) == 240, "\(reply)")
    }
}

@Suite("Stopping", .timeLimit(.minutes(1)))
struct StopTests {
    /// Connected clients are closed (a DISCONNECT first is allowed) and the process exits 0.
    func expectGracefulStop(_ gateway: GatewayProcess, _ signal: Int32, sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        let client = try await WireClient.connect(gateway)
        try await client.auth(mid: "stop", key: "k")
        let state = try await gateway.signalAndWait(signal, timeout: 5)
        #expect(state == .exited(0), "after signal \(signal): \(state); log:\n\(gateway.log.suffix(2000))",
            sourceLocation: sourceLocation)
        if state != .running {
            let frames = try await client.readUntilClosed(timeout: 5)
            #expect(frames.allSatisfy { $0.op == Op.disconnect }, "\(frames)", sourceLocation: sourceLocation)
        }
    }

    @Test("SIGTERM and SIGINT stop the gateway with status 0 and close its clients", arguments: [SIGTERM, SIGINT])
    func stopsOnSignal(signal: Int32) async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        try await expectGracefulStop(gateway, signal)
    }

    /// A parent that spawns the daemon from a Swift-concurrency or Dispatch thread (as Foundation's Process does)
    /// hands down a mask that blocks SIGTERM and SIGINT; a daemon must not depend on its parent's mask.
    @Test("SIGTERM stops the gateway even when it inherited a mask blocking SIGTERM, SIGINT and SIGHUP")
    func stopsWithInheritedBlockedMask() async throws {
        let gateway = try await GatewayProcess.start(blocked: [SIGTERM, SIGINT, SIGHUP])
        defer { gateway.stop() }
        try await expectGracefulStop(gateway, SIGTERM)
    }
}
