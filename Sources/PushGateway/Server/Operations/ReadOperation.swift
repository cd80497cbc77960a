import PushCore
import PushPosix

/// READ `{"seq":N}` (SPEC §2): the user's read cursor moved; READ_REPLY says how many are still unread.
extension ConnectionServer {
    func read(_ connection: ClientConnection, seq: UInt64, sequence: UInt32) {
        store.run(ReadCall(uid: connection.session.user, seq: seq)) { result in
            guard connection.isOpen else { return }
            switch result {
            case .success(let read):
                var body = JSONWriter()
                body.object { $0.field("unread", read.unread) }
                connection.send(Frame(.readReply, sequence: sequence, body: body.bytes))
            case .failure(let error):
                connection.send(ProtocolError.unavailable(.read, "storage: \(error)").frame(op: .read, sequence: sequence))
            }
        }
    }
}
