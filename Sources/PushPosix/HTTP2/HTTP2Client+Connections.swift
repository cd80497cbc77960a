import Logging
import PushCore

/// The client's connections: made when requests wait, replaced after GOAWAY or a loss, backoff while attempts fail;
/// the service that runs before the loop sleeps (open streams for queued requests, write, deliver completions) and
/// the tick that checks deadlines.
extension HTTP2Client {
    /// Before the loop sleeps: free retired connections, connect if requests wait, open streams for them, write what
    /// nghttp2 has, close drained connections, deliver completions; again while completions ran (they may have made
    /// requests), a bounded number of rounds (the rest waits for the next iteration).
    func service() {
        retired.removeAll()
        for _ in 0..<64 {
            mergeRetries()
            connectIfNeeded()
            openStreams()
            for connection in connections { connection.pump() }
            closeDrained()
            guard !completions.isEmpty else { return }
            deliver()
        }
    }

    /// Opens streams on the active connection for queued requests, oldest first, while it has room.
    private func openStreams() {
        guard let active, readyActive else { return }
        while queueHead < queue.count, active.canOpenStream {
            let exchange = queue[queueHead]
            queueHead += 1
            active.open(exchange)
        }
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: queue.count <= 1024)
            queueHead = 0
        } else if queueHead >= 1024 {
            queue.removeSubrange(..<queueHead)
            queueHead = 0
        }
    }

    /// Closes connections after GOAWAY once their last stream is done.
    private func closeDrained() {
        guard draining.contains(where: { $0.streams.isEmpty }) else { return }
        for connection in draining where connection.streams.isEmpty {
            connection.shutdown()
            retired.append(connection)
        }
        draining.removeAll { $0.isClosed }
    }

    // MARK: - Connecting

    /// Starts a connection when requests wait and none is active, unless the backoff says later (its timer then
    /// wakes the loop).
    private func connectIfNeeded() {
        guard !isClosed, active == nil, queued > 0 else { return }
        let now = Posix.monotonicSeconds()
        guard now >= nextAttemptAt else {
            if !reconnectTimer.isActive { reconnectTimer.start(after: nextAttemptAt - now) }
            return
        }
        connectionSerial += 1
        let address: SocketAddress
        do {
            let addresses = try Posix.resolve(host: options.address ?? host, port: port)
            // Each attempt takes the next address, so one that does not answer is not the only one tried.
            address = addresses[(connectionSerial - 1) % addresses.count]
        } catch {
            return attemptFailed(HTTP2Error(.connectFailed, "\(error)"))
        }
        do {
            active = try HTTP2Connection(client: self, serial: connectionSerial, address: address)
            logger.debug("HTTP/2 connecting", metadata: ["address": "\(address)", "connection": "\(connectionSerial)"])
        } catch {
            attemptFailed(HTTP2Error(.connectFailed, "\(error)"))
        }
    }

    /// An attempt failed before the connection was ready: the queued requests fail with its reason (never sent),
    /// and the next attempt waits for the backoff.
    private func attemptFailed(_ error: HTTP2Error) {
        let now = Posix.monotonicSeconds()
        if downSince == nil {
            downSince = now
            logger.warning("HTTP/2 connection failed", metadata: ["reason": "\(error)"])
        } else {
            logger.debug("HTTP/2 connection attempt failed", metadata: ["reason": "\(error)"])
        }
        failQueued(error)
        let ceiling = min(Self.maxBackoff, Self.initialBackoff * Double(1 << min(backoffAttempt, 16)))
        backoffAttempt += 1
        nextAttemptAt = now + Double.random(in: 0...ceiling)
    }

    /// The active connection got the server's SETTINGS: streams can be opened on it.
    func connectionReady(_ connection: HTTP2Connection) {
        guard connection === active else { return }
        readyActive = true
        backoffAttempt = 0
        if wasEverReady { reconnects += 1 }
        wasEverReady = true
        var metadata: Logger.Metadata = [
            "address": "\(connection.socket.address)", "connection": "\(connection.serial)",
            "max_streams": "\(connection.maxStreams)",
        ]
        if let since = downSince {
            metadata["down_seconds"] = "\(((Posix.monotonicSeconds() - since) * 1000).rounded() / 1000)"
            downSince = nil
        }
        logger.info("HTTP/2 connected", metadata: metadata)
    }

    /// A connection takes no new streams (GOAWAY): it finishes its own, and a new one takes the queue.
    func connectionGoingAway(_ connection: HTTP2Connection, detail: String) {
        logger.info(
            "HTTP/2 connection going away", metadata: ["connection": "\(connection.serial)", "detail": "\(detail)"])
        guard connection === active else { return }
        active = nil
        readyActive = false
        draining.append(connection)
    }

    /// A connection failed. Its requests in flight fail with `error` when their HEADERS went out, or go back in the
    /// queue when they did not. One that failed before it was ready fails the queue and backs off; the active one
    /// lost after is replaced within the first backoff step (0–100 ms: a server that drops every connection once
    /// ready is not hammered). One that was draining after GOAWAY is not replaced: a new one is there already.
    func connectionEnded(_ connection: HTTP2Connection, error: HTTP2Error, wasReady: Bool) {
        let wasActive = connection === active
        if wasActive {
            active = nil
            readyActive = false
        } else {
            draining.removeAll { $0 === connection }
        }
        retired.append(connection)
        let unfinished = connection.streams.values.filter { !$0.finished }.sorted { $0.sequence < $1.sequence }
        connection.streams.removeAll()
        for exchange in unfinished {
            exchange.finished = true
            if exchange.headersSent {
                complete(exchange, .failure(error.sent(true)))
            } else {
                retry(exchange)
            }
        }
        guard wasReady else { return attemptFailed(error) }
        let metadata: Logger.Metadata = [
            "connection": "\(connection.serial)", "reason": "\(error.detail)", "in_flight": "\(unfinished.count)",
        ]
        guard wasActive else {
            // The server closing a connection it sent GOAWAY on is the usual end of it.
            if unfinished.isEmpty {
                logger.debug("HTTP/2 connection closed after GOAWAY", metadata: metadata)
            } else {
                logger.warning("HTTP/2 connection lost after GOAWAY", metadata: metadata)
            }
            return
        }
        logger.warning("HTTP/2 connection lost", metadata: metadata)
        nextAttemptAt = Posix.monotonicSeconds() + Double.random(in: 0...Self.initialBackoff)
    }

    // MARK: - Deadlines

    /// Every loop tick (0.1 s): queued requests past their deadline fail (never sent); each connection checks its
    /// connect timeout and its streams' deadlines.
    func tick() {
        let now = Posix.monotonicSeconds()
        mergeRetries()
        if queue[queueHead...].contains(where: { $0.deadline <= now }) {
            let waiting = queue[queueHead...]
            queue = waiting.filter { $0.deadline > now }
            queueHead = 0
            for exchange in waiting where exchange.deadline <= now {
                complete(exchange, .failure(HTTP2Error(.timeout, "no stream within the timeout")))
            }
        }
        for connection in connections { connection.tick(now: now) }
    }
}
