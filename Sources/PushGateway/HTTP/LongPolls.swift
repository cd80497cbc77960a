import PushCore
import PushPosix

/// Web clients without sockets waiting on `GET /v1/users/{uid}/messages?wait=S`: parked per user until a
/// stored message for that user reaches this node, or their time is up (then answered with no messages).
///
/// A stored message reaches this node when this node stored it, or when `store.lua` published it here: while
/// this node has a poll for a user in flight or parked, its field in the user's `pg:{u:<uid>}:polls` hash tells
/// every node storing for the user to publish to this one too. The field is written before the poll's first
/// SYNC on the same connection, so a message is either seen by that SYNC or published here afterwards.
final class LongPolls {
    struct Poll {
        let user: String
        let after: UInt64
        let limit: Int
        let wait: Int
        let respond: (HTTPResponse) -> Void
        /// Loop tick by which it must be answered; set when first watched.
        var deadline: UInt32 = 0
    }

    private unowned(unsafe) let loop: EventLoop
    private let store: MessageStore
    private var parked: [String: [Poll]] = [:]
    private var count = 0
    /// Users with polls in flight or parked here: how many, and the unix second this node's field in Redis
    /// says it waits until.
    private var watched: [String: (polls: Int, until: UInt64)] = [:]
    /// Asks Redis again for a poll that was woken or whose time is up (it is then answered, empty or not).
    var retry: ((Poll) -> Void)?

    init(loop: EventLoop, store: MessageStore) {
        self.loop = loop
        self.store = store
        loop.addTick { [unowned self] in self.expire() }
    }

    /// The worker is stopping: no poll is parked any more.
    private var stopping = false

    /// Whether `poll` has waited its time (a poll woken and found empty again is not parked past it), or the
    /// worker is stopping.
    func expired(_ poll: Poll) -> Bool { stopping || (poll.deadline != 0 && poll.deadline <= loop.now) }

    /// The worker is stopping: every parked poll is answered with what Redis has now.
    func answerAll() {
        stopping = true
        for user in Array(parked.keys) { wake(user) }
    }

    /// Starts watching for a poll that will wait: registers this node for the user's stored messages (sent
    /// before the poll's SYNC, on the same connection). Call once per poll; `finish` ends it.
    func watch(_ poll: inout Poll) {
        poll.deadline = loop.now &+ EventLoop.ticks(Double(poll.wait))
        let until = Posix.wallSeconds() + UInt64(poll.wait) + 2
        var entry = watched[poll.user] ?? (0, 0)
        entry.polls += 1
        if until > entry.until {
            entry.until = until
            register(poll.user, until: until)
        }
        watched[poll.user] = entry
    }

    /// A watched poll was answered: the node's field is removed with the user's last poll here.
    func finish(_ poll: Poll) {
        guard var entry = watched[poll.user] else { return }
        entry.polls -= 1
        if entry.polls > 0 {
            watched[poll.user] = entry
        } else {
            watched[poll.user] = nil
            store.command(["HDEL", RedisKeys.polls(poll.user), store.node])
        }
    }

    func park(_ poll: Poll) {
        parked[poll.user, default: []].append(poll)
        count += 1
    }

    /// Hands every poll parked for `user` back to `retry`.
    func wake(_ user: String) {
        guard let polls = parked.removeValue(forKey: user) else { return }
        count -= polls.count
        polls.forEach { retry?($0) }
    }

    /// After the node channel was down (a message published meanwhile is lost) or Redis was restarted (its
    /// fields may be gone): every user's field is written again, then every parked poll asks Redis again.
    func recheckAll() {
        for (user, entry) in watched { register(user, until: entry.until) }
        for user in Array(parked.keys) { wake(user) }
    }

    private func register(_ user: String, until: UInt64) {
        let key = RedisKeys.polls(user)
        store.command(["HSET", key, store.node, String(until)])
        store.command(["EXPIRE", key, String(Self.maxWait + 60)])
    }

    /// The longest `wait` a poll may ask for.
    static let maxWait = 300

    private func expire() {
        guard count > 0 else { return }
        let now = loop.now
        for (user, polls) in parked {
            let (due, waiting) = (polls.filter { $0.deadline <= now }, polls.filter { $0.deadline > now })
            guard !due.isEmpty else { continue }
            parked[user] = waiting.isEmpty ? nil : waiting
            count -= due.count
            due.forEach { retry?($0) }
        }
    }
}
