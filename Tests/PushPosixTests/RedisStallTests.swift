// The Redis client's stall check against a real redis-server (PUSHGW_TEST_REDIS_URL, set by Scripts/test).
import CHiredis
import Foundation
import Glibc
import Logging
import PushCore
import Testing

@testable import PushPosix

/// The test server's address from `PUSHGW_TEST_REDIS_URL` (`redis://127.0.0.1:<port>`).
private func testRedisURL() throws -> RedisURL {
    let name = "PUSHGW_TEST_REDIS_URL"
    guard let text = ProcessInfo.processInfo.environment[name], text.hasPrefix("redis://") else {
        throw SystemError(call: "\(name) is not set (Scripts/test sets it)", errno: 0)
    }
    let parts = text.dropFirst("redis://".count).split(separator: "/").first?.split(separator: ":") ?? []
    guard parts.count == 2, let port = UInt16(parts[1]) else {
        throw SystemError(call: "\(name)=\(text): expected redis://<host>:<port>", errno: 0)
    }
    return RedisURL(host: parts[0] == "localhost" ? "127.0.0.1" : String(parts[0]), port: port)
}

/// Runs `loop` until something stops it, or `seconds` at most.
private func run(_ loop: EventLoop, atMost seconds: Double) {
    let guardTimer = LoopTimer(loop: loop) { loop.stop() }
    guardTimer.start(after: seconds)
    loop.run()
}

/// A client of `url` with a 0.5 s command timeout, run on `loop` until it is ready (at most 5 s).
private func connectedClient(_ loop: EventLoop, url: RedisURL) throws -> RedisClient {
    let client = RedisClient(
        loop: loop, url: url, name: "stall-test", logger: Logger(label: "test"), commandTimeout: 0.5,
        heartbeatInterval: 60)
    client.onReady = { loop.stop() }
    client.start()
    run(loop, atMost: 5)
    guard client.isReady else {
        client.stop()
        throw RedisError.notConnected
    }
    return client
}

@Suite(.serialized) struct RedisStallTests {
    /// A command queued just before the loop stays busy for longer than the command timeout is not written until
    /// the loop is back: Redis cannot be blamed for that time, the command succeeds and the connection stays.
    @Test func busyLoopBeforeTheWrite() throws {
        let loop = try EventLoop(capacity: 1024)
        let client = try connectedClient(loop, url: try testRedisURL())
        defer { client.stop() }

        var result: Result<RedisValue, RedisError>?
        let busy = LoopTimer(loop: loop) {
            client.send([Array("PING".utf8)]) { reply in
                result = reply
                loop.stop()
            }
            usleep(1_300_000)  // in the same callback: the PING waits in hiredis's output buffer meanwhile
        }
        busy.start(after: 0.05)
        run(loop, atMost: 5)

        #expect(result.map { if case .success(.status("PONG")) = $0 { true } else { false } } == true, "\(result!)")
        #expect(client.isReady && client.errors == 0, "the connection was dropped")
    }

    /// A Redis that really stops answering is still declared stalled about the command timeout after the command,
    /// while the loop runs freely, and the command in flight fails. The server here answers the client's handshake
    /// PING, then reads and never answers again.
    @Test func silentRedisIsAStall() throws {
        let listener = try Posix.listen(host: "127.0.0.1", port: 0, ipv6: false)
        let port = Posix.localPort(listener)
        _ = fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) & ~O_NONBLOCK)  // the server thread blocks in accept
        // One connection after the other (a reconnect is served too), until the listener is shut down.
        let server = Thread {
            while case let fd = Glibc.accept(listener, nil, nil), fd >= 0 {
                var buffer = [UInt8](repeating: 0, count: 4096)
                var answered = false
                while Glibc.read(fd, &buffer, buffer.count) > 0 {
                    if !answered { _ = Glibc.write(fd, "+PONG\r\n", 7) }
                    answered = true
                }
                Glibc.close(fd)
            }
        }
        server.start()
        defer {
            Glibc.shutdown(listener, Int32(SHUT_RDWR))  // wakes the accept
            Posix.close(listener)
        }

        let loop = try EventLoop(capacity: 1024)
        let client = try connectedClient(loop, url: RedisURL(host: "127.0.0.1", port: port))
        defer { client.stop() }

        var result: Result<RedisValue, RedisError>?
        let started = Posix.monotonicSeconds()
        client.send([Array("PING".utf8)]) { reply in
            result = reply
            loop.stop()
        }
        run(loop, atMost: 5)
        let took = Posix.monotonicSeconds() - started

        #expect(result.map { if case .failure(.timeout) = $0 { true } else { false } } == true, "\(String(describing: result))")
        #expect(took > 0.5 && took < 1.5, "declared stalled after \(took) s")
    }

    /// A loop busy for longer than the command timeout (a worker that ran thousands of TLS handshakes in one
    /// iteration) while Redis answered is not a stalled Redis: the reply waiting in the socket is read, the command
    /// succeeds and the connection stays. libev runs the tick before the I/O callbacks of the same iteration, so the
    /// check used to see only the loop's own delay, drop a healthy connection and fail every command in flight.
    @Test func busyLoopIsNotAStall() throws {
        let loop = try EventLoop(capacity: 1024)
        let client = try connectedClient(loop, url: try testRedisURL())
        defer { client.stop() }

        var result: Result<RedisValue, RedisError>?
        var blocked = false
        // Once the PING is written (hiredis's output buffer is empty again; Redis answers at once) and before its
        // reply is read, the loop's thread is kept busy for more than twice the command timeout.
        loop.addBeforeSleep {
            guard !blocked, result == nil, client.inFlight > 0, let context = client.context,
                sdslen(context.pointee.c.obuf) == 0
            else { return }
            blocked = true
            usleep(1_300_000)
        }
        client.send([Array("PING".utf8)]) { reply in
            result = reply
            loop.stop()
        }
        run(loop, atMost: 5)
        #expect(blocked)

        #expect(result.map { if case .success(.status("PONG")) = $0 { true } else { false } } == true, "\(result!)")
        #expect(client.isReady && client.errors == 0, "the connection was dropped")
    }
}
