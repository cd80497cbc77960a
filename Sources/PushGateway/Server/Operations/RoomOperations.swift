import PushCore
import PushPosix

/// CHANGE_ROOM (goim, SPEC §2): the session already moved; the room index follows, and the client is answered.
extension ConnectionServer {
    func changeRoom(_ connection: ClientConnection, from: String?, to: String?, reply: Frame) {
        if let from { rooms.leave(connection, from) }
        if let to { rooms.join(connection, to) }
        connection.send(reply)
    }
}
