import PushCore
import PushPosix

/// Opening the connections within the in-flight limit and the rate, their handshakes, and retries of the ones
/// the gateway refused with `reconnect: true`.
extension Receivers {
    /// Opens connections while the in-flight limit and the rate allow.
    func openMore() {
        guard started, !quitting, nextToOpen < plan.count else { return }
        var allowance = Int.max
        if plan.rate > 0 {
            let elapsed = Double(Posix.monotonicNanos() &- t0) / 1e9
            allowance = Int(plan.rate * elapsed) + 1 - nextToOpen
        }
        while nextToOpen < plan.count && handshaking < plan.inFlight && allowance > 0 {
            open(nextToOpen)
            nextToOpen += 1
            allowance -= 1
        }
    }

    private func open(_ index: Int) {
        let global = plan.first + index
        let source = plan.sources.isEmpty ? nil : plan.sources[global % plan.sources.count]
        do {
            let fd = try Posix.connect(to: destination, from: source).fd
            let connection = ReceiverConnection(owner: self, index: index, fd: fd, startedAt: Posix.monotonicNanos())
            guard loop.register(fd, connection, events: .write) else {
                Posix.close(fd)
                fail("descriptor \(fd) over the table")
                return
            }
            connections[index] = connection
            handshaking += 1
        } catch {
            fail(Sockets.describe(error))
        }
    }

    func fail(_ reason: String) {
        failed += 1
        failures[reason, default: 0] += 1
    }

    /// The AUTH body of connection `index`.
    func authBody(_ index: Int) -> [UInt8] {
        let global = plan.first + index
        var writer = JSONWriter()
        writer.object {
            $0.field("mid", plan.userPrefix + String(global))
            $0.field("key", "k" + String(global))
            $0.field("platform", "bench")
            if let lastSeq = plan.lastSeq { $0.field("last_seq", lastSeq) }
        }
        return writer.bytes
    }

    func authenticated(_ connection: ReceiverConnection, lastSeq: UInt64) {
        let now = Posix.monotonicNanos()
        handshaking -= 1
        online += 1
        connectLatency.record(nanos: now &- connection.startedAt)
        lastAuthAt = now
        if plan.replay {
            connection.target = lastSeq
            backlog += Int(lastSeq)
            if lastSeq == 0 { completed(connection, at: now) }
        }
        openMore()
        checkReady()
    }

    /// A connection closed. One refused during the handshake with DISCONNECT `reconnect: true` (the gateway could
    /// not reach Redis, say) tries again after `after_ms`, as a real client would, up to `maxRetries` times.
    func closed(_ connection: ReceiverConnection, wasOnline: Bool, reason: String, reconnectAfter: Int?) {
        if wasOnline {
            online -= 1
            guard !quitting else { return }
            unexpectedCloses += 1
            closeReasons[reason, default: 0] += 1
            return
        }
        handshaking -= 1
        let attempts = retries[connection.index, default: 0]
        if let reconnectAfter, !quitting, !readySent, attempts < Self.maxRetries {
            retries[connection.index] = attempts + 1
            retryCount += 1
            retryReasons[reason, default: 0] += 1
            retryQueue.append((connection.index, Posix.monotonicNanos() &+ UInt64(max(0, reconnectAfter)) * 1_000_000))
        } else {
            fail(reason)
        }
        openMore()
        checkReady()
    }

    /// Opens again the connections whose reconnect delay is over.
    func retryDue() {
        guard !retryQueue.isEmpty else { return }
        let now = Posix.monotonicNanos()
        var waiting: [(index: Int, at: UInt64)] = []
        for entry in retryQueue {
            if entry.at <= now {
                open(entry.index)
            } else {
                waiting.append(entry)
            }
        }
        retryQueue = waiting
        checkReady()
    }

    func checkReady() {
        guard started, !readySent, nextToOpen == plan.count, handshaking == 0, retryQueue.isEmpty else { return }
        readySent = true
        ParentLink.send {
            $0.field("type", "ready")
            $0.field("online", online)
            $0.field("failed", failed)
            $0.field("retries", retryCount)
            $0.key("retry_reasons")
            $0.object { writer in for (reason, count) in retryReasons { writer.field(reason, count) } }
            $0.key("failures")
            $0.object { writer in for (reason, count) in failures { writer.field(reason, count) } }
            $0.field("last_auth_ns", lastAuthAt)
            $0.key("connect")
            connectLatency.encode(into: &$0)
        }
    }
}
