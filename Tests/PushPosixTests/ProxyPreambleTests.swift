import Glibc
import PushCore
import PushPosix
import Testing

/// Runs `loop` until `done`, or `seconds` at most.
private func runUntil(_ loop: EventLoop, seconds: Double = 2, _ done: @escaping () -> Bool) {
    let guardTimer = LoopTimer(loop: loop) { loop.stop() }
    guardTimer.start(after: seconds)
    let poll = LoopTimer(loop: loop) { if done() { loop.stop() } }
    poll.start(after: 0.01, repeat: 0.01)
    loop.run()
}

private func send(_ fd: Int32, _ bytes: [UInt8]) throws {
    _ = try bytes.withUnsafeBytes { try Posix.write(fd, from: $0) }
}

@Suite struct ProxyPreambleTests {
    /// A v1 header sent in two pieces, with the client's first bytes right behind it in the same write: the
    /// preamble reports the header's source and leaves exactly the client's bytes in the socket.
    @Test func headerInPiecesLeavesClientBytes() throws {
        let loop = try EventLoop(capacity: 4096)
        let (mine, peer) = try Posix.socketPair()
        defer { Posix.close(peer) }
        var outcome: ProxyPreamble.Outcome?
        #expect(ProxyPreamble.start(mine, loop: loop, timeout: EventLoop.ticks(5)) { _, result in outcome = result })
        try send(peer, Array("PROXY TCP4 203.0.113.7 ".utf8))
        runUntil(loop, seconds: 0.2) { false }  // the first piece only: nothing decided
        #expect(outcome == nil)
        try send(peer, Array("198.51.100.1 56324 443\r\nHELLO".utf8))
        runUntil(loop) { outcome != nil }
        guard case .header(let source) = outcome else {
            Issue.record("expected a header, got \(String(describing: outcome))")
            return
        }
        #expect(source == IPAddress("203.0.113.7"))
        var rest = [UInt8](repeating: 0, count: 64)
        let read = try rest.withUnsafeMutableBytes { try Posix.read(mine, into: $0) }
        guard case .done(let n) = read else {
            Issue.record("the client's bytes are not in the socket")
            return
        }
        #expect(Array(rest[..<n]) == Array("HELLO".utf8))
        Posix.close(mine)
    }

    /// Bytes that are no PROXY header are refused at once and the descriptor closed.
    @Test func garbageRefused() throws {
        let loop = try EventLoop(capacity: 4096)
        let (mine, peer) = try Posix.socketPair()
        defer { Posix.close(peer) }
        var outcome: ProxyPreamble.Outcome?
        ProxyPreamble.start(mine, loop: loop, timeout: EventLoop.ticks(5)) { _, result in outcome = result }
        try send(peer, Array("GET / HTTP/1.1\r\n\r\n".utf8))
        runUntil(loop) { outcome != nil }
        guard case .refused = outcome else {
            Issue.record("expected refused, got \(String(describing: outcome))")
            return
        }
        // Closed with the garbage unread: the peer sees a reset (or EOF), not a socket that waits.
        var byte = [UInt8](repeating: 0, count: 1)
        do {
            let end = try byte.withUnsafeMutableBytes { try Posix.read(peer, into: $0) }
            guard case .done(0) = end else {
                Issue.record("the refused descriptor is still open")
                return
            }
        } catch let error as SystemError {
            #expect(error.errno == ECONNRESET)
        }
    }
}
