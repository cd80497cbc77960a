import Testing

@testable import PushCore

private struct Message: SequencedMessage, Equatable {
    let seq: UInt64
}

private func seqs(_ messages: [Message]) -> [UInt64] { messages.map(\.seq) }

@Suite struct OrderedDeliveryTests {
    /// In-order messages go straight out.
    @Test func inOrder() {
        var order = OrderedDelivery<Message>(lastSeq: 4)
        #expect(seqs(order.offer(Message(seq: 5))) == [5])
        #expect(seqs(order.offer(Message(seq: 6))) == [6])
        #expect(order.lastSeq == 6 && !order.hasGap)
    }

    /// Old and repeated messages are dropped.
    @Test func duplicates() {
        var order = OrderedDelivery<Message>(lastSeq: 4)
        #expect(order.offer(Message(seq: 4)).isEmpty)
        #expect(order.offer(Message(seq: 1)).isEmpty)
    }

    /// N+2 before N+1 waits; the gap is reported; filling it releases both in order.
    @Test func gapThenFill() {
        var order = OrderedDelivery<Message>(lastSeq: 10)
        #expect(order.offer(Message(seq: 12)).isEmpty)
        #expect(order.offer(Message(seq: 14)).isEmpty)
        #expect(order.missing == 11...11)
        #expect(seqs(order.offer(Message(seq: 11))) == [11, 12])
        #expect(order.missing == 13...13)
        #expect(seqs(order.offer(Message(seq: 13))) == [13, 14])
        #expect(!order.hasGap)
    }

    /// A gap that cannot be filled is skipped.
    @Test func skipGap() {
        var order = OrderedDelivery<Message>(lastSeq: 1)
        _ = order.offer(Message(seq: 5))
        _ = order.offer(Message(seq: 6))
        #expect(seqs(order.skipGap()) == [5, 6])
        #expect(order.lastSeq == 6)
    }

    /// While paused everything is held; resume releases what follows the replayed range.
    @Test func pausedUntilResume() {
        var order = OrderedDelivery<Message>(paused: true)
        #expect(order.offer(Message(seq: 8)).isEmpty)
        #expect(order.offer(Message(seq: 7)).isEmpty)
        #expect(order.missing == nil)
        #expect(seqs(order.resume(after: 6)) == [7, 8])
    }

    /// Any arrival order of 1...50 comes out as 1...50 exactly once.
    @Test(arguments: 1...10)
    func shuffled(seed: Int) {
        var rng = SplitMix(seed: UInt64(seed))
        let arrivals = (1...50).map { Message(seq: UInt64($0)) }.shuffled(using: &rng)
        var order = OrderedDelivery<Message>()
        var out: [UInt64] = []
        for message in arrivals + arrivals { out += seqs(order.offer(message)) }
        #expect(out == Array(1...50))
    }
}

@Suite struct GroupIndexTests {
    final class Member {}

    /// First join and last leave are reported; counts follow joins and leaves.
    @Test func joinAndLeave() {
        var index = GroupIndex<Member>()
        let a = Member(), b = Member()
        let firstJoin = index.join(a, "t")
        let secondJoin = index.join(b, "t")
        let repeatJoin = index.join(b, "t")  // twice is once
        #expect(firstJoin && !secondJoin && !repeatJoin)
        #expect(index.count("t") == 2)
        let leftOne = index.leave(a, "t")
        let leftLast = index.leave(b, "t")
        #expect(!leftOne && leftLast)
        #expect(index.count("t") == 0 && index.members("t").isEmpty)
        let leftUnknown = index.leave(a, "nope")
        #expect(!leftUnknown)
    }
}

@Suite struct NodeMessageTests {
    /// Every kind survives encoding, payloads with newlines included; stored messages keep store.lua's format.
    @Test(arguments: [
        NodeMessage.transient(user: "u1", device: nil, op: 1000, payload: Array("a\nb".utf8)),
        NodeMessage.transient(user: "u1", device: "k", op: 1001, payload: []),
        NodeMessage.kick(user: "u", device: "k"),
        NodeMessage.presence(user: "u-9"),
        NodeMessage.topic(origin: "n1", serial: 0, topic: "news", op: 1002, payload: Array("{\"x\":\n1}".utf8)),
        NodeMessage.topic(origin: "host-12-abc", serial: 17, topic: "a:b", op: 1002, payload: []),
        NodeMessage.broadcast(origin: "n1", serial: 0, room: nil, op: 1003, payload: [0, 1, 10, 255]),
        NodeMessage.broadcast(origin: "n2", serial: UInt64.max, room: "live://9", op: 1003, payload: Array("hi".utf8)),
        NodeMessage.keyed(origin: "n2", key: "device-1", op: 1004, payload: Array("k\n".utf8)),
        NodeMessage.stored(NodeDelivery(uid: "u", message: StoredMessage(seq: 3, op: 1000, timestampMillis: 5, expiresAt: 0, payload: [10]))),
    ])
    func roundTrip(message: NodeMessage) {
        #expect(NodeMessage(payload: message.encoded) == message)
    }

    /// The origin field carries the serial as `<node>:<serial>`; a node that reads it without knowing serials sees
    /// another node's id (and delivers), and a message without one (an older sender) has serial 0.
    @Test func serialInTheOriginField() {
        let message = NodeMessage.topic(origin: "n1", serial: 5, topic: "news", op: 1000, payload: Array("x".utf8))
        #expect(message.encoded == [1] + Array("P\nn1:5\nnews\n1000\nx".utf8))
        let older = NodeMessage(payload: [1] + Array("B\nn1\n\n1000\nx".utf8))
        #expect(older == .broadcast(origin: "n1", serial: 0, room: nil, op: 1000, payload: Array("x".utf8)))
        let notASerial = NodeMessage(payload: [1] + Array("P\nn1:x\nnews\n1000\n".utf8))
        #expect(notASerial == .topic(origin: "n1:x", serial: 0, topic: "news", op: 1000, payload: []))
    }

    @Test func rejectsGarbage() {
        #expect(NodeMessage(payload: [1]) == nil)
        #expect(NodeMessage(payload: [1, UInt8(ascii: "T"), 10, 65]) == nil)
        #expect(NodeMessage(payload: Array("no newline".utf8)) == nil)
    }
}
