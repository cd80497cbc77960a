import PushCore

/// `GET` and `PUT /v1/route/rules` (SPEC §8): the register server's rules, kept in Redis and read by every node
/// within a second.
extension PushAPI {
    /// `GET /v1/route/rules`: the rules as stored now, every member written (the defaults when none were put).
    func routeRules(respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        try requireStorage()
        edge.readRules { result in
            switch result {
            case .success(let rules): respond(HTTPResponse(body: rules.json))
            case .failure(let failure): respond(HTTPResponse(Self.storageError(failure)))
            }
        }
    }

    /// `PUT /v1/route/rules`: replaces the rules (a member left out takes its default); answers them as stored.
    func putRouteRules(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) throws(APIError) {
        try requireJSON(request)
        let rules = try RouteRules(body: request.body)
        try requireStorage()
        edge.writeRules(rules) { result in
            switch result {
            case .success: respond(HTTPResponse(body: rules.json))
            case .failure(let failure): respond(HTTPResponse(Self.storageError(failure)))
            }
        }
    }
}
