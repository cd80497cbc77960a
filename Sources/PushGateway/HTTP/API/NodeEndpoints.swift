import PushCore
import PushPosix

/// `GET /v1/nodes` and `GET /v1/topics/{name}` (SPEC §3): what the node registry knows of every node.
extension PushAPI {
    /// `GET /v1/nodes`: the live nodes, least loaded first.
    func nodes(respond: @escaping (HTTPResponse) -> Void) {
        registry.fetch { result in
            switch result {
            case .failure(let error): respond(HTTPResponse(Self.storageError(error)))
            case .success(let nodes):
                respond(.json {
                    $0.object {
                        $0.key("nodes")
                        $0.array { writer in
                            for node in nodes {
                                writer.object {
                                    $0.field("id", node.id)
                                    $0.field("address", node.address)
                                    $0.field("connections", node.connections)
                                    $0.field("updated_at", node.updatedAt)
                                }
                            }
                        }
                    }
                })
            }
        }
    }

    /// `GET /v1/topics/{name}`: members across the live nodes.
    func topicCount(_ topic: String, respond: @escaping (HTTPResponse) -> Void) {
        registry.groupCount(RedisKeys.topicCountField(topic), local: connections.topics.count(topic)) { result in
            switch result {
            case .success(let online): respond(.json { $0.object { $0.field("online", online) } })
            case .failure(let error): respond(HTTPResponse(Self.storageError(error)))
            }
        }
    }
}
