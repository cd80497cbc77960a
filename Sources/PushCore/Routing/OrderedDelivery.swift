/// A message with a per-user sequence number.
public protocol SequencedMessage {
    var seq: UInt64 { get }
}

/// Keeps one connection's stored messages in strictly increasing seq order with no gaps (SPEC §2).
///
/// Messages reach a node from several places (its own store replies, other nodes' channels, syncs), so they
/// may come out of order. A message right after the last one delivered goes out at once; a later one is held
/// while the gap before it is fetched from Redis; an older or repeated one is dropped. While `paused` (AUTH's
/// replay has not arrived yet) everything is held. The held list is empty, and unallocated, almost always.
public struct OrderedDelivery<Message: SequencedMessage> {
    /// The last seq delivered (or skipped) on this connection.
    public private(set) var lastSeq: UInt64
    private var held: [Message] = []
    public private(set) var paused: Bool

    /// Most messages held while a gap is open; past it the gap is given up (the client can SYNC).
    public static var maxHeld: Int { 1024 }

    public init(lastSeq: UInt64 = 0, paused: Bool = false) {
        self.lastSeq = lastSeq
        self.paused = paused
    }

    /// Whether messages wait for a gap to be filled.
    public var hasGap: Bool { !paused && !held.isEmpty }

    /// The seqs missing before the first held message, if any.
    public var missing: ClosedRange<UInt64>? {
        guard !paused, let first = held.first, first.seq > lastSeq + 1 else { return nil }
        return (lastSeq + 1)...(first.seq - 1)
    }

    /// Offers one message; returns those to deliver now, in order.
    public mutating func offer(_ message: Message) -> [Message] {
        guard message.seq > lastSeq else { return [] }
        if !paused, held.isEmpty, message.seq == lastSeq + 1 {
            lastSeq = message.seq
            return [message]
        }
        insert(message)
        if held.count > Self.maxHeld { return skipGap() }
        return release()
    }

    /// Starts (or restarts) delivery after `lastSeq`, releasing what was held and is next in line.
    public mutating func resume(after lastSeq: UInt64) -> [Message] {
        paused = false
        self.lastSeq = max(self.lastSeq, lastSeq)
        held.removeAll { $0.seq <= self.lastSeq }
        return release()
    }

    /// Gives up on the current gap (its messages are gone from Redis or could not be fetched): delivery goes on
    /// from the first held message.
    public mutating func skipGap() -> [Message] {
        guard let first = held.first else { return [] }
        lastSeq = max(lastSeq, first.seq - 1)
        return release()
    }

    private mutating func insert(_ message: Message) {
        var index = held.count
        while index > 0, held[index - 1].seq >= message.seq {
            if held[index - 1].seq == message.seq { return }
            index -= 1
        }
        held.insert(message, at: index)
    }

    private mutating func release() -> [Message] {
        guard !paused else { return [] }
        var ready: [Message] = []
        while let first = held.first, first.seq <= lastSeq + 1 {
            held.removeFirst()
            if first.seq == lastSeq + 1 {
                lastSeq = first.seq
                ready.append(first)
            }
        }
        if held.isEmpty { held = [] }
        return ready
    }
}
extension StoredMessage: SequencedMessage {}
