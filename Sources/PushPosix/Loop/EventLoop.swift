import CLibev
import Glibc
import PushCore

/// The readiness a descriptor is watched for, or that fired. The loop alone converts it to libev's bits.
///
/// Inlinable because it is a byte used on every event by the gateway and the bench, in other modules: a `static
/// let` there would be an addressor call per use instead of a constant.
public struct IOEvents: OptionSet, Sendable {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    @inlinable public static var read: IOEvents { IOEvents(rawValue: 1) }
    @inlinable public static var write: IOEvents { IOEvents(rawValue: 2) }

    /// libev's `EV_READ`/`EV_WRITE` bits.
    fileprivate var libev: Int32 {
        (contains(.read) ? Int32(EV_READ) : 0) | (contains(.write) ? Int32(EV_WRITE) : 0)
    }

    fileprivate init(libev bits: Int32) {
        self.init(rawValue: (bits & Int32(EV_READ) != 0 ? 1 : 0) | (bits & Int32(EV_WRITE) != 0 ? 2 : 0))
    }
}

/// Something that owns a descriptor on the loop: a listener or a connection.
public protocol LoopHandler: AnyObject {
    /// Tells stale timer entries apart from a newer handler that reused the same descriptor.
    var generation: UInt32 { get }
    /// The tick at which `timedOut()` is due (checked lazily, see `TimerWheel`).
    var deadline: UInt32 { get }
    /// The descriptor became readable and/or writable.
    func handleEvents(_ events: IOEvents)
    /// The deadline passed.
    func timedOut()
}

/// A handler that is never on the timer wheel (the bench's connections, pipes): no generation, no deadline.
extension LoopHandler {
    public var generation: UInt32 { 0 }
    public var deadline: UInt32 { .max }
    public func timedOut() {}
}

/// One libev loop (epoll backend) and everything a worker hangs on it: one `ev_io` per descriptor in a table
/// indexed by fd that never moves, one timer wheel for every connection deadline, and one `ev_prepare` hook
/// that flushes queued output and closes the descriptors of connections closed meanwhile before the loop sleeps. Single-threaded: nothing here is touched from elsewhere.
/// The gateway's workers and the bench's processes each run one.
public final class EventLoop {
    /// Tick length of the timer wheel: deadlines are accurate to this.
    public static let tickSeconds = 0.1

    /// The libev loop, for the engine's own watchers (timers, the Redis adapter): nothing above the engine sees libev.
    let loop: OpaquePointer
    /// Descriptors this loop can hold: the soft RLIMIT_NOFILE.
    public let capacity: Int
    private let watchers: UnsafeMutablePointer<ev_io>
    private var handlers: [LoopHandler?]
    private var wheel: TimerWheel<UInt64>
    /// Scratch list of wheel entries due this tick.
    private var due: [UInt64] = []
    /// `Posix.monotonicNanos()` when the loop started.
    private let startNanos: UInt64
    /// Ticks since this loop started, read from the monotonic clock on each tick: a read or a deadline never
    /// costs a clock call, and is accurate to a tick like the wheel.
    public private(set) var now: UInt32 = 0
    private var nextGeneration: UInt32 = 0

    private let prepareWatcher = UnsafeMutablePointer<ev_prepare>.allocate(capacity: 1)
    private let tickWatcher = UnsafeMutablePointer<ev_timer>.allocate(capacity: 1)
    /// Active while queued output waits for the next slice: the loop polls without sleeping.
    private let idleWatcher = UnsafeMutablePointer<ev_idle>.allocate(capacity: 1)
    private var signalWatchers: [UnsafeMutablePointer<ev_signal>] = []
    private var signalHandlers: [Int32: () -> Void] = [:]

    /// Connections with output queued, in the order they queued it; `flushHead` is the next one to flush.
    var pendingFlush: [SocketConnection] = []
    var flushHead = 0
    /// Connections flushed whole every iteration, ahead of the sliced ones (`SocketConnection.flushesFirst`).
    var pendingFirst: [SocketConnection] = []
    /// Connections closed since the last `prepare`, whose descriptors it closes (`closeLater`).
    private var pendingClose: [SocketConnection] = []
    /// Times a loop iteration left queued output for the next one (a fan-out larger than one slice).
    public internal(set) var flushSlicesCut = 0
    /// TLS ClientHellos answered in this iteration, against `clientHellosPerIteration`.
    var clientHellosAnswered = 0
    /// Connections whose ClientHello waits for a later iteration, oldest first from `deferredHead`.
    var deferredHandshakes: [SocketConnection] = []
    var deferredHead = 0
    /// ClientHellos put off to a later iteration (a storm larger than one iteration's budget).
    public internal(set) var handshakesDeferred = 0
    /// Bytes waiting in the output queues of every connection on this loop (the write-queue figure of `stats`).
    public internal(set) var queuedOutputBytes = 0
    /// One read buffer for every connection of the loop: reads land here and only a partial frame's tail is
    /// copied out.
    public let scratch: UnsafeMutableRawBufferPointer
    /// The TLS session of each connection accepted on a TLS listener, by descriptor: a side table, so that a plain
    /// connection's object holds no field for it (see `SocketConnection`).
    var tlsSessions: [Int32: TLSSession] = [:]
    /// Repeating timers made by `every`. Each holds the loop, so a loop that has some lives until the process ends
    /// (a bench process's loop does anyway).
    private var timers: [LoopTimer] = []

