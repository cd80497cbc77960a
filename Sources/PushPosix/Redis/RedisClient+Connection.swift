import CHiredis
import CLibev
import Logging

/// The connection's life: connect, the AUTH / SELECT / PING handshake, loss and reconnect with backoff, and the
/// stall check and heartbeat that run every loop tick.
extension RedisClient {
    func connect() {
        guard state == .waiting else { return }
        generation += 1
        phaseStartedAt = Posix.monotonicSeconds()
        // Note: hiredis resolves a host name with a blocking getaddrinfo; an address literal does not block.
        guard let context = redisAsyncConnect(url.host, Int32(url.port)) else {
            return lost(reason: "redisAsyncConnect: out of memory")
        }
        if context.pointee.err != 0 {
            let reason = Self.errorText(context)
            redisAsyncFree(context)
            return lost(reason: reason)
        }
        context.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        // `c` is the first member of redisAsyncContext. Keepalive finds a silently dead peer even while idle.
        _ = redisEnableKeepAlive(UnsafeMutableRawPointer(context).assumingMemoryBound(to: redisContext.self))
        _ = redisLibevAttach(loop.loop, context)
        _ = redisAsyncSetConnectCallback(context, redisClientConnected)
        _ = redisAsyncSetDisconnectCallback(context, redisClientDisconnected)
        self.context = context
        state = .connecting
    }

    /// hiredis's connect callback. Must not free the context: hiredis keeps using it when this returns.
    func connected(_ ac: UnsafeRawPointer, status: Int32) {
        guard let context, UnsafeRawPointer(context) == ac else { return }
        guard status == REDIS_OK else {
            // hiredis frees the context when this returns.
            self.context = nil
            return lost(reason: Self.errorText(context))
        }
        handshake(context)
    }

    /// AUTH and SELECT when the URL has them, then PING, pipelined; ready when the last reply is in and none was an
    /// error.
    private func handshake(_ context: UnsafeMutablePointer<redisAsyncContext>) {
        state = .handshaking
        phaseStartedAt = Posix.monotonicSeconds()
        var steps: [(name: String, args: [[UInt8]])] = []
        if let password = url.password {
            // `AUTH password` for the default user, `AUTH username password` for an ACL user (Redis 6+).
            let credentials = (url.username.map { [Array($0.utf8)] } ?? []) + [Array(password.utf8)]
            steps.append(("AUTH", [Array("AUTH".utf8)] + credentials))
        }
        if url.db != 0 {
            steps.append(("SELECT", [Array("SELECT".utf8), Array(String(url.db).utf8)]))
        }
        steps.append(("PING", [Array("PING".utf8)]))
        let generation = self.generation
        for (index, step) in steps.enumerated() {
            let isLast = index == steps.count - 1
            let queued = enqueue(context, step.args) { [weak self] result in
                guard let self, self.generation == generation, self.state == .handshaking else { return }
                switch result {
                case .success(.error(let message)):
                    self.drop(reason: "\(step.name) failed: \(message)", error: .disconnected)
                case .success:
                    if isLast { self.becameReady() }
                case .failure:
                    break  // The connection is gone and whoever noticed has scheduled the reconnect.
                }
            }
            // Cannot happen on a fresh connection; if it does, the handshake deadline in `tick` retries.
            guard queued else { return }
        }
    }

    private func becameReady() {
        state = .ready
        backoffAttempt = 0
        if let since = downSince {
            downSince = nil
            reconnects += 1
            let seconds = ((Posix.monotonicSeconds() - since) * 1000).rounded() / 1000
            logger.info("Redis connection back", metadata: ["url": "\(url)", "down_seconds": "\(seconds)"])
        } else {
            logger.info("Redis connected", metadata: ["url": "\(url)"])
        }
        subscribeConfirmationsPending = 0
        if let context, !subscriptions.isEmpty {
            subscribeConfirmationsPending = subscriptions.count
            sendSubscribe(context, Array(subscriptions.keys))
        }
        onReady?()
    }

    /// hiredis's disconnect callback: the context is being freed. Nothing to do if this client freed it itself or
    /// already learned of the loss from a reply callback.
    func disconnected(_ ac: UnsafeRawPointer, status: Int32) {
        guard let context, UnsafeRawPointer(context) == ac else { return }
        self.context = nil
        lost(reason: status == REDIS_OK ? "connection closed" : Self.errorText(context))
    }

