import PushCore
import PushPosix

/// `POST /v1/push` and `POST /v1/push/batch` (SPEC §3): the request parsed, the push handed to the pipeline, its
/// receipt written out.
extension PushAPI {
    func push(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        try requireJSON(request)
        pipeline.push(try PushRequest(body: request.body)) { outcome in
            switch outcome {
            case .success(let receipt): respond(HTTPResponse(body: Self.body(receipt)))
            case .failure(let failure): respond(HTTPResponse(Self.error(failure)))
            }
        }
    }

    func batch(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        try requireJSON(request)
        let batch = try PushBatch(body: request.body)
        var outcomes = [Result<[UInt8], APIError>?](repeating: nil, count: batch.items.count)
        var remaining = batch.items.count
        for (index, item) in batch.items.enumerated() {
            let finish: (Result<[UInt8], APIError>) -> Void = { outcome in
                outcomes[index] = outcome
                remaining -= 1
                guard remaining == 0 else { return }
                respond(.json {
                    $0.object {
                        $0.key("results")
                        $0.array { writer in
                            for outcome in outcomes {
                                switch outcome! {
                                case .success(let body): writer.raw(body)
                                case .failure(let error): writer.raw(error.bodyWithStatus)
                                }
                            }
                        }
                    }
                })
            }
            switch item {
            case .success(let push): pipeline.push(push) { finish($0.map(Self.body).mapError(Self.error)) }
            case .failure(let error): finish(.failure(error))
            }
        }
    }

    /// The 200 body of a push.
    static func body(_ receipt: PushReceipt) -> [UInt8] {
        var writer = JSONWriter()
        switch receipt {
        case .stored(let id, let users, let seqs, let online):
            writer.object {
                $0.field("id", id)
                $0.key("seqs")
                $0.object { writer in for (user, seq) in zip(users, seqs) { writer.field(user, seq) } }
                $0.key("online")
                $0.object { writer in for (user, count) in zip(users, online) { writer.field(user, count) } }
            }
        case .transient(let id, let online):
            writer.object {
                $0.field("id", id)
                $0.key("seqs")
                $0.object { _ in }
                $0.key("online")
                $0.object { writer in for (user, count) in online { writer.field(user, count) } }
            }
        case .fanOut(let id, let delivered, let nodes):
            writer.object {
                $0.field("id", id)
                $0.field("delivered", delivered)
                $0.field("nodes", nodes)
            }
        }
        return writer.bytes
    }

    static func error(_ failure: PushFailure) -> APIError {
        switch failure {
        case .conflict(let id): .conflict("id \(id) was already used for a different push")
        case .notStored(let id, let users, let outcomes, let reason):
            notStored(id: id, users: users, outcomes: outcomes, reason)
        }
    }

    /// The 503 of a stored push that Redis did not (certainly) store for every user. Its body says which:
    /// `"stored"` is `"none"` (nothing stored: retrying is safe with or without the id), `"partial"` (stored for
    /// the users in `seqs`, certainly not for the others) or `"unknown"` (some user's store was sent and never
    /// answered: it may have been stored); `id` is the key to retry with, which stores the rest exactly once.
    private static func notStored(id: String, users: [String], outcomes: [StoreOutcome], _ reason: String) -> APIError {
        var stored: [(String, UInt64)] = []
        var unknown: [String] = []
        for (user, outcome) in zip(users, outcomes) {
            switch outcome {
            case .answered(let result): if let seq = result.seq { stored.append((user, seq)) }
            case .unknown: unknown.append(user)
            case .notStored: break
            }
        }
        let state = !unknown.isEmpty ? "unknown" : stored.isEmpty ? "none" : "partial"
        let summary = switch state {
        case "unknown": "it may have been stored for \(unknown.count) of \(users.count) users"
        case "partial": "stored for \(stored.count) of \(users.count) users, not for the others"
        default: "nothing was stored"
        }
        var error = APIError.unavailable("\(reason): \(summary); retry with id \(id) to store it exactly once")
        var details = JSONWriter()
        details.object {
            $0.field("id", id)
            $0.field("stored", state)
            $0.key("seqs")
            $0.object { writer in for (user, seq) in stored { writer.field(user, seq) } }
        }
        error.details = Array(details.bytes.dropFirst().dropLast())
        return error
    }
}
