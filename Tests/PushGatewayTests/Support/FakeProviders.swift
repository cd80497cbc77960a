// The local stand-ins for APNs, FCM (with its OAuth2 token endpoint) and a webhook receiver (Tests/Fakes, SPEC §10),
// started for a test with keys of its own, and the gateway settings that point pushgw's notifiers at them.
import Foundation
import Testing

final class FakeProviders: @unchecked Sendable {
    let directory: URL
    let keys: URL
    let ports: [String: Int]
    let process: ChildProcess
    static let webhookSecret = "test-webhook-secret"

    private init(directory: URL, keys: URL, ports: [String: Int], process: ChildProcess) {
        self.directory = directory
        self.keys = keys
        self.ports = ports
        self.process = process
    }

    static func start() async throws -> FakeProviders {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("pushgw-fakes-" + UUID().uuidString.prefix(8).lowercased())
        let keys = directory.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        let root = GatewayProcess.packageRoot.path
        let environment = ["PATH=/usr/bin:/bin"]
        let make = try ChildProcess(
            argv: ["/bin/bash", "\(root)/Tests/Fakes/make_test_keys.sh", keys.path], environment: environment,
            stdoutPath: directory.appendingPathComponent("keys.log").path,
            stderrPath: directory.appendingPathComponent("keys.log").path)
        guard make.waitForExit(timeout: 30), make.exitState == .exited(0) else {
            throw TestError("make_test_keys.sh failed: \((try? String(contentsOf: directory.appendingPathComponent("keys.log"), encoding: .utf8)) ?? "")")
        }
        let names = try JSONSerialization.jsonObject(with: Data(contentsOf: keys.appendingPathComponent("keys.json")))
            as? [String: Any] ?? [:]
        let argv = [
            "/usr/bin/python3", "\(root)/Tests/Fakes/fake_providers.py", "--dir", directory.path,
            "--cert", keys.appendingPathComponent("server.pem").path, "--key", keys.appendingPathComponent("server.key").path,
            "--apns-public-key", keys.appendingPathComponent("apns_pub.pem").path,
            "--apns-key-id", names["APNS_KEY_ID"] as? String ?? "", "--apns-team-id", names["APNS_TEAM_ID"] as? String ?? "",
            "--fcm-public-key", keys.appendingPathComponent("fcm_pub.pem").path,
            "--fcm-client-email", names["FCM_CLIENT_EMAIL"] as? String ?? "", "--webhook-secret", webhookSecret,
            "--lifetime", "600",
        ]
        let process = try ChildProcess(
            argv: argv, environment: environment, stdoutPath: directory.appendingPathComponent("fake.log").path,
            stderrPath: directory.appendingPathComponent("fake.log").path)
        let portsFile = directory.appendingPathComponent("ports.json")
        guard try await eventually(timeout: 15, { FileManager.default.fileExists(atPath: portsFile.path) }),
            let ports = try JSONSerialization.jsonObject(with: Data(contentsOf: portsFile)) as? [String: Int]
        else {
            process.killGroup()
            throw TestError("the fake providers did not start: \((try? String(contentsOf: directory.appendingPathComponent("fake.log"), encoding: .utf8)) ?? "")")
        }
        return FakeProviders(directory: directory, keys: keys, ports: ports, process: process)
    }

    /// The gateway's settings for one notifier that calls these fakes.
    var gatewaySettings: [String: String] {
        let names = (try? JSONSerialization.jsonObject(with: Data(contentsOf: keys.appendingPathComponent("keys.json"))))
            as? [String: Any] ?? [:]
        let apns = "https://127.0.0.1:\(ports["apns"] ?? 0)"
        return [
            "PUSHGW_NOTIFY_WORKERS": "1",
            "PUSHGW_APNS_URL": apns, "PUSHGW_APNS_SANDBOX_URL": apns,
            "PUSHGW_APNS_KEY_FILE": keys.appendingPathComponent("apns.p8").path,
            "PUSHGW_APNS_KEY_ID": names["APNS_KEY_ID"] as? String ?? "",
            "PUSHGW_APNS_TEAM_ID": names["APNS_TEAM_ID"] as? String ?? "",
            "PUSHGW_APNS_CA_FILE": keys.appendingPathComponent("ca.pem").path,
            "PUSHGW_FCM_URL": "https://127.0.0.1:\(ports["fcm"] ?? 0)",
            "PUSHGW_FCM_TOKEN_URL": "https://127.0.0.1:\(ports["token"] ?? 0)/token",
            "PUSHGW_FCM_SERVICE_ACCOUNT_FILE": keys.appendingPathComponent("fcm_service_account.json").path,
            "PUSHGW_FCM_CA_FILE": keys.appendingPathComponent("ca.pem").path,
        ]
    }

    /// The requests received so far, in order (`requests.jsonl`).
    var requests: [[String: Any]] {
        let text = (try? String(contentsOf: directory.appendingPathComponent("requests.jsonl"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { jsonObject(Array($0.utf8)) }
    }

    /// Answers for the next requests (`script.json`): e.g. `{"apns":{"<token>":[410]}}`.
    func script(_ json: String) throws {
        try json.write(to: directory.appendingPathComponent("script.json"), atomically: true, encoding: .utf8)
    }

    func stop() {
        process.signal(SIGTERM)
        if !process.waitForExit(timeout: 5) { process.killGroup() }
        try? FileManager.default.removeItem(at: directory)
    }
}
