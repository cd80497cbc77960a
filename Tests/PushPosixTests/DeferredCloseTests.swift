import Glibc
import PushCore
import Testing

@testable import PushPosix

/// A connection that closes itself in its own read callback, and records what its peer and the descriptor table
/// look like at that moment.
private final class SelfClosing: SocketConnection {
    let peer: Int32
    var peerSawEOFInCallback: Bool?
    var reusedNumber: Bool?
    var closedReason: CloseReason?
    var closes = 0

    init(fd: Int32, peer: Int32, loop: EventLoop) {
        self.peer = peer
        super.init(fd: fd, loop: loop)
    }

    override func received(_ bytes: UnsafeRawBufferPointer) {
        close(.protocolError)
        close(.ioError)  // a second close is a no-op
        #expect(!isOpen && phase == .closed)
        #expect(!enqueue { $0.append(1) }, "a closed connection takes no output")
        var byte: UInt8 = 0
        peerSawEOFInCallback = Glibc.read(peer, &byte, 1) == 0
        // New descriptors opened now cannot get this one's number: it is still open.
        if let (a, b) = try? Posix.socketPair() {
            reusedNumber = a == fd || b == fd
            Posix.close(a)
            Posix.close(b)
        }
    }

    override func didClose(_ reason: CloseReason) {
        closes += 1
        closedReason = reason
    }
}

@Suite struct DeferredCloseTests {
    /// Closed inside its own read callback: no more events or output at once, but the descriptor is closed by the
    /// loop after the callback (in its prepare hook), once, and only then is `didClose` called.
    @Test func closedInOwnCallback() throws {
        let loop = try EventLoop(capacity: 4096)
        let (fd, peer) = try Posix.socketPair()
        defer { Posix.close(peer) }
        let connection = SelfClosing(fd: fd, peer: peer, loop: loop)
        #expect(loop.adopt(fd, connection))
        var byte: UInt8 = 7
        #expect(Glibc.write(peer, &byte, 1) == 1)
        let stop = LoopTimer(loop: loop) { loop.stop() }
        stop.start(after: 0.3)
        loop.run()

        #expect(connection.peerSawEOFInCallback == false, "the descriptor was closed inside the callback")
        #expect(connection.reusedNumber == false)
        #expect(connection.closes == 1 && connection.closedReason == .protocolError)
        // After the callback the descriptor is gone: the peer reads EOF.
        #expect(Glibc.read(peer, &byte, 1) == 0)
    }
}
