import PushCore
import PushPosix

/// What became of one push, as the pipeline hands it to the API that took it.
typealias PushOutcome = Result<PushReceipt, PushFailure>

/// A push the pipeline carried out.
enum PushReceipt {
    /// Stored for each of `users`, in order: its seq and its devices online (on any node).
    case stored(id: String, users: [String], seqs: [UInt64], online: [Int])
    /// Transient to users or devices: each user's devices online (all nodes when Redis answered, else this one's).
    case transient(id: String, online: [(String, Int)])
    /// A topic message or broadcast: connections reached here, and other nodes it was published to.
    case fanOut(id: String, delivered: Int, nodes: Int)
}

/// A stored push that was not (certainly) stored for every user.
enum PushFailure: Error {
    /// Redis did not store it for every user; `outcomes` says, per user, what it did (empty: nothing was tried).
    case notStored(id: String, users: [String], outcomes: [StoreOutcome], reason: String)
    /// The idempotency key was used before with a different body.
    case conflict(id: String)
}

/// What became of a stored push for one user.
enum StoreOutcome {
    /// Redis answered.
    case answered(StoreResult)
    /// Redis certainly did not run it (not connected, or refused before sending).
    case notStored
    /// Sent, and no answer came (connection lost or stalled): it may have been stored.
    case unknown
}
