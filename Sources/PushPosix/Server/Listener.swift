import Glibc
import Logging
import PushCore

/// A listening socket on the loop. Accepts many connections per wakeup and hands each to `onAccept`, with the
/// peer's address (`accept4` gives it: nil only for a socket that is not IP).
/// At the descriptor limit (EMFILE) it stops watching until a tick later, so the loop does not spin on a
/// socket that stays readable.
public final class Listener: LoopHandler {
    /// Most connections accepted per wakeup, so one busy port cannot starve the rest of the loop.
    public static let acceptBatch = 256

    public let fd: Int32
    public let name: String
    public let port: UInt16
    public let generation: UInt32
    public var deadline: UInt32 { .max }

    private unowned(unsafe) let loop: EventLoop
    private let logger: Logger
    private let onAccept: (Int32, IPAddress?) -> Void
    private var paused = false
    /// Not accepting yet (the worker waits for Redis): connections queue in the kernel's backlog meanwhile.
    private var held: Bool

    /// Binds and listens at once (so a taken port fails the start); accepts only after `open()` when `held`.
    public init(
        name: String, address: ListenAddress, loop: EventLoop, logger: Logger, held: Bool = false,
        onAccept: @escaping (Int32, IPAddress?) -> Void
    ) throws {
        fd = try Posix.listen(host: address.host, port: address.port, ipv6: address.isIPv6)
        self.name = name
        port = Posix.localPort(fd)
        generation = loop.makeGeneration()
        self.loop = loop
        self.logger = logger
        self.onAccept = onAccept
        self.held = held
        guard loop.register(fd, self, events: held ? [] : .read) else {
            Posix.close(fd)
            throw SystemError(call: "register listener", errno: EMFILE)
        }
        loop.addTick { [weak self] in self?.resumeIfPaused() }
    }

    public func handleEvents(_ events: IOEvents) {
        for _ in 0..<Self.acceptBatch {
            do {
                switch try Posix.acceptWithPeer(fd) {
                case .done(let client): onAccept(client.fd, client.peer)
                case .wouldBlock: return
                }
            } catch let error as SystemError where error.errno == EMFILE || error.errno == ENFILE {
                pause(error)
                return
            } catch {
                logger.error("accept failed", metadata: ["listener": "\(name)", "error": "\(error)"])
                return
            }
        }
    }

    public func timedOut() {}

    private func pause(_ error: SystemError) {
        guard !paused else { return }
        paused = true
        loop.setEvents(fd, [])
        logger.warning(
            "out of file descriptors, pausing accepts",
            metadata: ["listener": "\(name)", "error": "\(error)"])
    }

    /// Starts accepting a listener created `held`.
    public func open() {
        guard held else { return }
        held = false
        if !paused { loop.setEvents(fd, .read) }
    }

    private func resumeIfPaused() {
        guard paused, !held else { return }
        paused = false
        loop.setEvents(fd, .read)
    }

    /// Stops listening. What the kernel already queued on this socket is accepted first (then served and
    /// drained like every other connection): closing an `SO_REUSEPORT` listener resets the connections in its
    /// queue, which the other workers' listeners never get.
    public func close() {
        if !held && !paused { handleEvents(.read) }
        loop.unregister(fd)
        Posix.close(fd)
    }
}
