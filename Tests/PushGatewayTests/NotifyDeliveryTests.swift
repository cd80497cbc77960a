// Offline notifications end to end (SPEC §10; issue 14): the real gateway with one `pushgw notify` process, started
// by its master, calling local stand-ins of APNs and FCM (HTTP/2 over TLS with a test CA, JWTs checked with the
// public keys) for a user who is offline, with the unread count as the badge, and nobody for a user who is online.
import Foundation
import PushCore
import Testing

@Suite("Notification delivery", .serialized, .timeLimit(.minutes(2)))
struct NotifyDeliveryTests {
    @Test("An offline user's phone gets one APNs notification with badge = unread and its FCM device one FCM message; an online user's phone gets none; a token APNs calls Unregistered (410) is removed")
    func offlineUserIsNotified() async throws {
        let fakes = try await FakeProviders.start()
        defer { fakes.stop() }
        let gateway = try await GatewayProcess.start(fakes.gatewaySettings)
        defer { gateway.stop() }

        for (user, key, body) in [
            ("off", "phone", #"{"provider":"apns","token":"tok-off","topic":"com.example.app"}"#),
            ("off", "droid", #"{"provider":"fcm","token":"fcm-off"}"#),
            ("on", "phone", #"{"provider":"apns","token":"tok-on","topic":"com.example.app"}"#),
            ("gone", "phone", #"{"provider":"apns","token":"tok-gone","topic":"com.example.app"}"#),
        ] {
            let put = try await gateway.http(HTTP.request("PUT", "/v1/users/\(user)/devices/\(key)/push", body: body))
            #expect(put.status == 200, "\(put)")
        }
        let online = try await WireClient.connect(gateway)
        try await online.auth(mid: "on", key: "phone")
        _ = try await gateway.waitForDevices("on", keys: ["phone"])
        try fakes.script(#"{"apns":{"tok-gone":[410]}}"#)

        _ = try await gateway.push(storedPushBody(users: ["off"], payload: #"{"n":0}"#))
        let push = try await gateway.push(
            #"{"to":{"users":["off","on","gone"]},"op":1000,"payload":{"n":1},"notify":{"title":"Hello","body":"Two new","sound":"default"}}"#)
        #expect(push.status == 200, "\(push)")

        func apns(_ token: String) -> [[String: Any]] {
            fakes.requests.filter { ($0["service"] as? String) == "apns" && ($0["path"] as? String) == "/3/device/\(token)" }
        }
        #expect(try await eventually(timeout: 15) { !apns("tok-off").isEmpty && !apns("tok-gone").isEmpty },
                "requests: \(fakes.requests)\nlog: \(gateway.log.suffix(3000))")
        let offline = apns("tok-off")
        #expect(offline.count == 1, "\(offline)")
        if let request = offline.first {
            let verdict = request["verdict"] as? [String: Any] ?? [:]
            #expect(verdict["ok"] as? Bool == true && request["status"] as? Int == 200, "\(request)")
            let aps = (request["body"] as? [String: Any])?["aps"] as? [String: Any] ?? [:]
            #expect(number(aps["badge"]) == 2, "badge = unread after the push: \(aps)")
            #expect((aps["alert"] as? [String: Any])?["title"] as? String == "Hello", "\(aps)")
            let headers = request["headers"] as? [String: Any] ?? [:]
            #expect(headers["apns-topic"] as? String == "com.example.app" && headers["apns-priority"] as? String == "10")
        }
        #expect(try await eventually(timeout: 10) {
            fakes.requests.contains { ($0["service"] as? String) == "fcm" && ($0["status"] as? Int) == 200 }
        }, "FCM got the droid's message: \(fakes.requests.map { "\($0["service"] ?? "") \($0["path"] ?? "") \($0["status"] ?? "")" })")

        // The 410 removes the token.
        #expect(try await eventually(timeout: 10) {
            ((try await gateway.userInfo("gone"))["push"] as? [String: Any])?.isEmpty == true
        }, "the Unregistered token is removed")
        try await pause(1)
        #expect(apns("tok-on").isEmpty, "the online user's phone got no notification")
        #expect(apns("tok-off").count == 1, "exactly one notification for the offline phone")
    }
}
