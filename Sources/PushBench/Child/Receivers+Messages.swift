import PushCore

/// Recording each application message: latency, seq order, fan-out spread, replay completion.
extension Receivers {
    /// An application message (op ≥ 1000) arrived on `connection`.
    @inline(__always)
    func message(_ connection: ReceiverConnection, seq: UInt32, body: UnsafeRawBufferPointer) {
        delivered += 1
        if firstDeliveryAt == 0 { firstDeliveryAt = now }
        lastDeliveryAt = now
        if let sent = ByteScan.member("\"t\":", in: body), sent <= now {
            latency.record(nanos: now - sent)
            if plan.messages > 0, let k = ByteScan.member("\"k\":", in: body), k < UInt64(plan.messages) {
                let index = Int(k)
                fanCount[index] += 1
                fanFirst[index] = min(fanFirst[index], now - sent)
                fanLast[index] = max(fanLast[index], now - sent)
            }
        }
        guard seq > 0 else { return }
        // Stored messages: strictly increasing, no gaps, once the first one (or last_seq) fixed the start.
        if connection.lastSeq > 0 || plan.lastSeq != nil {
            let expected = connection.lastSeq &+ 1
            if seq < expected {
                duplicates += 1
            } else if seq > expected {
                gaps += 1
            }
        }
        guard seq > connection.lastSeq else { return }
        connection.lastSeq = seq
        if plan.ackInterval > 0 && !connection.ackQueued {
            connection.ackQueued = true
            ackQueue.append((connection.index, now))
        }
        if plan.replay && !connection.complete && UInt64(seq) >= connection.target {
            completed(connection, at: now)
        }
    }

    func completed(_ connection: ReceiverConnection, at now: UInt64) {
        connection.complete = true
        complete += 1
        completion.record(nanos: now &- t0)
        lastCompletionAt = now
    }
}
