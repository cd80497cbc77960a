// What a subscriber knows of its subscriptions (`isSubscribed(to:)`), against a real redis-server
// (PUSHGW_TEST_REDIS_URL, set by Scripts/test): a publisher that expects its own message back relies on it.
import Foundation
import Logging
import PushCore
import Testing

@testable import PushPosix

@Suite(.serialized) struct RedisSubscriptionTests {
    private static func url() throws -> RedisURL {
        let text = ProcessInfo.processInfo.environment["PUSHGW_TEST_REDIS_URL"] ?? ""
        let parts = text.dropFirst("redis://".count).split(separator: ":")
        guard text.hasPrefix("redis://"), parts.count == 2, let port = UInt16(parts[1]) else {
            throw SystemError(call: "PUSHGW_TEST_REDIS_URL=\(text) (Scripts/test sets it)", errno: 0)
        }
        return RedisURL(host: "127.0.0.1", port: port)
    }

    /// Runs `loop` until `condition` holds (checked every 5 ms), at most `seconds`; returns whether it held.
    private static func run(
        _ loop: EventLoop, until condition: @escaping () -> Bool, atMost seconds: Double = 5
    ) -> Bool {
        let deadline = Posix.monotonicSeconds() + seconds
        let check = LoopTimer(loop: loop) {
            if condition() || Posix.monotonicSeconds() > deadline { loop.stop() }
        }
        check.start(after: 0.005, repeat: 0.005)
        loop.run()
        check.stop()
        return condition()
    }

    /// Confirmed only once Redis answered the SUBSCRIBE; from then on a PUBLISH on another connection arrives. An
    /// UNSUBSCRIBE ends it at once, a SUBSCRIBE again only when confirmed again, and a lost connection until its
    /// subscriptions are confirmed again.
    @Test func confirmedSubscriptions() throws {
        let loop = try EventLoop(capacity: 1024)
        let url = try Self.url()
        let channel = Array("pg:test:sub:\(UInt32.random(in: 0...UInt32.max))".utf8)
        let subscriber = RedisClient(loop: loop, url: url, name: "sub-test", logger: Logger(label: "test"))
        let publisher = RedisClient(loop: loop, url: url, name: "pub-test", logger: Logger(label: "test"))
        defer {
            subscriber.stop()
            publisher.stop()
        }
        var received: [[UInt8]] = []
        subscriber.subscribe(channels: [channel]) { _, message in received.append(message) }
        #expect(!subscriber.isSubscribed(to: channel), "not connected yet")
        subscriber.start()
        publisher.start()
        #expect(Self.run(loop, until: { subscriber.isSubscribed(to: channel) && publisher.isReady }))

        publisher.send([Array("PUBLISH".utf8), channel, Array("one".utf8)]) { _ in }
        #expect(Self.run(loop, until: { received.count == 1 }), "the message published once confirmed arrives")

        subscriber.unsubscribe(channels: [channel])
        #expect(!subscriber.isSubscribed(to: channel), "unsubscribed: no longer counted on, at once")
        subscriber.subscribe(channels: [channel]) { _, message in received.append(message) }
        #expect(!subscriber.isSubscribed(to: channel), "subscribed again: not before Redis confirms")
        #expect(Self.run(loop, until: { subscriber.isSubscribed(to: channel) }), "confirmed again")

        // The subscriber's connection killed from outside: not subscribed until the reconnect is confirmed. Looked
        // at when the connection goes down: the reconnect can be confirmed again within one 5 ms check.
        var subscribedWhenDown: Bool?
        subscriber.onDown = { subscribedWhenDown = subscriber.isSubscribed(to: channel) }
        publisher.send(["CLIENT", "KILL", "TYPE", "pubsub"].map { Array($0.utf8) }) { _ in }
        #expect(Self.run(loop, until: { subscribedWhenDown != nil }), "the connection is lost")
        #expect(subscribedWhenDown == false, "lost with the connection")
        #expect(Self.run(loop, until: { subscriber.isSubscribed(to: channel) }), "confirmed after the reconnect")
        publisher.send([Array("PUBLISH".utf8), channel, Array("two".utf8)]) { _ in }
        #expect(Self.run(loop, until: { received.count == 2 }))
        #expect(received == [Array("one".utf8), Array("two".utf8)])
    }
}
