import PushCore
import PushPosix

/// ACK `{"seq":N}` (SPEC §2): the device's delivered cursor stored; nothing is answered.
extension ConnectionServer {
    func ack(_ connection: ClientConnection, seq: UInt64) {
        // Batched with the iteration's other ACKs, one cursor write per device (the highest seq); failures logged.
        store.ack(AckCall(uid: connection.session.user, device: connection.session.key, seq: seq))
    }
}