    /// Run before the loop sleeps, just before queued output is flushed.
    private var beforeSleep: [() -> Void] = []
    /// Run on every tick (resuming paused listeners, periodic work).
    private var onTick: [() -> Void] = []

    /// A loop for `capacity` descriptors (0 .. capacity-1) whose connections share `scratchBytes` of read buffer.
    public init(capacity: Int, scratchBytes: Int = 64 * 1024) throws {
        guard let loop = ev_loop_new(UInt32(EVBACKEND_EPOLL)) else {
            throw SystemError(call: "ev_loop_new(EVBACKEND_EPOLL)", errno: errno)
        }
        self.loop = loop
        self.capacity = capacity
        watchers = .allocate(capacity: capacity)
        handlers = Array(repeating: nil, count: capacity)
        scratch = .allocate(byteCount: scratchBytes, alignment: 16)
        startNanos = Posix.monotonicNanos()
        wheel = TimerWheel(slotCount: 4096)

        ev_set_userdata(loop, Unmanaged.passUnretained(self).toOpaque())
        clibev_prepare_init(prepareWatcher, eventLoopPrepare)
        ev_prepare_start(loop, prepareWatcher)
        clibev_timer_init(tickWatcher, eventLoopTick, Self.tickSeconds, Self.tickSeconds)
        ev_timer_start(loop, tickWatcher)
        clibev_idle_init(idleWatcher, eventLoopIdle)
    }

    deinit {
        ev_loop_destroy(loop)
        watchers.deallocate()
        prepareWatcher.deallocate()
        tickWatcher.deallocate()
        idleWatcher.deallocate()
        signalWatchers.forEach { $0.deallocate() }
        scratch.deallocate()
    }

    /// Runs until `stop()`.
    public func run() {
        ev_run(loop, 0)
        closePending()
    }

    public func stop() {
        ev_break(loop, Int32(EVBREAK_ALL))
    }

    // MARK: - Descriptors

    /// A generation number for a new handler (never 0).
    public func makeGeneration() -> UInt32 {
        nextGeneration &+= 1
        // 0 is the generation of handlers that are never on the wheel (`LoopHandler`'s default): never handed out,
        // so a stale wheel entry cannot match one of them after the counter wraps.
        if nextGeneration == 0 { nextGeneration = 1 }
        return nextGeneration
    }

    /// Watches `fd` for `events` on behalf of `handler`. The caller closes `fd` itself if this fails.
    @discardableResult
    public func register(_ fd: Int32, _ handler: LoopHandler, events: IOEvents) -> Bool {
        guard fd >= 0, Int(fd) < capacity, handlers[Int(fd)] == nil else { return false }
        handlers[Int(fd)] = handler
        let watcher = watchers + Int(fd)
        clibev_io_init(watcher, eventLoopIO, fd, events.libev)
        if !events.isEmpty { ev_io_start(loop, watcher) }
        return true
    }

    /// Changes the events watched on `fd` (none stops watching without forgetting the handler).
    public func setEvents(_ fd: Int32, _ events: IOEvents) {
        let watcher = watchers + Int(fd)
        let bits = events.libev
        let current = watcher.pointee.events & Int32(EV_READ | EV_WRITE)
        let active = clibev_is_active(UnsafeRawPointer(watcher).assumingMemoryBound(to: ev_watcher.self)) != 0
        guard current != bits || active != (bits != 0) else { return }
        if active { ev_io_stop(loop, watcher) }
        clibev_io_set(watcher, fd, bits)
        if bits != 0 { ev_io_start(loop, watcher) }
    }

    /// Closes `connection`'s descriptor (unregistered already) after the current callback or fan-out, in
    /// `prepare`: until then its number stays taken, so no connection accepted meanwhile can get it while a stale
    /// reference to the closed one is on the stack.
    func closeLater(_ connection: SocketConnection) {
        pendingClose.append(connection)
    }

    /// Closes the descriptors `closeLater` collected; a `didClose` that closes others gets them closed too.
    private func closePending() {
        while !pendingClose.isEmpty {
            var closing: [SocketConnection] = []
            swap(&closing, &pendingClose)
            for connection in closing { connection.descriptorClosed() }
            closing.removeAll(keepingCapacity: true)
            if pendingClose.isEmpty { pendingClose = closing }
        }
    }

    /// Stops watching `fd` and forgets its handler; the caller closes the descriptor.
    public func unregister(_ fd: Int32) {
        guard fd >= 0, Int(fd) < capacity, handlers[Int(fd)] != nil else { return }
        ev_io_stop(loop, watchers + Int(fd))
        handlers[Int(fd)] = nil
    }

