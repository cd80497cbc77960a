import PushCore

/// `POST /v1/bans`, `GET /v1/bans`, `DELETE /v1/bans/{id}` (SPEC §8): bans kept in Redis and applied by every node
/// within a second. Each reads or writes Redis; with Redis down they answer 503 and the nodes keep applying the
/// bans they last read.
extension PushAPI {
    /// `POST /v1/bans` `{"ip","user","device","ttl","reason"}` → `{"id":…,"expires_at":T}`.
    func addBan(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        try requireJSON(request)
        let ban = try BanRequest(body: request.body)
        try requireStorage()
        edge.addBan(ban) { result in
            switch result {
            case .success(let ban):
                respond(.json {
                    $0.object {
                        $0.field("id", ban.id)
                        $0.field("expires_at", ban.expiresAt)
                    }
                })
            case .failure(let failure):
                respond(HTTPResponse(Self.storageError(failure)))
            }
        }
    }

    /// `GET /v1/bans` → `{"bans":[{"id","ip","user","device","reason","expires_at"}]}`, in force now, by id.
    func listBans(respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        try requireStorage()
        edge.listBans { result in
            switch result {
            case .success(let bans): respond(HTTPResponse(body: BanList(bans).json(now: EdgeState.now())))
            case .failure(let failure): respond(HTTPResponse(Self.storageError(failure)))
            }
        }
    }

    /// `DELETE /v1/bans/{id}` → `{"id":…,"removed":true}`; 404 for an id no ban has.
    func removeBan(_ id: String, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        try requireStorage()
        edge.removeBan(id) { result in
            switch result {
            case .success(true):
                respond(.json {
                    $0.object {
                        $0.field("id", id)
                        $0.field("removed", true)
                    }
                })
            case .success(false):
                respond(HTTPResponse(APIError(status: 404, code: "not_found", message: "no ban with id \(id)")))
            case .failure(let failure):
                respond(HTTPResponse(Self.storageError(failure)))
            }
        }
    }

    /// 503 at once when the Redis connection is down, rather than a command that fails.
    func requireStorage() throws(APIError) {
        guard store.isAvailable else { throw .unavailable("Redis is not available: bans and route rules live there") }
    }
}
