import PushCore
import PushPosix

/// ACK `{"seq":N}` (SPEC §2): the device's delivered cursor stored; nothing is answered.
extension ConnectionServer {
    func ack(_ connection: ClientConnection, seq: UInt64) {
        let user = connection.session.user
        store.run(AckCall(uid: user, device: connection.session.key, seq: seq)) { [logger] result in
            guard case .failure(let error) = result else { return }
            logger.debug("ACK not stored", metadata: ["uid": "\(user)", "error": "\(error)"])
        }
    }
}
