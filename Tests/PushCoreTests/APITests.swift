import Testing

@testable import PushCore

private func push(_ json: String) throws(APIError) -> PushRequest { try PushRequest(body: Array(json.utf8)) }

@Suite struct PushRequestTests {
    /// Users, the payload's exact bytes, store defaulting to true.
    @Test func usersPush() throws {
        let request = try push(#"{"to":{"users":["u1",42]},"op":1000,"payload":{"a": 1},"id":"x"}"#)
        #expect(request.target == .users(["u1", "42"]))
        #expect(request.operation == Operation(1000))
        #expect(String(decoding: request.payload, as: UTF8.self) == #"{"a": 1}"#)
        #expect(request.store && request.id == "x" && request.ttl == nil)
    }

    @Test func base64Payload() throws {
        let request = try push(#"{"to":{"all":true},"op":1001,"payload_b64":"AAEC/w=="}"#)
        #expect(request.payload == [0, 1, 2, 255])
        #expect(request.target == .all)
        #expect(!request.store)  // broadcast is never stored
    }

    @Test func devicesPush() throws {
        let request = try push(#"{"to":{"devices":[{"user":"u","key":"k"}]},"op":1000,"payload":"hi","store":false,"ttl":60}"#)
        #expect(request.target == .devices([.init(user: "u", key: "k")]))
        #expect(!request.store && request.ttl == 60)
        #expect(request.payload == Array(#""hi""#.utf8))
    }

    /// Every malformed push is a 400.
    @Test(arguments: [
        "[]", "{}", #"{"to":{"users":[]},"op":1000,"payload":1}"#, #"{"to":{"users":["u"]},"op":999,"payload":1}"#,
        #"{"to":{"users":["u"]},"payload":1}"#, #"{"to":{"users":["u"]},"op":1000}"#,
        #"{"to":{"users":["u"]},"op":1000,"payload":1,"payload_b64":"AA=="}"#,
        #"{"to":{"users":["u"]},"op":1000,"payload_b64":"***"}"#, #"{"to":{"users":["u"],"all":true},"op":1000,"payload":1}"#,
        #"{"to":{"all":false},"op":1000,"payload":1}"#, #"{"to":{"planets":["x"]},"op":1000,"payload":1}"#,
        #"{"to":{"users":["u"]},"op":1000,"payload":1,"store":"yes"}"#, #"{"to":{"users":["u"]},"op":1000,"payload":1,"ttl":0}"#,
        #"{"to":{"devices":["k"]},"op":1000,"payload":1}"#, #"{"to":{"users":["u"]},"op":"1000","payload":1}"#,
    ])
    func rejects(json: String) {
        #expect(throws: APIError.self) { try push(json) }
        do { _ = try push(json) } catch { #expect(error.status == 400) }
    }
}

@Suite struct APIRouteTests {
    @Test func routes() throws {
        #expect(try APIRoute.match(method: "POST", path: "/v1/push") == .push)
        #expect(try APIRoute.match(method: "GET", path: "/v1/users/a%20b") == .user("a b"))
        #expect(try APIRoute.match(method: "DELETE", path: "/v1/users/u/devices/k") == .kick(user: "u", key: "k"))
        #expect(try APIRoute.match(method: "GET", path: "/healthz") == .healthz)
    }

    /// Unknown paths are 404; known paths with another method are 405 with Allow.
    @Test func errors() {
        do {
            _ = try APIRoute.match(method: "GET", path: "/v2/push")
            Issue.record("matched")
        } catch { #expect(error.status == 404) }
        do {
            _ = try APIRoute.match(method: "GET", path: "/v1/push")
            Issue.record("matched")
        } catch {
            #expect(error.status == 405)
            #expect(error.headers.contains { $0.0 == "Allow" && $0.1 == "POST" })
        }
    }

    @Test func queryParameters() {
        let request = HTTPRequest(method: "GET", target: "/v1/users/u/messages?after=5&limit=%31%30&wait")
        #expect(request.path == "/v1/users/u/messages")
        #expect(request.queryParameter("after") == "5")
        #expect(request.queryParameter("limit") == "10")
        #expect(request.queryParameter("wait") == "")
        #expect(request.queryParameter("none") == nil)
        #expect(request.queryIsWellFormed)
        for bad in ["after=%zz", "after=%4", "%g1=2", "a=1&b=%ff"] {
            #expect(!HTTPRequest(method: "GET", target: "/x?\(bad)").queryIsWellFormed, "\(bad)")
        }
        #expect(HTTPRequest(method: "GET", target: "/x").queryIsWellFormed)
    }
}

@Suite struct UserIndexTests {
    final class Conn {}

    /// One connection is stored inline, more in a list; removal is by identity.
    @Test func addAndRemove() {
        var index = UserIndex<Conn>()
        let a = Conn(), b = Conn(), c = Conn()
        index.add(a, user: "u")
        index.add(b, user: "u")
        index.add(c, user: "v")
        #expect(index.count(of: "u") == 2 && index.connectionCount == 3 && index.userCount == 2)
        index.remove(a, user: "u")
        #expect(index.connections(of: "u").map { ObjectIdentifier($0) } == [ObjectIdentifier(b)])
        index.remove(a, user: "u")  // already gone: ignored
        #expect(index.connectionCount == 2)
        index.remove(b, user: "u")
        #expect(index.count(of: "u") == 0 && index.userCount == 1)
        var seen = 0
        index.forEachConnection { _ in seen += 1 }
        #expect(seen == 1)
    }
}