    /// Calls `fd`'s handler for `.read` again in this loop iteration without waiting for readiness: for input a
    /// library holds already (decrypted TLS records), which the descriptor's readiness does not show.
    func feedRead(_ fd: Int32) {
        guard fd >= 0, Int(fd) < capacity, handlers[Int(fd)] != nil else { return }
        ev_feed_event(loop, watchers + Int(fd), Int32(EV_READ))
    }

    fileprivate func dispatch(_ fd: Int32, _ events: Int32) {
        handlers[Int(fd)]?.handleEvents(IOEvents(libev: events))
    }

    // MARK: - Time

    /// Converts a duration to ticks, rounding up so a timeout never fires early.
    public static func ticks(_ seconds: Double) -> UInt32 {
        UInt32(clamping: Int((seconds / tickSeconds).rounded(.up)))
    }

    /// Puts `handler` (registered on `fd`) on the timer wheel at its current `deadline`. Call once per
    /// handler: after it fires, the loop reschedules it itself while the handler's deadline is in the future.
    public func scheduleTimeout(_ fd: Int32, _ handler: LoopHandler) {
        assert(handler.generation != 0, "a handler on the timer wheel needs a generation from makeGeneration()")
        wheel.schedule(UInt64(UInt32(bitPattern: fd)) << 32 | UInt64(handler.generation), at: UInt64(handler.deadline))
    }

    fileprivate func tick() {
        now = UInt32(clamping: (Posix.monotonicNanos() &- startNanos) / UInt64(Self.tickSeconds * 1e9))
        wheel.advance(to: UInt64(now), into: &due)
        for entry in due {
            let fd = Int(entry >> 32)
            guard let handler = handlers[fd], handler.generation == UInt32(truncatingIfNeeded: entry) else { continue }
            if handler.deadline <= now {
                handler.timedOut()
            } else {
                wheel.schedule(entry, at: UInt64(handler.deadline))
            }
        }
        due.removeAll(keepingCapacity: due.count <= 4096)
        onTick.forEach { $0() }
    }

    // MARK: - Hooks

    public func addBeforeSleep(_ hook: @escaping () -> Void) { beforeSleep.append(hook) }

    public func addTick(_ hook: @escaping () -> Void) { onTick.append(hook) }

    /// Calls `action` every `seconds` (first after `seconds`) for as long as the loop lives.
    public func every(_ seconds: Double, _ action: @escaping () -> Void) {
        let timer = LoopTimer(loop: self, action)
        timer.start(after: seconds, repeat: seconds)
        timers.append(timer)
    }

    fileprivate func prepare() {
        runDeferredHandshakes()
        beforeSleep.forEach { $0() }
        flushPending()
        closePending()
        // A `didClose` that queued output: it goes out next iteration, without sleeping first.
        if !pendingFirst.isEmpty || flushHead < pendingFlush.count || deferredHead < deferredHandshakes.count {
            stayAwake(true)
        }
    }

    /// While `awake`, the loop polls for events without sleeping, so `prepare` comes round again at once.
    public func stayAwake(_ awake: Bool) {
        guard (clibev_is_active(UnsafeRawPointer(idleWatcher).assumingMemoryBound(to: ev_watcher.self)) != 0) != awake
        else { return }
        if awake { ev_idle_start(loop, idleWatcher) } else { ev_idle_stop(loop, idleWatcher) }
    }

    /// Calls `handler` on the loop when `signal` arrives (the signal handler itself only sets a flag).
    public func onSignal(_ signal: Int32, _ handler: @escaping () -> Void) {
        let watcher = UnsafeMutablePointer<ev_signal>.allocate(capacity: 1)
        clibev_signal_init(watcher, eventLoopSignal, signal)
        ev_signal_start(loop, watcher)
        signalWatchers.append(watcher)
        signalHandlers[signal] = handler
    }

    fileprivate func signalArrived(_ signal: Int32) { signalHandlers[signal]?() }
}

// libev calls these C functions; the loop comes back from its userdata.

private func owner(_ loop: OpaquePointer?) -> EventLoop {
    Unmanaged<EventLoop>.fromOpaque(ev_userdata(loop)!).takeUnretainedValue()
}

private func eventLoopIO(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_io>?, _ events: Int32) {
    owner(loop).dispatch(watcher!.pointee.fd, events)
}

private func eventLoopPrepare(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_prepare>?, _ events: Int32) {
    owner(loop).prepare()
}

private func eventLoopTick(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_timer>?, _ events: Int32) {
    owner(loop).tick()
}

// Nothing to do: an active idle watcher only keeps the loop from sleeping while output waits (`stayAwake`).
private func eventLoopIdle(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_idle>?, _ events: Int32) {}

private func eventLoopSignal(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_signal>?, _ events: Int32) {
    owner(loop).signalArrived(watcher!.pointee.signum)
}
