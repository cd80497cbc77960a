// `/metrics` against the real binary (SPEC §3, §6): metric counts after traffic across two workers.
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Prometheus /metrics", .timeLimit(.minutes(1)))
struct MetricsEndpointTests {
    /// `/metrics` is Prometheus text with the pushgw_ series, aggregated over both workers: pushes, stored
    /// messages and deliveries count what was sent, whichever worker took each request.
    @Test func countsAcrossWorkers() async throws {
        let gateway = try await startTwoWorkers()
        defer { gateway.stop() }
        let clients = try await connectClients(gateway, users: ["m-1", "m-2"])
        defer { clients.forEach { $0.close() } }

        var text = ""
        #expect(
            try await eventually {
                text = try await gateway.metrics().text
                return metricValue(text, "pushgw_workers") == 2
                    && (metricValue(text, "pushgw_connections{worker=\"0\"}") ?? 0)
                        + (metricValue(text, "pushgw_connections{worker=\"1\"}") ?? 0) == 2
            }, "\(text)")
        let before = try #require(metricValue(text, "pushgw_pushes_total"))
        let storedBefore = try #require(metricValue(text, "pushgw_stored_total"))
        let deliveriesBefore = try #require(metricValue(text, "pushgw_deliveries_total"))
        let timedBefore = try #require(metricValue(text, "pushgw_push_delivery_seconds_count"))

        // Each push on a fresh HTTP connection, so both workers take some (SO_REUSEPORT spreads connections).
        for index in 0..<4 {
            let response = try await gateway.push(pushBody(users: ["m-1"], payload: "{\"n\":\(index)}", store: false))
            #expect(response.status == 200, "\(response)")
        }
        for index in 0..<3 {
            let response = try await gateway.push(pushBody(users: ["m-2"], payload: "{\"s\":\(index)}", store: true))
            #expect(response.status == 200, "\(response)")
        }
        for _ in 0..<4 { _ = try await clients[0].readFrame() }
        for _ in 0..<3 { _ = try await clients[1].readFrame() }

        let counted = try await eventually(timeout: 5) {
            text = try await gateway.metrics().text
            return metricValue(text, "pushgw_pushes_total") == before + 7
                && metricValue(text, "pushgw_stored_total") == storedBefore + 3
                && metricValue(text, "pushgw_deliveries_total") == deliveriesBefore + 7
                && metricValue(text, "pushgw_push_delivery_seconds_count") == timedBefore + 3
        }
        #expect(counted, "\(text)")

        let response = try await gateway.metrics()
        #expect(response.status == 200)
        #expect(response.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        for family in [
            "# TYPE pushgw_pushes_total counter", "# TYPE pushgw_connections_accepted_total counter",
            "# TYPE pushgw_connections_closed_total counter", "# TYPE pushgw_connections gauge",
            "# TYPE pushgw_resident_memory_bytes gauge", "# TYPE pushgw_write_queue_bytes gauge",
            "# TYPE pushgw_redis_up gauge", "# TYPE pushgw_push_delivery_seconds histogram",
            "# TYPE pushgw_redis_latency_seconds histogram", "# HELP pushgw_deliveries_total ",
        ] {
            #expect(response.text.contains(family + (family.hasPrefix("# HELP") ? "" : "\n")), "\(family)")
        }
        #expect(metricValue(response.text, "pushgw_connections_authenticated_total") == 2)
        #expect(metricValue(response.text, "pushgw_redis_up") == 1)
        #expect((metricValue(response.text, "pushgw_redis_latency_seconds_count") ?? 0) > 0)
        #expect(metricValue(response.text, "pushgw_push_delivery_seconds_bucket{le=\"+Inf\"}") == timedBefore + 3)
        #expect((metricValue(response.text, "pushgw_resident_memory_bytes{worker=\"1\"}") ?? 0) > 1_000_000)
    }

    /// A kicked client shows up in the closes by reason, and `/metrics` needs no API key.
    @Test func closesByReasonWithoutKey() async throws {
        let gateway = try await GatewayProcess.start(["PUSHGW_API_KEYS": "secret-key"])
        defer { gateway.stop() }
        let clients = try await connectClients(gateway, users: ["mk"])
        defer { clients.forEach { $0.close() } }
        #expect(try await gateway.admin("kick mk") == ["OK kicked 1"])
        var text = ""
        #expect(
            try await eventually {
                let response = try await gateway.metrics()
                text = response.text
                return response.status == 200
                    && metricValue(text, "pushgw_connections_closed_total{reason=\"kicked\"}") == 1
            }, "\(text)")
    }
}
