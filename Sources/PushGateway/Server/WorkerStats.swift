import PushCore

/// Counters of one worker, read by `/healthz`, the logs and (later) the admin socket and `/metrics`.
final class WorkerStats {
    var accepted = 0
    var authenticated = 0
    var framesIn = 0
    var delivered = 0
    var pushes = 0
    var gapFills = 0
    var stored = 0
    var httpRequests = 0
    private(set) var closes: [CloseReason: Int] = [:]

    func closed(_ reason: CloseReason) {
        closes[reason, default: 0] += 1
    }
}
