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
