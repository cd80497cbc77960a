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

        // /metrics counts what the notifier settled, and the queue is drained.
        let metrics = try await gateway.http(HTTP.request("GET", "/metrics")).text
        for line in [
            #"pushgw_notifications_total{provider="apns",result="sent"} 1"#,
            #"pushgw_notifications_total{provider="apns",result="invalid"} 1"#,
            #"pushgw_notifications_total{provider="fcm",result="sent"} 1"#, "pushgw_notify_queue_lag 0",
            "pushgw_notify_pending 0",
        ] {
            #expect(metrics.contains(line + "\n"), "/metrics has \(line): \(metrics.suffix(1200))")
        }
    }

    @Test("A provider failing then back: retried until delivered; attempts used up: the dead-letter stream; the webhook signed; a notifier killed with a request in flight: its entry claimed and delivered by the restarted one")
    func retriesDeadLettersAndClaims() async throws {
        let fakes = try await FakeProviders.start()
        defer { fakes.stop() }
        var settings = fakes.gatewaySettings
        settings["PUSHGW_NOTIFY_MAX_ATTEMPTS"] = "3"
        settings["PUSHGW_NOTIFY_CLAIM_AFTER"] = "2"
        settings["PUSHGW_NOTIFY_WEBHOOK_URL"] = "https://127.0.0.1:\(fakes.ports["webhook"] ?? 0)/hook"
        settings["PUSHGW_NOTIFY_WEBHOOK_SECRET"] = FakeProviders.webhookSecret
        settings["PUSHGW_NOTIFY_WEBHOOK_CA_FILE"] = fakes.keys.appendingPathComponent("ca.pem").path
        let gateway = try await GatewayProcess.start(settings)
        defer { gateway.stop() }
        for (user, key, body) in [
            ("r", "phone", #"{"provider":"apns","token":"tok-retry","topic":"t"}"#),
            ("d", "phone", #"{"provider":"apns","token":"tok-dead","topic":"t"}"#),
            ("k", "phone", #"{"provider":"apns","token":"tok-kill","topic":"t"}"#),
            ("w", "hook", #"{"provider":"webhook","token":"w-1"}"#),
        ] {
            let put = try await gateway.http(HTTP.request("PUT", "/v1/users/\(user)/devices/\(key)/push", body: body))
            #expect(put.status == 200, "\(put)")
        }
        try fakes.script(#"{"apns":{"tok-retry":[500,503],"tok-dead":[500,500,500],"tok-kill":["hang"]},"webhook":[503]}"#)
        func notify(_ user: String) async throws {
            let push = try await gateway.push(
                #"{"to":{"users":["\#(user)"]},"op":1000,"payload":{},"notify":{"title":"t"}}"#)
            #expect(push.status == 200, "\(push)")
        }
        for user in ["r", "d", "w", "k"] { try await notify(user) }

        func answers(_ path: String) -> [Int] {
            fakes.requests.filter { ($0["path"] as? String) == path }.compactMap { $0["status"] as? Int }
        }
        #expect(try await eventually(timeout: 20) { answers("/3/device/tok-retry") == [500, 503, 200] },
                "retried until delivered: \(answers("/3/device/tok-retry"))")
        #expect(try await eventually(timeout: 20) { answers("/3/device/tok-dead").count == 3 })
        let dead = try await eventually(timeout: 10) {
            if case .array(let entries) = try gateway.redisValue(["XRANGE", RedisKeys.notifyDeadLetters, "-", "+"], key: "") {
                return entries.count == 1
            }
            return false
        }
        #expect(dead, "the notification that used up its 3 attempts is in the dead-letter stream")
        #expect(answers("/3/device/tok-dead").count == 3, "no fourth attempt: \(answers("/3/device/tok-dead"))")

        // The operator's view: `ctl notify` lists the dead letter, `ctl stats` the notifier and the queue.
        let shown = try await gateway.admin("notify")
        let line = shown.first { $0.hasPrefix("dead ") } ?? ""
        #expect(line.contains(" user=d ") && line.contains(" device=phone ") && line.contains(" provider=apns "), "\(shown)")
        #expect(line.contains(" reason=gave"), "\(shown)")
        #expect(shown.contains("notify_dead_letters 1") && shown.last == "shown 1 of 1", "\(shown)")
        let stats = try await gateway.admin("stats")
        #expect(stats.contains { $0.hasPrefix("notifier 0 pid=") }, "\(stats)")
        #expect(stats.contains("notify_dead_letters 1") && stats.contains("notifications.apns.failed 1"), "\(stats)")
        #expect(stats.contains { $0.hasPrefix("notifications.apns.retried ") }, "\(stats)")
        #expect(StatsTable.render(stats).contains("dead letters"), "\(StatsTable.render(stats))")

        // The webhook: 503, then delivered, each request signed (the fake checks the HMAC).
        #expect(try await eventually(timeout: 20) { answers("/hook") == [503, 200] }, "\(answers("/hook"))")
        let hooks = fakes.requests.filter { ($0["path"] as? String) == "/hook" }
        #expect(hooks.allSatisfy { ($0["verdict"] as? [String: Any])?["ok"] as? Bool == true }, "\(hooks)")
        #expect((hooks.last?["body"] as? [String: Any])?["user"] as? String == "w", "\(hooks)")

        // The notifier hangs on tok-kill: kill -9 it; the master starts another, which claims the entry after
        // claim_after (2 s) and delivers it.
        #expect(try await eventually(timeout: 10) { answers("/3/device/tok-kill").isEmpty && fakes.requests.contains {
            ($0["path"] as? String) == "/3/device/tok-kill" } })
        let notifier = try #require(childPid(of: gateway.pid, commandContains: "notify"), "no notify process")
        kill(notifier, SIGKILL)
        #expect(try await eventually(timeout: 20) { answers("/3/device/tok-kill") == [200] },
                "claimed and delivered after the kill: \(fakes.requests.filter { ($0["path"] as? String) == "/3/device/tok-kill" })")
        let restarted = childPid(of: gateway.pid, commandContains: "notify")
        #expect(restarted != nil && restarted != notifier, "the master restarted the notifier")
    }
}