    /// Closes the connection this client decided to give up on (timeout, handshake error). Every command in flight
    /// fails with `error`.
    private func drop(reason: String, error: RedisError) {
        guard let context else { return }
        self.context = nil
        lost(reason: reason)
        freeContext(context, error: error)
    }

    /// Frees a context that `self.context` no longer points to. Inside a hiredis callback hiredis defers the free
    /// until the callback returns; outside, the pending callbacks run (with NULL) before this returns.
    func freeContext(_ context: UnsafeMutablePointer<redisAsyncContext>, error: RedisError) {
        droppedContext = UnsafeMutableRawPointer(context)
        dropError = error
        redisAsyncFree(context)
    }

    /// The connection is gone (`context` is already nil): forget what was in flight, log once, reconnect later.
    func lost(reason: String) {
        let wasReady = state == .ready
        sendTimes.removeAll()
        confirmedChannels.removeAll()
        unsubscribesInFlight.removeAll()
        if downSince == nil {
            downSince = Posix.monotonicSeconds()
            logger.warning("Redis connection down", metadata: ["url": "\(url)", "reason": "\(reason)"])
        } else {
            // Every failed attempt while down: useful when debugging, noise otherwise.
            logger.debug("Redis reconnect attempt failed", metadata: ["reason": "\(reason)"])
        }
        if state != .stopped {
            state = .waiting
            scheduleReconnect()
        }
        if wasReady { onDown?() }
    }

    private func scheduleReconnect() {
        let ceiling = min(Self.maxBackoff, Self.initialBackoff * Double(1 << min(backoffAttempt, 16)))
        backoffAttempt += 1
        ev_timer_stop(loop.loop, reconnectTimer)
        clibev_timer_init(reconnectTimer, redisClientReconnectTimer, Double.random(in: 0...ceiling), 0)
        ev_timer_start(loop.loop, reconnectTimer)
    }

    func reconnectTimerFired() {
        connect()
    }

    /// Every loop tick (0.1 s): abandon a stalled connect, handshake or command; keep an idle connection checked.
    ///
    /// Only Redis's silence counts, not the loop's own delays. A loop busy for a long stretch (a worker running
    /// thousands of TLS handshakes in one iteration) could neither write the commands it queued nor read the replies
    /// that came, so the stall clock starts again once the loop is back (`loopBackAt`); and since libev runs this
    /// tick before the I/O callbacks of the same iteration, what the socket holds is read before a connection is
    /// called stalled.
    func tick() {
        let now = Posix.monotonicSeconds()
        if now - lastTickAt > Self.loopDelayAllowance { loopBackAt = now }
        lastTickAt = now
        switch state {
        case .connecting, .handshaking:
            if now - max(phaseStartedAt, loopBackAt) > commandTimeout {
                let phase = state == .connecting ? "connect" : "handshake"
                drop(reason: "\(phase) timed out after \(commandTimeout) s", error: .timeout)
            }
        case .ready:
            if let oldest = sendTimes.oldest, now - max(oldest, lastReplyAt, loopBackAt) > commandTimeout {
                if let context { redisAsyncHandleRead(context) }
                guard state == .ready, let oldest = sendTimes.oldest,
                    Posix.monotonicSeconds() - max(oldest, lastReplyAt, loopBackAt) > commandTimeout
                else { return }
                drop(reason: "no reply for \(commandTimeout) s, \(sendTimes.count) in flight", error: .timeout)
            } else if sendTimes.count == 0, now - lastSentAt >= heartbeatInterval, let context {
                heartbeat(context)
            }
        case .idle, .waiting, .stopped:
            break
        }
    }

    /// A command whose reply proves the connection alive. A subscribed hiredis context would lose a PING's reply
    /// (it comes back as an array it cannot route), so a subscriber re-subscribes to a channel it already has,
    /// which Redis confirms and changes nothing.
    private func heartbeat(_ context: UnsafeMutablePointer<redisAsyncContext>) {
        if let channel = subscriptions.keys.first {
            sendSubscribe(context, [channel])
        } else {
            _ = enqueue(context, [Array("PING".utf8)]) { _ in }
        }
    }

    static func errorText(_ context: UnsafeMutablePointer<redisAsyncContext>) -> String {
        guard context.pointee.err != 0, let text = context.pointee.errstr else { return "connection closed" }
        return String(cString: text)
    }
}
