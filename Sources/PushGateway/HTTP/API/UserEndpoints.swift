import PushCore
import PushPosix

/// `GET /v1/users/{uid}` (with the devices' push tokens, SPEC §10), `POST /v1/users/{uid}/read` and
/// `DELETE /v1/users/{uid}/devices/{key}` (SPEC §3).
extension PushAPI {
    /// `GET /v1/users/{uid}`.
    func userInfo(_ user: String, respond: @escaping (HTTPResponse) -> Void) {
        // The push tokens (SPEC §10) with it, pipelined: one slot, the same connection.
        var tokens: [(String, PushToken)] = []
        store.scripts.send([Array("HGETALL".utf8), Array(RedisKeys.pushTokens(user).utf8)]) { result in
            guard case .success(.array(let elements)) = result else { return }
            for index in stride(from: 0, to: elements.count - 1, by: 2) {
                guard case .string(let key) = elements[index], case .string(let value) = elements[index + 1],
                    let token = PushToken(stored: value)
                else { continue }
                tokens.append((String(decoding: key, as: UTF8.self), token))
            }
        }
        store.run(UserCall(uid: user)) { result in
            switch result {
            case .success(let info):
                respond(.json {
                    $0.object {
                        $0.field("online", !info.sessions.isEmpty)
                        $0.key("devices")
                        $0.array { writer in
                            for session in info.sessions {
                                writer.object {
                                    $0.field("key", session.key)
                                    $0.field("node", session.node)
                                    $0.field("platform", session.platform)
                                    $0.field("since", session.since)
                                }
                            }
                        }
                        $0.field("unread", info.unread)
                        $0.field("last_seq", info.seq)
                        $0.field("read_seq", info.read)
                        $0.key("push")
                        $0.object { writer in
                            for (key, token) in tokens {
                                writer.key(key)
                                token.write(to: &writer)
                            }
                        }
                    }
                })
            case .failure(let error):
                respond(HTTPResponse(Self.storageError(error)))
            }
        }
    }

    /// `POST /v1/users/{uid}/read` with `{"seq":N}`.
    func read(_ user: String, _ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        try requireJSON(request)
        guard let json = try? JSONParser.parse(request.body), let seq = json["seq"]?.int64Value, seq >= 0 else {
            throw .badRequest("body must be {\"seq\":N} with N ≥ 0")
        }
        store.run(ReadCall(uid: user, seq: UInt64(seq))) { result in
            switch result {
            case .success(let read): respond(.json { $0.object { $0.field("unread", read.unread) } })
            case .failure(let error): respond(HTTPResponse(Self.storageError(error)))
            }
        }
    }

    /// `DELETE /v1/users/{uid}/devices/{key}`: DISCONNECT to the device here and on its node, and its session removed.
    func kick(_ user: String, key: String, respond: @escaping (HTTPResponse) -> Void) {
        pipeline.kick(user: user, key: key) { kicked, removed in
            guard removed || kicked > 0 else {
                return respond(HTTPResponse(APIError.unavailable("Redis is not available: the session was not removed")))
            }
            respond(.json {
                $0.object {
                    $0.field("kicked", kicked)
                    $0.field("session_removed", removed)
                }
            })
        }
    }
}
