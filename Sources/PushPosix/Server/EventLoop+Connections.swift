import Glibc
import PushCore

// How the loop takes accepted sockets and flushes the output of its connections (SocketConnection.swift).
extension EventLoop {
    /// Takes a freshly accepted socket: no Nagle delay (output is batched per loop iteration already), watched
    /// for reads, on the timer wheel. Closes it and returns false when the descriptor table has no room.
    /// With `tls`, the connection talks TLS from its first byte: the handshake starts when the ClientHello comes, and
    /// must be done within the context's `handshakeTicks`.
    public func adopt(_ fd: Int32, _ connection: SocketConnection, tls: TLSContext? = nil) -> Bool {
        try? Posix.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        guard register(fd, connection, events: .read) else {
            Posix.close(fd)
            return false
        }
        if let tls {
            guard let session = TLSSession(context: tls, fd: fd) else {
                unregister(fd)
                Posix.close(fd)
                return false
            }
            tlsSessions[fd] = session
            connection.isTLS = true
        }
        scheduleTimeout(fd, connection)
        return true
    }

    /// Most connections flushed per loop iteration. A fan-out to 20,000 connections is 20,000 writes: done in
    /// one go it would stall the loop for a good part of a second; in slices, the loop reads (heartbeats, other
    /// requests, Redis replies) between them. Each connection's output stays in order: it is one queue.
    public static let flushSlice = 1024

    /// Most ClientHellos answered per loop iteration. Answering one costs the worker a few hundred microseconds
    /// (key exchange and signature): 10,000 devices reconnecting at once would otherwise hold one iteration for
    /// seconds, with every heartbeat, request and Redis reply waiting behind it. A connection over the budget stops
    /// being watched and waits in a queue, oldest first, for the next iterations (its handshake timeout runs on).
    /// The later, cheap steps of a handshake already answered are not counted and never wait.
    public static let clientHellosPerIteration = 64

    /// Whether a ClientHello may be answered now; counts it if so.
    func takeClientHello() -> Bool {
        guard clientHellosAnswered < Self.clientHellosPerIteration else { return false }
        clientHellosAnswered += 1
        return true
    }

    /// Puts off answering `connection`'s ClientHello to a later iteration.
    func deferHandshake(_ connection: SocketConnection) {
        setEvents(connection.fd, [])
        deferredHandshakes.append(connection)
        handshakesDeferred += 1
    }

    /// A new iteration's budget, first for the handshakes put off (in `prepare`, so the oldest go before any that
    /// are read in the next iteration).
    func runDeferredHandshakes() {
        clientHellosAnswered = 0
        while deferredHead < deferredHandshakes.count, takeClientHello() {
            let connection = deferredHandshakes[deferredHead]
            deferredHead += 1
            connection.resumeHandshake()
        }
        if deferredHead == deferredHandshakes.count {
            if deferredHead > 0 { deferredHandshakes.removeAll(keepingCapacity: deferredHead <= 4096) }
            deferredHead = 0
        } else if deferredHead >= 4096 {
            deferredHandshakes.removeSubrange(..<deferredHead)
            deferredHead = 0
        }
    }

    /// Queues `connection` to be flushed before the loop sleeps.
    func scheduleFlush(_ connection: SocketConnection) {
        if connection.flushesFirst {
            pendingFirst.append(connection)
        } else {
            pendingFlush.append(connection)
        }
    }

    /// Flushes the connections that go first, then queued connections, at most `flushSlice` of them; runs from
    /// the `ev_prepare` hook, and keeps the loop from sleeping while some are left, so the next iteration goes on
    /// with them after polling.
    func flushPending() {
        // A flush may queue more for the same connections (an HTTP connection parses the requests it held back
        // once its answers went out): go on until none is left, as the loop would not wake for them.
        while !pendingFirst.isEmpty {
            var first: [SocketConnection] = []
            swap(&first, &pendingFirst)
            for connection in first where connection.queuedForFlush { connection.flush() }
            first.removeAll(keepingCapacity: true)
            if pendingFirst.isEmpty { pendingFirst = first }
        }
        guard flushHead < pendingFlush.count else { return }
        let end = min(pendingFlush.count, flushHead + Self.flushSlice)
        while flushHead < end {
            let connection = pendingFlush[flushHead]
            flushHead += 1
            if connection.queuedForFlush { connection.flush() }
        }
        if flushHead == pendingFlush.count {
            pendingFlush.removeAll(keepingCapacity: pendingFlush.count <= 4 * Self.flushSlice)
            flushHead = 0
            stayAwake(false)
        } else {
            if flushHead >= 4 * Self.flushSlice {
                pendingFlush.removeSubrange(..<flushHead)
                flushHead = 0
            }
            flushSlicesCut += 1
            stayAwake(true)
        }
    }
}
