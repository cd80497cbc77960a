import PushCore
import PushPosix

/// `PUT` and `DELETE /v1/users/{uid}/devices/{key}/push`, and `GET /v1/presence` (SPEC §10).
extension PushAPI {
    /// `PUT /v1/users/{uid}/devices/{key}/push`: the device's push token, kept with the user's keys.
    func setPushToken(_ user: String, key: String, _ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void)
        throws(APIError)
    {
        try requireJSON(request)
        let token = try PushToken(body: request.body)
        store.scripts.send([Array("HSET".utf8), Array(RedisKeys.pushTokens(user).utf8), Array(key.utf8), token.json]) {
            result in
            switch result {
            case .success(.integer(let added)):
                respond(.json { $0.object { $0.field("created", added == 1) } })
            case .success(let reply):
                respond(HTTPResponse(APIError(status: 500, code: "storage_error", message: "HSET answered \(reply)")))
            case .failure(let error):
                respond(HTTPResponse(APIError.unavailable("Redis is not available: \(error)")))
            }
        }
    }

    /// `DELETE /v1/users/{uid}/devices/{key}/push`.
    func removePushToken(_ user: String, key: String, respond: @escaping (HTTPResponse) -> Void) {
        store.scripts.send([Array("HDEL".utf8), Array(RedisKeys.pushTokens(user).utf8), Array(key.utf8)]) { result in
            switch result {
            case .success(.integer(let removed)):
                respond(.json { $0.object { $0.field("removed", removed == 1) } })
            case .success(let reply):
                respond(HTTPResponse(APIError(status: 500, code: "storage_error", message: "HDEL answered \(reply)")))
            case .failure(let error):
                respond(HTTPResponse(APIError.unavailable("Redis is not available: \(error)")))
            }
        }
    }

    /// Users one `GET /v1/presence` asks about at most.
    static let maxPresenceUsers = 1_000

    /// `GET /v1/presence?users=u1,u2,…`: `{"users":{"u1":{"online":true,"devices":2},…}}`, one `HLEN` of each
    /// user's sessions, all pipelined (on a cluster each to the user's master).
    func presence(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        guard let list = request.queryParameter("users") else { throw .badRequest("users is required: ?users=u1,u2") }
        var users: [String] = []
        for user in list.split(separator: ",").map(String.init) where !users.contains(user) {
            guard AuthRequest.isValidIdentifier(user) else {
                throw .badRequest("users must be comma-separated user ids without control characters")
            }
            users.append(user)
        }
        guard !users.isEmpty, users.count <= Self.maxPresenceUsers else {
            throw .badRequest("users must name 1 to \(Self.maxPresenceUsers) users")
        }
        var devices = [Int?](repeating: nil, count: users.count)
        var failure: RedisError?
        var remaining = users.count
        for (index, user) in users.enumerated() {
            store.scripts.send([Array("HLEN".utf8), Array(RedisKeys.sessions(user).utf8)]) { result in
                switch result {
                case .success(.integer(let count)): devices[index] = Int(count)
                case .success: failure = failure ?? .disconnected
                case .failure(let error): failure = failure ?? error
                }
                remaining -= 1
                guard remaining == 0 else { return }
                if let failure {
                    return respond(HTTPResponse(APIError.unavailable("Redis is not available: \(failure)")))
                }
                respond(.json {
                    $0.object {
                        $0.key("users")
                        $0.object { writer in
                            for (user, count) in zip(users, devices) {
                                writer.key(user)
                                writer.object {
                                    $0.field("online", (count ?? 0) > 0)
                                    $0.field("devices", count ?? 0)
                                }
                            }
                        }
                    }
                })
            }
        }
    }
}

extension PushAPI {
    /// `/metrics` with the notifiers' figures appended (SPEC §10, ``NotifyFigures``). Without Redis the gateway's
    /// own figures are served alone.
    func withNotifyMetrics(_ response: HTTPResponse, _ respond: @escaping (HTTPResponse) -> Void) {
        guard response.status == 200, store.isAvailable else { return respond(response) }
        NotifyFigures.fetch(store.scripts.redis) { figures in
            var answer = response
            answer.body += Array(figures.prometheusText.utf8)
            respond(answer)
        }
    }
}
