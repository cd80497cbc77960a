import Glibc
import PushCore
import PushPosix

/// `GET /v1/users/{uid}/messages?after=N&limit=L&wait=S` (SPEC §3): a web client's inbox read, long-polling for
/// the first message when it waits (`LongPolls` parks it until a store for the user reaches this node).
extension PushAPI {
    /// `GET /v1/users/{uid}/messages?after=N&limit=L&wait=S`: stored messages after N, long-polling up to S
    /// seconds for the first one.
    func messages(_ user: String, _ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        func number(_ name: String, _ range: ClosedRange<Int>, default value: Int) throws(APIError) -> Int {
            guard let text = request.queryParameter(name) else { return value }
            guard let number = Int(text), range.contains(number) else {
                throw .badRequest("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return number
        }
        var poll = LongPolls.Poll(
            user: user, after: UInt64(try number("after", 0...Int.max, default: 0)),
            limit: try number("limit", 1...config.inbox.max, default: min(100, config.inbox.max)),
            wait: try number("wait", 0...LongPolls.maxWait, default: 0), respond: respond)
        if poll.wait > 0 { waiters.watch(&poll) }
        self.poll(poll)
    }

    /// Answers `poll` now if anything is there (or it does not wait), else parks it until a store or its time.
    func poll(_ poll: LongPolls.Poll) {
        let call = SyncCall(uid: poll.user, after: poll.after, limit: poll.limit, nowSeconds: Posix.wallSeconds())
        store.run(call) { [self] result in
            switch result {
            case .success(let sync) where sync.messages.isEmpty && poll.wait > 0 && !waiters.expired(poll):
                return waiters.park(poll)
            case .success(let sync):
                poll.respond(Self.messagesReply(sync))
            case .failure(let error):
                poll.respond(HTTPResponse(Self.storageError(error)))
            }
            if poll.wait > 0 { waiters.finish(poll) }
        }
    }

    private static func messagesReply(_ sync: SyncResult) -> HTTPResponse {
        .json {
            $0.object {
                $0.key("messages")
                $0.array { writer in
                    for message in sync.messages {
                        writer.object {
                            $0.field("seq", message.seq)
                            $0.field("op", Int(message.op))
                            $0.field("ts", message.timestampMillis)
                            if (try? JSONParser.parse(message.payload)) != nil {
                                $0.key("payload")
                                $0.raw(message.payload)
                            } else {
                                $0.field("payload_b64", Base64.encode(message.payload))
                            }
                        }
                    }
                }
                $0.field("last_seq", sync.seq)
            }
        }
    }
}
