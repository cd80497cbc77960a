// Offline notifications, the gateway's half (SPEC §10; issue 14): push tokens per device, a stored push with
// `notify` queuing one notification per offline device with a token in the same script call (badge = unread after
// the push), `always`, and GET /v1/presence — on one Redis server and on a Redis Cluster (the stream of the user's
// slot).
import Foundation
import PushCore
import Testing

@Suite("Notification queue", .serialized, .timeLimit(.minutes(2)))
struct NotifyQueueTests {
    @Test("PUT and DELETE /v1/users/{uid}/devices/{key}/push keep tokens that GET /v1/users/{uid} shows; bad bodies are 400 naming the field")
    func pushTokens() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let put = try await gateway.http(HTTP.request(
            "PUT", "/v1/users/t1/devices/phone/push",
            body: #"{"provider":"apns","token":"ab12","topic":"com.example.app","sandbox":true}"#))
        #expect(put.status == 200 && put.json?["created"] as? Bool == true, "\(put)")
        let again = try await gateway.http(HTTP.request(
            "PUT", "/v1/users/t1/devices/phone/push", body: #"{"provider":"apns","token":"cd34","topic":"com.example.app"}"#))
        #expect(again.status == 200 && again.json?["created"] as? Bool == false, "a new token replaces the old: \(again)")
        _ = try await gateway.http(HTTP.request(
            "PUT", "/v1/users/t1/devices/tablet/push", body: #"{"provider":"fcm","token":"f-1"}"#))

        let info = try await gateway.userInfo("t1")
        let push = info["push"] as? [String: Any] ?? [:]
        let phone = push["phone"] as? [String: Any] ?? [:]
        #expect(phone["provider"] as? String == "apns" && phone["token"] as? String == "cd34", "\(info)")
        #expect(phone["topic"] as? String == "com.example.app" && phone["sandbox"] as? Bool == false, "\(phone)")
        #expect((push["tablet"] as? [String: Any])?["provider"] as? String == "fcm", "\(push)")

        for (body, field) in [
            (#"{"provider":"pigeon","token":"x"}"#, "provider"), (#"{"provider":"apns"}"#, "token"),
            (#"{"provider":"apns","token":""}"#, "token"), (#"{"provider":"fcm","token":"x","sandbox":"yes"}"#, "sandbox"),
            ("[]", "body"),
        ] {
            let response = try await gateway.http(HTTP.request("PUT", "/v1/users/t1/devices/phone/push", body: body))
            #expect(response.status == 400, "\(body): \(response)")
            #expect(response.text.contains(field), "\(body): the error names \(field): \(response.text)")
        }
        let get = try await gateway.http(HTTP.request("GET", "/v1/users/t1/devices/phone/push"))
        #expect(get.status == 405, "\(get)")

        let removed = try await gateway.http(HTTP.request("DELETE", "/v1/users/t1/devices/phone/push"))
        #expect(removed.status == 200 && removed.json?["removed"] as? Bool == true, "\(removed)")
        let after = try await gateway.userInfo("t1")
        #expect((after["push"] as? [String: Any])?.keys.sorted() == ["tablet"], "\(after)")
    }

    @Test("A stored push with notify queues one entry per offline device with a token (badge = unread after it), all with always, none without notify; a transient push with notify is 400", arguments: TestStorage.allCases)
    func storedPushQueuesNotifications(storage: TestStorage) async throws {
        let gateway = try await GatewayProcess.start(on: storage)
        defer { gateway.stop() }
        let user = "n1"
        let stream = RedisKeys.notifyStream(forUser: user, cluster: storage == .cluster)
        for (key, body) in [
            ("phone", #"{"provider":"apns","token":"aa","topic":"com.example"}"#),
            ("web", #"{"provider":"webhook","token":"w1"}"#),
        ] {
            let put = try await gateway.http(HTTP.request("PUT", "/v1/users/\(user)/devices/\(key)/push", body: body))
            #expect(put.status == 200, "\(put)")
        }
        // "web" is online: only "phone" is notified.
        let web = try await WireClient.connect(gateway)
        try await web.auth(mid: .string(user), key: "web")
        _ = try await gateway.waitForDevices(user, keys: ["web"])

        let plain = try await gateway.push(storedPushBody(users: [user], payload: #"{"m":0}"#))
        #expect(plain.status == 200, "\(plain)")
        let notify = #"{"title":"Hi","body":"You have mail","priority":"normal","data":{"k":"v"}}"#
        let first = try await gateway.push(#"{"to":{"users":["n1"]},"op":1000,"payload":{"m":1},"notify":\#(notify)}"#)
        #expect(first.status == 200, "\(first)")
        var entries = try streamEntries(gateway, stream)
        #expect(entries.count == 1, "one offline device with a token: \(entries)")
        if let entry = entries.first {
            #expect(entry["u"] == user && entry["d"] == "phone" && entry["p"] == "apns" && entry["t"] == "aa")
            #expect(entry["tp"] == "com.example" && entry["sb"] == "0" && entry["op"] == "1000")
            #expect(entry["s"] == "\(first.seq(user) ?? -1)" && entry["b"] == "2", "badge = unread after the push: \(entry)")
            #expect(entry["n"].flatMap { try? JSONParser.parse($0) } == (try? JSONParser.parse(notify)), "\(entry)")
        }

        let always = try await gateway.push(
            #"{"to":{"users":["n1"]},"op":1000,"payload":{"m":2},"notify":{"title":"All","always":true}}"#)
        #expect(always.status == 200, "\(always)")
        entries = try streamEntries(gateway, stream)
        #expect(entries.count == 3, "always notifies the online device too: \(entries)")
        #expect(Set(entries.suffix(2).compactMap { $0["d"] }) == ["phone", "web"] && entries.last?["b"] == "3")

        let transient = try await gateway.push(
            #"{"to":{"users":["n1"]},"op":1000,"payload":{},"store":false,"notify":{"title":"x"}}"#)
        #expect(transient.status == 400 && transient.text.contains("notify"), "\(transient)")
        let bad = try await gateway.push(#"{"to":{"users":["n1"]},"op":1000,"payload":{},"notify":{"priority":"urgent"}}"#)
        #expect(bad.status == 400 && bad.text.contains("notify.priority"), "\(bad)")
        #expect(try streamEntries(gateway, stream).count == 3, "refused pushes queue nothing")

        let presence = try await gateway.http(HTTP.request("GET", "/v1/presence?users=n1,nobody"))
        let users = presence.json?["users"] as? [String: Any] ?? [:]
        #expect((users["n1"] as? [String: Any])?["online"] as? Bool == true, "\(presence)")
        #expect(number((users["n1"] as? [String: Any])?["devices"]) == 1, "\(presence)")
        #expect((users["nobody"] as? [String: Any])?["online"] as? Bool == false, "\(presence)")
        let noUsers = try await gateway.http(HTTP.request("GET", "/v1/presence"))
        #expect(noUsers.status == 400, "\(noUsers)")
    }
    @Test("presence.events: a user's first session anywhere appends online, the last one leaving offline; the ones between nothing", arguments: TestStorage.allCases)
    func presenceEvents(storage: TestStorage) async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_PRESENCE_EVENTS": "true"], on: storage)
        defer { gateway.stop() }
        let stream = RedisKeys.presenceStream(forUser: "p1", cluster: storage == .cluster)
        func events() throws -> [String] {
            try streamEntries(gateway, stream).filter { $0["user"] == "p1" }.compactMap { $0["event"] }
        }
        let a = try await WireClient.connect(gateway)
        try await a.auth(mid: "p1", key: "a")
        #expect(try await eventually { try events() == ["online"] }, "\((try? events()) ?? [])")
        let b = try await WireClient.connect(gateway)
        try await b.auth(mid: "p1", key: "b")
        _ = try await gateway.waitForDevices("p1", keys: ["a", "b"])
        a.close()
        try await pause(0.3)
        let between = try events()
        #expect(between == ["online"], "a second session and one of two leaving tell nothing: \(between)")
        b.close()
        #expect(try await eventually { try events() == ["online", "offline"] }, "\((try? events()) ?? [])")
        if let entry = try streamEntries(gateway, stream).last {
            #expect(entry["ts"].flatMap { Int($0) }.map { abs($0 - Int(Date().timeIntervalSince1970)) < 60 } == true)
        }
    }
}

/// The entries of `stream` in order, each as its field → value map.
private func streamEntries(_ gateway: GatewayProcess, _ stream: String) throws -> [[String: String]] {
    let reply = try gateway.redisValue(["XRANGE", stream, "-", "+"], key: stream)
    guard case .array(let entries) = reply else { throw TestError("XRANGE \(stream) answered \(reply)") }
    return entries.map { entry in
        guard case .array(let parts) = entry, parts.count == 2, case .array(let fields) = parts[1] else { return [:] }
        var map: [String: String] = [:]
        for index in stride(from: 0, to: fields.count - 1, by: 2) {
            if case .string(let name) = fields[index], case .string(let value) = fields[index + 1] {
                map[String(decoding: name, as: UTF8.self)] = String(decoding: value, as: UTF8.self)
            }
        }
        return map
    }
}
