import Glibc

/// Commands the master sent to workers and is waiting on: each finishes when every asked worker replied, died, or
/// the deadline passed, whichever comes first, with the replies it got.
final class WorkerRequests {
    typealias Replies = [pid_t: [String]]

    private struct Pending {
        var waiting: Set<pid_t>
        var replies: Replies = [:]
        let deadline: Double
        let done: (Replies) -> Void
    }

    private var pending: [Int: Pending] = [:]
    /// 0 is never used: it marks a command whose reply nobody waits for.
    private var nextID = 1

    /// Registers a request to `workers`; returns the id to send with the command.
    func start(waitingFor workers: Set<pid_t>, deadline: Double, done: @escaping (Replies) -> Void) -> Int {
        let id = nextID
        nextID += 1
        pending[id] = Pending(waiting: workers, deadline: deadline, done: done)
        return id
    }

    func received(id: Int, from worker: pid_t, lines: [String]) {
        guard var request = pending[id], request.waiting.remove(worker) != nil else { return }
        request.replies[worker] = lines
        finishOrKeep(id, request)
    }

    /// A worker exited: nothing more will come from it.
    func workerGone(_ worker: pid_t) {
        for (id, var request) in pending where request.waiting.remove(worker) != nil {
            finishOrKeep(id, request)
        }
    }

    /// Finishes the requests whose deadline passed, with what they have.
    func expire(now: Double) {
        for (id, request) in pending where request.deadline <= now {
            pending[id] = nil
            request.done(request.replies)
        }
    }

    private func finishOrKeep(_ id: Int, _ request: Pending) {
        if request.waiting.isEmpty {
            pending[id] = nil
            request.done(request.replies)
        } else {
            pending[id] = request
        }
    }
}
