import CHiredis
import Glibc
import PushCore

/// Commands on the wire: the argv scratch buffer handed to hiredis, failures delivered before the loop sleeps,
/// and replies and pub/sub messages coming back.
extension RedisClient {
    /// Hands one command to hiredis with its completion as privdata (retained here, released by the reply
    /// callback, which hiredis calls exactly once: with the reply, or with NULL when the context is freed).
    func enqueue(
        _ context: UnsafeMutablePointer<redisAsyncContext>, _ args: [[UInt8]], _ completion: @escaping Completion
    ) -> Bool {
        let command = Unmanaged.passRetained(PendingCommand(completion))
        guard write(context, args, callback: redisClientReply, privdata: command.toOpaque()) else {
            command.release()
            return false
        }
        let now = Posix.monotonicSeconds()
        sendTimes.append(now)
        lastSentAt = now
        return true
    }

    /// SUBSCRIBE with one persistent callback for the channels; each channel's confirmation counts as a reply in
    /// flight, so a stalled subscriber times out like any connection.
    func sendSubscribe(_ context: UnsafeMutablePointer<redisAsyncContext>, _ channels: [[UInt8]]) {
        guard !channels.isEmpty else { return }
        guard write(context, [Array("SUBSCRIBE".utf8)] + channels, callback: redisClientMessage, privdata: nil) else {
            return
        }
        let now = Posix.monotonicSeconds()
        for _ in channels { sendTimes.append(now) }
        lastSentAt = now
    }

    /// Copies the arguments into the scratch buffer and calls `redisAsyncCommandArgv`, which copies them again
    /// into hiredis's output buffer.
    func write(
        _ context: UnsafeMutablePointer<redisAsyncContext>, _ args: [[UInt8]], callback: RedisReplyFunction,
        privdata: UnsafeMutableRawPointer?
    ) -> Bool {
        reserveArguments(count: args.count, bytes: args.reduce(0) { $0 + $1.count })
        var offset = 0
        for (index, argument) in args.enumerated() {
            argument.withUnsafeBufferPointer { source in
                if let base = source.baseAddress { (argumentBytes + offset).update(from: base, count: source.count) }
            }
            argumentPointers[index] = UnsafeRawPointer(argumentBytes + offset).assumingMemoryBound(to: CChar.self)
            argumentLengths[index] = argument.count
            offset += argument.count
        }
        return redisAsyncCommandArgv(context, callback, privdata, Int32(args.count), argumentPointers, argumentLengths)
            == REDIS_OK
    }

    private func reserveArguments(count: Int, bytes: Int) {
        if count > argumentCapacity {
            argumentCapacity = max(count, argumentCapacity * 2)
            argumentPointers.deallocate()
            argumentLengths.deallocate()
            argumentPointers = .allocate(capacity: argumentCapacity)
            argumentLengths = .allocate(capacity: argumentCapacity)
        }
        if bytes > argumentBytesCapacity {
            argumentBytesCapacity = max(bytes, argumentBytesCapacity * 2)
            argumentBytes.deallocate()
            argumentBytes = .allocate(capacity: argumentBytesCapacity)
        }
    }

    func failLater(_ completion: @escaping Completion, _ error: RedisError) {
        errors += 1
        pendingFailures.append((completion, error))
    }

    func deliverPendingFailures() {
        // A completion may send again and fail again: deliver those too before the loop sleeps.
        while !pendingFailures.isEmpty {
            let failures = pendingFailures
            pendingFailures.removeAll()
            for (completion, error) in failures { completion(.failure(error)) }
        }
    }

    // MARK: - Replies (called by the C callbacks in RedisClient+Callbacks.swift)

    func replied(
        _ ac: UnsafeMutablePointer<redisAsyncContext>, _ reply: UnsafeMutableRawPointer?, _ completion: Completion
    ) {
        guard let reply else {
            errors += 1
            return completion(.failure(lostReplyError(ac)))
        }
        if context == ac, let sentAt = sendTimes.popOldest() {
            lastReplyAt = Posix.monotonicSeconds()
            let seconds = lastReplyAt - sentAt
            latencies.record(seconds)
            latencyHistogram.observe(seconds)
        }
        let value = RedisValue(reply: reply.assumingMemoryBound(to: redisReply.self))
        if case .error = value { errorReplies += 1 }
        completion(.success(value))
    }

    /// What a command gets when hiredis calls its callback with NULL, i.e. while it frees the context.
    private func lostReplyError(_ ac: UnsafeMutablePointer<redisAsyncContext>) -> RedisError {
        if context == ac {
            // hiredis is freeing the context after an I/O error, and this is the first callback it runs.
            context = nil
            lost(reason: Self.errorText(ac))
            return .disconnected
        }
        return UnsafeMutableRawPointer(ac) == droppedContext ? dropError : .disconnected
    }

    /// A pub/sub reply: a message, a subscribe confirmation, or NULL when the context is freed.
    func received(_ ac: UnsafeMutablePointer<redisAsyncContext>, _ reply: UnsafeMutableRawPointer?) {
        guard let reply else {
            if context == ac {
                context = nil
                lost(reason: Self.errorText(ac))
            }
            return
        }
        if context == ac { lastReplyAt = Posix.monotonicSeconds() }
        let message = reply.assumingMemoryBound(to: redisReply.self).pointee
        guard message.type == REDIS_REPLY_ARRAY, message.elements >= 3, let parts = message.element,
            let kind = parts[0], let channel = parts[1], let payload = parts[2]
        else { return }
        if kind.pointee.equals("message") {
            let name = channel.pointee.bytes
            subscriptions[name]?(name, payload.pointee.bytes)
        } else if kind.pointee.equals("subscribe") || kind.pointee.equals("unsubscribe"), context == ac,
            let sentAt = sendTimes.popOldest()
        {
            latencies.record(Posix.monotonicSeconds() - sentAt)
            confirmed(channel.pointee.bytes, subscribed: kind.pointee.equals("subscribe"))
            if kind.pointee.equals("subscribe"), subscribeConfirmationsPending > 0 {
                subscribeConfirmationsPending -= 1
                if subscribeConfirmationsPending == 0 { onSubscribed?() }
            }
        }
    }

    /// Redis confirmed a SUBSCRIBE or an UNSUBSCRIBE of `channel`. A SUBSCRIBE confirmed while an UNSUBSCRIBE of
    /// the channel is still on its way was undone by it; one of a channel unsubscribed since does not count.
    private func confirmed(_ channel: [UInt8], subscribed: Bool) {
        if subscribed {
            if unsubscribesInFlight[channel] == nil, subscriptions[channel] != nil { confirmedChannels.insert(channel) }
        } else if let count = unsubscribesInFlight[channel] {
            unsubscribesInFlight[channel] = count > 1 ? count - 1 : nil
        }
    }
}

/// A command's completion, boxed so it can travel through hiredis as privdata.
final class PendingCommand {
    let completion: RedisClient.Completion
    init(_ completion: @escaping RedisClient.Completion) { self.completion = completion }
}
