import Glibc
import Logging
import PushCore
import PushPosix

/// The admin socket (SPEC §6): a Unix stream socket, mode 0600, served by the master's loop. Each connection
/// sends command lines and gets reply lines ending with a line holding a single `.`; commands on one connection
/// are answered in order. The socket file is removed when the master exits.
final class AdminServer: LoopHandler {
    /// Most admin connections at once; more are told so and closed.
    static let maxClients = 32

    let fd: Int32
    let path: String
    let generation: UInt32
    var deadline: UInt32 { .max }
    /// Runs one command line for a client, which must eventually get `reply` (or `startTail`).
    var onCommand: ((AdminConnection, String) -> Void)?

    private let inode: UInt64
    fileprivate unowned(unsafe) let loop: EventLoop
    private let logger: Logger
    private var clients: [ObjectIdentifier: AdminConnection] = [:]
    private var isClosed = false

    init(path: String, loop: EventLoop, logger: Logger) throws {
        (fd, inode) = try Posix.listenUnix(path: path)
        self.path = path
        self.loop = loop
        self.logger = logger
        generation = loop.makeGeneration()
        guard loop.register(fd, self, events: .read) else {
            Posix.close(fd)
            Posix.removeUnixSocket(path: path, inode: inode)
            throw SystemError(call: "register admin socket", errno: EMFILE)
        }
    }

    /// The clients receiving a line a second.
    var tailing: [AdminConnection] { clients.values.filter(\.isTailing) }

    func handleEvents(_ events: IOEvents) {
        for _ in 0..<16 {
            let client: Int32
            do {
                guard case .done(let fd) = try Posix.accept(fd) else { return }
                client = fd
            } catch {
                logger.warning("admin socket accept failed", metadata: ["error": "\(error)"])
                return
            }
            guard clients.count < Self.maxClients else {
                let refusal = Array("ERR too many admin connections\n.\n".utf8)
                _ = refusal.withUnsafeBytes { try? Posix.write(client, from: $0) }
                Posix.close(client)
                continue
            }
            let connection = AdminConnection(fd: client, server: self)
            guard loop.register(client, connection, events: .read) else {
                Posix.close(client)
                continue
            }
            clients[ObjectIdentifier(connection)] = connection
        }
    }

    func timedOut() {}

    fileprivate func command(_ connection: AdminConnection, _ line: String) {
        onCommand?(connection, line)
    }

    fileprivate func closed(_ connection: AdminConnection) {
        clients[ObjectIdentifier(connection)] = nil
    }

    /// Stops listening, closes every client and removes the socket file.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        loop.unregister(fd)
        Posix.close(fd)
        Posix.removeUnixSocket(path: path, inode: inode)
        for client in Array(clients.values) { client.close(.shutdown) }
    }
}

/// One operator's connection to the admin socket.
final class AdminConnection: LineConnection {
    private unowned(unsafe) let server: AdminServer
    /// Receiving a figures line every second (`tail`); further input is ignored.
    private(set) var isTailing = false
    /// Command lines waiting for the one in progress.
    private var queued: [String] = []
    private var busy = false

    /// Lines queued for a client that does not read: past this it is dropped (a `tail` left in a stopped terminal
    /// must not grow the master).
    static let outputLimit = 1 << 20
    static let maxQueued = 64

    init(fd: Int32, server: AdminServer) {
        self.server = server
        super.init(fd: fd, loop: server.loop, maxLine: 4096, outputLimit: Self.outputLimit)
    }

    override func receivedLine(_ line: [UInt8]) {
        guard !isTailing else { return }
        let text = String(decoding: line, as: UTF8.self)
        guard !text.allSatisfy({ $0 == " " || $0 == "\t" }) else { return }
        guard queued.count < Self.maxQueued else { return close(.protocolError) }
        queued.append(text)
        runNext()
    }

    private func runNext() {
        while !busy, !isTailing, isOpen, !queued.isEmpty {
            busy = true
            server.command(self, queued.removeFirst())
        }
    }

    /// Sends a command's reply lines and the `.` that ends them, then runs the next queued command.
    func reply(_ lines: [String]) {
        for line in lines { send(line: line) }
        send(line: ".")
        busy = false
        runNext()
    }

    /// Turns this connection into a `tail`: the master writes a line a second until the client hangs up.
    func startTail() {
        isTailing = true
        busy = false
        queued = []
    }

    override func didClose(_ reason: CloseReason) {
        server.closed(self)
    }
}
