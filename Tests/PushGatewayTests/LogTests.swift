// The gateway's logs against the real binary (SPEC §6): rate-limited repeated warnings.
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Logs", .timeLimit(.minutes(1)))
struct LogTests {
    /// With Redis down every AUTH fails with the same warning: three lines pass per 10 s, the rest are counted
    /// and reported in one line when the window ends.
    @Test func repeatedWarningsAreRateLimited() async throws {
        let gateway = try await GatewayProcess.start(redis: .unreachable)
        defer { gateway.stop() }
        for index in 0..<10 {
            let client = try await WireClient.connect(gateway)
            try client.send(op: Op.auth, seq: 1, text: authBody(mid: .string("rl-\(index)"), key: "k"))
            // With Redis unreachable the workers start accepting only after their 5 s fallback: the first
            // connection waits in the backlog until then.
            let frames = try await client.readUntilClosed(timeout: 10)
            #expect(frames.first?.op == Op.disconnect, "\(frames)")
        }
        let message = "AUTH could not reach storage"
        #expect(gateway.log.components(separatedBy: message).count - 1 == 3, "\(gateway.log.suffix(3000))")
        let reported = try await eventually(timeout: 14) {
            gateway.log.contains("repeated log lines suppressed") && gateway.log.contains("suppressed=7")
        }
        #expect(reported, "\(gateway.log.suffix(3000))")
    }
}
