import Glibc
import PushCore
import PushPosix

/// SYNC `{"after":N,"limit":L}` (SPEC §2): stored messages after N, as frames in one SYNC_REPLY body.
extension ConnectionServer {
    func sync(_ connection: ClientConnection, after: UInt64, limit: Int, sequence: UInt32) {
        let call = SyncCall(
            uid: connection.session.user, after: after, limit: min(limit, config.inbox.max), nowSeconds: Posix.wallSeconds())
        store.run(call) { result in
            guard connection.isOpen else { return }
            switch result {
            case .success(let sync):
                var batch: [UInt8] = []
                for message in sync.messages { Frame.encode(message, into: &batch) }
                connection.send(Frame(.syncReply, sequence: sequence, body: batch))
            case .failure(let error):
                connection.send(ProtocolError.unavailable(.sync, "storage: \(error)").frame(op: .sync, sequence: sequence))
            }
        }
    }
}
