import PushCore

/// Web clients without sockets waiting on `GET /v1/users/{uid}/messages?wait=S`: parked per user until a
/// stored message for that user reaches this node, or their time is up (then answered with no messages).
final class LongPolls {
    struct Poll {
        let user: String
        let after: UInt64
        let limit: Int
        let wait: Int
        let respond: (HTTPResponse) -> Void
        /// Loop tick by which it must be answered; set when first parked.
        var deadline: UInt32 = 0
    }

    private unowned(unsafe) let loop: EventLoop
    private var parked: [String: [Poll]] = [:]
    private var count = 0
    /// Asks Redis again for a poll that was woken or whose time is up (it is then answered, empty or not).
    var retry: ((Poll) -> Void)?

    init(loop: EventLoop) {
        self.loop = loop
        loop.addTick { [unowned self] in self.expire() }
    }

    /// Whether `poll` has waited its time (a poll woken and found empty again is not parked past it).
    func expired(_ poll: Poll) -> Bool { poll.deadline != 0 && poll.deadline <= loop.now }

    func park(_ poll: Poll) {
        var poll = poll
        if poll.deadline == 0 { poll.deadline = loop.now &+ EventLoop.ticks(Double(poll.wait)) }
        parked[poll.user, default: []].append(poll)
        count += 1
    }

    /// Hands every poll parked for `user` back to `retry`.
    func wake(_ user: String) {
        guard let polls = parked.removeValue(forKey: user) else { return }
        count -= polls.count
        polls.forEach { retry?($0) }
    }

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