extension NotifyDeliveryTests {
    @Test("On a Redis Cluster: every offline user's phone is notified once, from the stream of the user's slot, with badge = unread; the queue's figures add up the streams")
    func clusterStreams() async throws {
        let fakes = try await FakeProviders.start()
        defer { fakes.stop() }
        let gateway = try await GatewayProcess.start(fakes.gatewaySettings, on: .cluster)
        defer { gateway.stop() }
        let users = (0..<12).map { "cu\($0)" }
        for user in users {
            let body = #"{"provider":"apns","token":"tok-\#(user)","topic":"t"}"#
            let put = try await gateway.http(HTTP.request("PUT", "/v1/users/\(user)/devices/phone/push", body: body))
            #expect(put.status == 200, "\(put)")
        }
        let list = users.map { "\"\($0)\"" }.joined(separator: ",")
        let push = try await gateway.push(#"{"to":{"users":[\#(list)]},"op":1000,"payload":{},"notify":{"title":"t"}}"#)
        #expect(push.status == 200, "\(push)")
        func apns(_ user: String) -> [[String: Any]] {
            fakes.requests.filter { ($0["path"] as? String) == "/3/device/tok-\(user)" }
        }
        #expect(try await eventually(timeout: 20) { users.allSatisfy { !apns($0).isEmpty } },
                "notified: \(users.filter { !apns($0).isEmpty })\nlog: \(gateway.log.suffix(3000))")
        try await pause(1)
        for user in users {
            let requests = apns(user)
            #expect(requests.count == 1, "\(user): \(requests)")
            let aps = (requests.first?["body"] as? [String: Any])?["aps"] as? [String: Any] ?? [:]
            #expect(number(aps["badge"]) == 1, "\(user): \(aps)")
        }
        let slots = Set(users.map { RedisSlot.of(key: Array(RedisKeys.meta($0).utf8)) })
        let metrics = try await gateway.metrics().text
        #expect(metricValue(metrics, #"pushgw_notifications_total{provider="apns",result="sent"}"#) == Double(users.count), "\(metrics)")
        #expect(metricValue(metrics, "pushgw_notify_queue_lag") == 0 && metricValue(metrics, "pushgw_notify_pending") == 0, "\(metrics)")
        let stats = try await gateway.admin("stats")
        #expect(stats.contains("notify_streams \(slots.count)"), "one stream per slot of the \(slots.count): \(stats)")
    }

