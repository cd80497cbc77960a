import CLibev

/// A one-shot `ev_timer` for the rare deadline that needs better than the wheel's 100 ms (gap fills), or a
/// repeating one for periodic work. The watcher is allocated once and never moves.
public final class LoopTimer {
    /// Strong: the loop must outlive the watcher, which is stopped in `deinit`.
    private let loop: EventLoop
    private let watcher = UnsafeMutablePointer<ev_timer>.allocate(capacity: 1)
    private let action: () -> Void

    public init(loop: EventLoop, _ action: @escaping () -> Void) {
        self.loop = loop
        self.action = action
        clibev_timer_init(watcher, loopTimerFired, 0, 0)
        watcher.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        ev_timer_stop(loop.loop, watcher)
        watcher.deallocate()
    }

    public var isActive: Bool {
        clibev_is_active(UnsafeRawPointer(watcher).assumingMemoryBound(to: ev_watcher.self)) != 0
    }

    /// Fires once after `seconds` (then every `repeat` seconds when > 0); restarts a running timer.
    public func start(after seconds: Double, repeat interval: Double = 0) {
        ev_timer_stop(loop.loop, watcher)
        clibev_timer_init(watcher, loopTimerFired, seconds, interval)
        watcher.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        ev_timer_start(loop.loop, watcher)
    }

    public func stop() { ev_timer_stop(loop.loop, watcher) }

    fileprivate func fire() { action() }
}

private func loopTimerFired(_ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_timer>?, _ events: Int32) {
    Unmanaged<LoopTimer>.fromOpaque(watcher!.pointee.data).takeUnretainedValue().fire()
}

/// One-shot actions on the loop, each after its own delay, all cancelled by ``cancelAll()`` (a client's stop):
/// the retries and waits of ``RedisClusterClient`` and the notifier's queue.
public final class LoopDelays {
    private let loop: EventLoop
    private var timers: [Int: LoopTimer] = [:]
    private var next = 0

    public init(loop: EventLoop) { self.loop = loop }

    /// Runs `action` on the loop after `seconds`.
    public func after(_ seconds: Double, _ action: @escaping () -> Void) {
        let key = next
        next += 1
        let timer = LoopTimer(loop: loop) { [unowned self] in
            let timer = self.timers.removeValue(forKey: key)
            action()
            withExtendedLifetime(timer) {}
        }
        timers[key] = timer
        timer.start(after: seconds)
    }

    /// Cancels every action not run yet.
    public func cancelAll() {
        for timer in timers.values { timer.stop() }
        timers.removeAll()
    }
}
