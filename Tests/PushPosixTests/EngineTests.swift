import Glibc
import PushPosix
import Testing

/// Records what the loop reports for one descriptor and stops the loop at the first report.
private final class Recorder: LoopHandler {
    let loop: EventLoop
    var reports: [IOEvents] = []

    init(loop: EventLoop) { self.loop = loop }

    func handleEvents(_ events: IOEvents) {
        reports.append(events)
        loop.stop()
    }
}

/// Runs `loop` until a handler stops it, or two seconds at most.
private func runBriefly(_ loop: EventLoop) {
    let guardTimer = LoopTimer(loop: loop) { loop.stop() }
    guardTimer.start(after: 2)
    loop.run()
}

@Suite struct EngineTests {
    /// A descriptor watched for `.read` reports `.read` once its peer writes; watched for `.write`, it reports
    /// `.write` at once (an empty socket buffer).
    @Test func loopReportsIOEvents() throws {
        let loop = try EventLoop(capacity: 4096)
        let (mine, peer) = try Posix.socketPair()
        defer { Posix.close(peer) }
        let recorder = Recorder(loop: loop)
        #expect(loop.register(mine, recorder, events: .read))
        _ = try [UInt8(7)].withUnsafeBytes { try Posix.write(peer, from: $0) }
        runBriefly(loop)
        #expect(recorder.reports == [.read])

        var byte = [UInt8](repeating: 0, count: 1)
        _ = try byte.withUnsafeMutableBytes { try Posix.read(mine, into: $0) }
        loop.setEvents(mine, .write)
        runBriefly(loop)
        #expect(recorder.reports == [.read, .write])
        loop.unregister(mine)
        Posix.close(mine)
    }

    /// A non-blocking connect from a source address to a listener becomes writable with no pending error, and the
    /// listener accepts it.
    @Test func connectToListener() throws {
        let loop = try EventLoop(capacity: 4096)
        let listener = try Posix.listen(host: "127.0.0.1", port: 0, ipv6: false)
        defer { Posix.close(listener) }
        let address = try #require(Posix.ipv4Address("127.0.0.1", port: Int(Posix.localPort(listener))))
        let (fd, _) = try Posix.connect(to: address, from: Posix.ipv4("127.0.0.1"))
        defer { Posix.close(fd) }
        let recorder = Recorder(loop: loop)
        #expect(loop.register(fd, recorder, events: .write))
        runBriefly(loop)
        #expect(recorder.reports == [.write])
        #expect(Posix.pendingError(fd) == 0)
        guard case .done(let accepted) = try Posix.accept(listener) else {
            Issue.record("nothing to accept")
            return
        }
        Posix.close(accepted)
        loop.unregister(fd)
    }

    /// Both ends of a pipe are close-on-exec; what `writeAll` writes, `read` reads.
    @Test func pipeWriteAllRead() throws {
        let (read, write) = try Posix.pipe()
        defer {
            Posix.close(read)
            Posix.close(write)
        }
        #expect(fcntl(read, F_GETFD) & FD_CLOEXEC != 0)
        #expect(fcntl(write, F_GETFD) & FD_CLOEXEC != 0)
        let text = Array("hello\n".utf8)
        #expect(text.withUnsafeBytes { Posix.writeAll(write, $0) })
        var buffer = [UInt8](repeating: 0, count: 64)
        let result = try buffer.withUnsafeMutableBytes { try Posix.read(read, into: $0) }
        guard case .done(let count) = result else {
            Issue.record("nothing read")
            return
        }
        #expect(Array(buffer[..<count]) == text)
    }

    /// `EventLoop.now` counts 100 ms ticks of the monotonic clock while the loop runs.
    @Test func nowCountsTicks() throws {
        let loop = try EventLoop(capacity: 64)
        let start = loop.now
        let stop = LoopTimer(loop: loop) { loop.stop() }
        stop.start(after: 0.35)
        let before = Posix.monotonicNanos()
        loop.run()
        #expect(Posix.monotonicNanos() - before >= 350_000_000)
        #expect(loop.now - start >= 3)
    }

    /// A generation is never 0, the generation of handlers that are never on the timer wheel.
    @Test func generationsStartAtOne() throws {
        let loop = try EventLoop(capacity: 64)
        #expect(loop.makeGeneration() == 1)
        #expect(Recorder(loop: loop).generation == 0)
    }
}