    @Test("A refused read is not retried in a busy loop, and reading starts again once the stream is back; an entry a notifier keeps retrying is not claimed by the other notifier")
    func refusedReadsAndRetriesKeptByTheirNotifier() async throws {
        let fakes = try await FakeProviders.start()
        defer { fakes.stop() }
        var settings = fakes.gatewaySettings
        settings["PUSHGW_NOTIFY_WORKERS"] = "2"
        settings["PUSHGW_NOTIFY_MAX_ATTEMPTS"] = "20"
        settings["PUSHGW_NOTIFY_CLAIM_AFTER"] = "2"
        let gateway = try await GatewayProcess.start(settings)
        defer { gateway.stop() }
        let put = try await gateway.http(
            HTTP.request("PUT", "/v1/users/rr/devices/phone/push", body: #"{"provider":"apns","token":"tok-rr","topic":"t"}"#))
        #expect(put.status == 200, "\(put)")
        /// Reads refused for the key's type so far (`INFO errorstats`).
        func refusals() throws -> Int {
            guard case .string(let info) = try gateway.redisValue(["INFO", "errorstats"], key: "") else { return -1 }
            let text = String(decoding: info, as: UTF8.self)
            guard let line = text.split(separator: "\r\n").first(where: { $0.hasPrefix("errorstat_WRONGTYPE:") }),
                let count = line.split(separator: "count=").last
            else { return 0 }
            return Int(count) ?? -1
        }
        // Both notifiers read (their blocking reads connected); then the stream is replaced by a key of another
        // type, which refuses every read.
        #expect(try await eventually(timeout: 10) {
            gateway.log.components(separatedBy: "redis=notify-read url=").count == 3
        }, "\(gateway.log.suffix(2000))")
        try await pause(0.5)
        _ = try gateway.redisValue(["DEL", RedisKeys.notifyStream], key: "")
        _ = try gateway.redisValue(["SET", RedisKeys.notifyStream, "not a stream"], key: "")
        try await pause(3)
        let before = try refusals()
        try await pause(2)
        let during = try refusals() - before
        #expect(before > 0 && during <= 8, "two notifiers refused for 2 s read \(during) times (about one a second each)")
        _ = try gateway.redisValue(["DEL", RedisKeys.notifyStream], key: "")

        // Sixteen failures then a success: with retries capped at 1 s (full jitter) they take about 8 s, four times
        // claim_after (2 s); the other notifier's claims, every 2 s, must not take the entry meanwhile.
        let failures = 16
        try fakes.script(#"{"apns":{"tok-rr":[\#(Array(repeating: "500", count: failures).joined(separator: ","))]}}"#)
        let push = try await gateway.push(#"{"to":{"users":["rr"]},"op":1000,"payload":{},"notify":{"title":"t"}}"#)
        #expect(push.status == 200, "\(push)")
        func answers() -> [Int] {
            fakes.requests.filter { ($0["path"] as? String) == "/3/device/tok-rr" }.compactMap { $0["status"] as? Int }
        }
        #expect(try await eventually(timeout: 40) { answers().contains(200) }, "delivered at last: \(answers())\nlog: \(gateway.log.suffix(2000))")
        try await pause(3)
        #expect(answers() == Array(repeating: 500, count: failures) + [200], "one notifier's attempts only: \(answers())")
    }
}

/// A child of `parent` whose command line contains `text`.
private func childPid(of parent: pid_t, commandContains text: String) -> pid_t? {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
    for entry in entries {
        guard let pid = pid_t(entry),
            let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { continue }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 1, pid_t(fields[1]) == parent,
            let command = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
        else { continue }
        if String(decoding: command.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).contains(text) { return pid }
    }
    return nil
}
