import CHiredis
import CLibev
import PushCore

// hiredis calls these C functions; the client comes back from the context's `data` (nil once it is deinitialized).

typealias RedisReplyFunction = @convention(c) (
    UnsafeMutablePointer<redisAsyncContext>?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?
) -> Void

private func client(_ data: UnsafeMutableRawPointer?) -> RedisClient? {
    data.map { Unmanaged<RedisClient>.fromOpaque($0).takeUnretainedValue() }
}

func redisClientReply(
    _ ac: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
    _ privdata: UnsafeMutableRawPointer?
) {
    let command = Unmanaged<PendingCommand>.fromOpaque(privdata!).takeRetainedValue()
    guard let ac, let client = client(ac.pointee.data) else {
        let value = reply.map { RedisValue(reply: $0.assumingMemoryBound(to: redisReply.self)) }
        return command.completion(value.map { .success($0) } ?? .failure(.disconnected))
    }
    client.replied(ac, reply, command.completion)
}

func redisClientMessage(
    _ ac: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
    _ privdata: UnsafeMutableRawPointer?
) {
    guard let ac, let client = client(ac.pointee.data) else { return }
    client.received(ac, reply)
}

func redisClientConnected(_ ac: UnsafePointer<redisAsyncContext>?, _ status: Int32) {
    guard let ac, let client = client(ac.pointee.data) else { return }
    client.connected(UnsafeRawPointer(ac), status: status)
}

func redisClientDisconnected(_ ac: UnsafePointer<redisAsyncContext>?, _ status: Int32) {
    guard let ac, let client = client(ac.pointee.data) else { return }
    client.disconnected(UnsafeRawPointer(ac), status: status)
}

func redisClientReconnectTimer(
    _ loop: OpaquePointer?, _ watcher: UnsafeMutablePointer<ev_timer>?, _ events: Int32
) {
    client(watcher?.pointee.data)?.reconnectTimerFired()
}
