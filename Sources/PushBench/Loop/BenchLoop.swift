import CLibev
import Glibc

/// Something that owns a descriptor on a `BenchLoop`.
protocol IOHandler: AnyObject {
    /// `EV_READ` and/or `EV_WRITE` fired.
    func handleEvents(_ events: Int32)
}

/// One libev loop (epoll backend) for one bench process: an `ev_io` per descriptor in a table indexed by fd
/// that never moves (libev keeps pointers to watchers), repeating timers, and one shared read buffer.
/// Single-threaded, like the gateway's loop it is modelled on (`PushGateway/Loop/EventLoop.swift`).
final class BenchLoop {
    let loop: OpaquePointer
    /// Descriptors this loop can hold: the soft RLIMIT_NOFILE after raising it to the hard limit.
    let capacity: Int
    private let watchers: UnsafeMutablePointer<ev_io>
    private var handlers: [IOHandler?]
    private var timers: [LoopTimer] = []
    /// Every read of every connection lands here first; only a partial frame's tail is copied out.
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)

    init() throws {
        capacity = Int(Sockets.raiseFileLimit())
        guard let loop = ev_loop_new(UInt32(EVBACKEND_EPOLL)) else {
            throw BenchError("ev_loop_new(EVBACKEND_EPOLL) failed: \(String(cString: strerror(errno)))")
        }
        self.loop = loop
        watchers = .allocate(capacity: capacity)
        handlers = Array(repeating: nil, count: capacity)
        ev_set_userdata(loop, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        for timer in timers { timer.stop() }
        ev_loop_destroy(loop)
        watchers.deallocate()
        scratch.deallocate()
    }

    /// Runs until `stop()`.
    func run() { ev_run(loop, 0) }

    func stop() { ev_break(loop, Int32(EVBREAK_ALL)) }

    /// Watches `fd` for `events` on behalf of `handler`; false when the fd does not fit the table.
    @discardableResult
    func register(_ fd: Int32, _ handler: IOHandler, events: Int32) -> Bool {
        guard fd >= 0, Int(fd) < capacity, handlers[Int(fd)] == nil else { return false }
        handlers[Int(fd)] = handler
        let watcher = watchers + Int(fd)
        clibev_io_init(watcher, benchLoopIO, fd, events)
        if events != 0 { ev_io_start(loop, watcher) }
        return true
    }

    /// Changes the events watched on `fd` (0 stops watching without forgetting the handler).
    func setEvents(_ fd: Int32, _ events: Int32) {
        let watcher = watchers + Int(fd)
        let active = clibev_is_active(UnsafeRawPointer(watcher).assumingMemoryBound(to: ev_watcher.self)) != 0
        let current = watcher.pointee.events & Int32(EV_READ | EV_WRITE)
        guard current != events || active != (events != 0) else { return }
        if active { ev_io_stop(loop, watcher) }
        clibev_io_set(watcher, fd, events)
        if events != 0 { ev_io_start(loop, watcher) }
    }

    /// Stops watching `fd` and forgets its handler; the caller closes the descriptor.
    func unregister(_ fd: Int32) {
        guard fd >= 0, Int(fd) < capacity, handlers[Int(fd)] != nil else { return }
        ev_io_stop(loop, watchers + Int(fd))
        handlers[Int(fd)] = nil
    }

    fileprivate func dispatch(_ fd: Int32, _ events: Int32) {
        handlers[Int(fd)]?.handleEvents(events)
    }

    /// Calls `action` every `seconds` (first after `seconds`) until the loop ends or the timer is stopped.
    @discardableResult
    func every(_ seconds: Double, _ action: @escaping () -> Void) -> LoopTimer {
        let timer = LoopTimer(loop: self, action: action)
        timer.start(after: seconds, repeat: seconds)
        timers.append(timer)
        return timer
    }
}

/// A repeating libev timer whose watcher lives in memory of its own and finds its way back through `data`.
final class LoopTimer {
    private unowned let owner: BenchLoop
    private let watcher = UnsafeMutablePointer<ev_timer>.allocate(capacity: 1)
    private let action: () -> Void

    init(loop: BenchLoop, action: @escaping () -> Void) {
        owner = loop
        self.action = action
        clibev_timer_init(watcher, benchLoopTimer, 0, 0)
        watcher.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit { watcher.deallocate() }

    func start(after: Double, repeat interval: Double) {
        ev_timer_stop(owner.loop, watcher)
        ev_timer_set_shim(watcher, after, interval)
        ev_timer_start(owner.loop, watcher)
    }

    func stop() { ev_timer_stop(owner.loop, watcher) }

    fileprivate func fire() { action() }
}

/// `ev_timer_set` is a macro: set the two fields it sets.
private func ev_timer_set_shim(_ watcher: UnsafeMutablePointer<ev_timer>, _ after: Double, _ interval: Double) {
    watcher.pointee.at = after
    watcher.pointee.`repeat` = interval
}

// libev calls these C functions; the loop comes back from its userdata, a timer from its `data`.

private func benchLoopIO(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_io>?, _ events: Int32) {
    Unmanaged<BenchLoop>.fromOpaque(ev_userdata(loop)!).takeUnretainedValue().dispatch(watcher!.pointee.fd, events)
}

private func benchLoopTimer(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_timer>?, _ events: Int32) {
    Unmanaged<LoopTimer>.fromOpaque(watcher!.pointee.data).takeUnretainedValue().fire()
}
