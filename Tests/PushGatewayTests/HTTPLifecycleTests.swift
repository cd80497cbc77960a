// The HTTP API under a backend that does not read (back-pressure) and across a worker's stop or replacement:
// answers are bounded in memory, and no request a worker has read goes unanswered.
import Foundation
import Testing

@Suite(.serialized) struct HTTPLifecycleTests {
    /// Resident memory of process `pid` in bytes (VmRSS).
    private func residentBytes(_ pid: pid_t) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }

    @Test("a backend that pipelines thousands of /metrics requests and reads nothing is not read further: the worker's memory stays bounded, and every request sent is answered once it reads")
    func pipelinedRequestsWithoutReadingAreBounded() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let worker = try #require(try await gateway.waitForWorkers(1).first)
        let metricsSize = try await gateway.metrics().body.count
        let before = try #require(residentBytes(worker))

        // Requests go out without blocking for at most 3 s, until the gateway stops taking them.
        let socket = try TestSocket(port: gateway.httpPort, timeout: 10, receiveBufferSize: 4096)
        // /metrics and a path that is not served, alternately: the answers' order shows in their statuses.
        let pair = HTTP.request("GET", "/metrics") + HTTP.request("GET", "/v1/not-served")
        let total = 8000  // × metricsSize ≈ 50 MB of answers if all were queued
        let sent = try await offload { () -> Int in
            let batch = Array((0..<50).map { _ in pair }.joined())
            var requests = 0
            var offset = 0
            let deadline = Date().addingTimeInterval(3)
            while requests < total && Date() < deadline {
                let n = batch.withUnsafeBytes { send(socket.fd, $0.baseAddress! + offset, batch.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if n < 0 {
                    guard errno == EAGAIN || errno == EINTR else { throw TestError("send: \(errnoText())") }
                    usleep(10_000)
                    continue
                }
                offset += n
                if offset == batch.count {
                    offset = 0
                    requests += 100
                }
            }
            // Finish the partial batch so every request sent is whole.
            if offset > 0 {
                try socket.sendAll(Array(batch[offset...]))
                requests += 100
            }
            return requests
        }
        try await pause(0.5)
        let after = try #require(residentBytes(worker))
        let growth = after - before
        var metrics = ""
        let counted = try await eventually(timeout: 5) {
            metrics = try await gateway.metrics().text
            return (metricValue(metrics, "pushgw_http_backpressure_total") ?? 0) >= 1
        }
        #expect(growth < 8 << 20, "worker grew \(growth >> 20) MB for \(sent) unread answers of \(metricsSize) bytes")
        #expect(counted, "pushgw_http_backpressure_total stayed 0: \(metrics)")

        // Once the backend reads, every request it sent is answered.
        let connection = HTTPConnection(socket: socket)
        let answered = try await offload { () -> Int in
            var count = 0
            while count < sent {
                guard let response = try connection.readResponseSync(timeout: 10),
                    response.status == (count % 2 == 0 ? 200 : 404)
                else { break }
                count += 1
            }
            return count
        }
        #expect(answered == sent, "\(answered) of \(sent) pipelined requests answered in order")
        #expect(sent > 200, "the backend could send only \(sent) requests")
    }

    @Test("a backend that asks for more answers than it reads is closed past 16 MiB queued, and http_closed_overflow counts it")
    func unreadAnswersPastTheHardLimitClose() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        // 100 stored messages of 60 KB: each GET of them answers about 6 MB.
        let payload = "\"" + String(repeating: "x", count: 60_000) + "\""
        for _ in 0..<100 {
            let response = try await gateway.push(storedPushBody(users: ["big"], payload: payload))
            #expect(response.status == 200, "\(response)")
        }
        let socket = try TestSocket(port: gateway.httpPort, timeout: 10, receiveBufferSize: 4096)
        let request = HTTP.request("GET", "/v1/users/big/messages?after=0&limit=100")
        try socket.sendAll(Array((0..<10).map { _ in request }.joined()))
        // Nothing is read for a while; then the connection is found closed, after at most 16 MiB of answers.
        try await pause(2)
        let (drained, closed) = try await offload { () -> (Int, Bool) in
            var bytes = 0
            while true {
                switch try socket.fill(until: Date().addingTimeInterval(5)) {
                case .data:
                    bytes += socket.inbound.count
                    _ = socket.consume(socket.inbound.count)
                case .eof: return (bytes, true)
                case .timedOut: return (bytes, false)
                }
            }
        }
        #expect(closed, "the connection stayed open after \(drained) bytes of answers")
        #expect(drained < 20 << 20, "read \(drained) bytes: more than the 16 MiB limit")
        var metrics = ""
        let counted = try await eventually(timeout: 5) {
            metrics = try await gateway.metrics().text
            return (metricValue(metrics, "pushgw_http_closed_overflow_total") ?? 0) >= 1
        }
        #expect(counted, "pushgw_http_closed_overflow_total stayed 0")
    }

    @Test("SIGHUP with keep-alive backends pushing: every request sent is answered (none sees EOF instead), old workers end keep-alive with Connection: close, and they exit")
    func reloadAnswersEveryRequest() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_SERVER_WORKERS": "2"])
        defer { gateway.stop() }
        let old = try await gateway.waitForWorkers(2)
        let port = gateway.httpPort
        let stop = Locked(false)
        let backends = (0..<8).map { index in
            Task {
                try await offload { () -> (answered: Int, closes: Int, failures: [String]) in
                    var answered = 0
                    var closes = 0
                    var failures: [String] = []
                    var connection: HTTPConnection?
                    var n = 0
                    while !stop.current {
                        n += 1
                        do {
                            let current = try connection ?? HTTPConnection(port: port)
                            connection = current
                            try current.sendRaw(HTTP.request("POST", "/v1/push", body: pushBody(users: ["b\(index)"], payload: "{\"n\":\(n)}")))
                            guard let response = try current.readResponseSync(timeout: 5) else {
                                failures.append("push \(n): connection closed without an answer")
                                current.close()
                                connection = nil
                                continue
                            }
                            if response.status == 200 { answered += 1 } else { failures.append("push \(n): \(response)") }
                            if response.header("connection")?.lowercased() == "close" {
                                closes += 1
                                guard try current.expectClosed(timeoutSync: 2) else {
                                    failures.append("push \(n): Connection: close, then the connection stayed open")
                                    current.close()
                                    connection = nil
                                    continue
                                }
                                current.close()
                                connection = nil
                            }
                        } catch {
                            failures.append("push \(n): \(error)")
                            connection?.close()
                            connection = nil
                        }
                        usleep(5_000)
                    }
                    connection?.close()
                    return (answered, closes, failures)
                }
            }
        }
        try await pause(1)
        gateway.process.signal(SIGHUP)
        let oldGone = try await eventually(timeout: 10) { gateway.workerPIDs.allSatisfy { !old.contains($0) } }
        try await pause(1)
        stop.update { $0 = true }
        var answered = 0
        var closes = 0
        var failures: [String] = []
        for backend in backends {
            let result = try await backend.value
            answered += result.answered
            closes += result.closes
            failures += result.failures
        }
        #expect(oldGone, "old workers \(old) still running 10 s after SIGHUP: \(gateway.workerPIDs)")
        #expect(failures.isEmpty, "\(failures.count) of \(answered + failures.count) requests failed: \(failures.prefix(10))")
        #expect(closes >= 1, "no answer carried Connection: close, yet the old workers' connections ended")
        #expect(answered > 100, "only \(answered) pushes answered")
    }

    @Test("a long-poll that waits longer than limits.http_idle_timeout is answered, not closed as idle")
    func longPollOutlivesIdleTimeout() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_LIMITS_HTTP_IDLE_TIMEOUT": "1"])
        defer { gateway.stop() }
        let connection = try await HTTPConnection.connect(gateway)
        defer { connection.close() }
        let started = Date()
        let response = try await connection.roundTrip(HTTP.request("GET", "/v1/users/slow/messages?after=0&wait=3"), timeout: 6)
        let waited = Date().timeIntervalSince(started)
        #expect(response.status == 200, "\(response)")
        #expect(waited >= 2.5, "answered after \(waited) s instead of waiting 3 s")
        // The idle timeout counts from that answer.
        #expect(try await connection.expectClosed(timeout: 3), "the idle connection was kept past 1 s")
    }

    @Test("SIGTERM answers a parked long-poll at once with Connection: close, and the gateway exits")
    func stopAnswersParkedLongPoll() async throws {
        let gateway = try await GatewayProcess.start()
        defer { gateway.stop() }
        let connection = try await HTTPConnection.connect(gateway)
        defer { connection.close() }
        try connection.sendRaw(HTTP.request("GET", "/v1/users/parked/messages?after=0&wait=30"))
        try await pause(0.5)
        let started = Date()
        gateway.process.signal(SIGTERM)
        let response = try await connection.readResponse(timeout: 5)
        #expect(response?.status == 200, "\(String(describing: response))")
        #expect(response?.header("connection")?.lowercased() == "close", "\(String(describing: response?.headers))")
        #expect(Date().timeIntervalSince(started) < 2, "answered \(Date().timeIntervalSince(started)) s after SIGTERM")
        #expect(try await gateway.signalAndWait(SIGTERM, timeout: 6) != .running, "gateway still running 6 s after SIGTERM")
    }
}
