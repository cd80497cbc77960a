import Testing

@testable import PushCore

private func authFrame(_ json: String, sequence: UInt32 = 1) -> Frame { Frame(.auth, sequence: sequence, text: json) }

private func online(_ json: String = #"{"mid":"u1","key":"k1","accepts":[1000,1001]}"#) -> ClientSession {
    var session = ClientSession()
    guard case .authenticate(let request, _) = session.receive(authFrame(json)) else {
        Issue.record("AUTH not accepted")
        return session
    }
    session.authenticating(request, key: request.key ?? "generated")
    session.authenticated()
    return session
}

@Suite struct ClientSessionTests {
    /// AUTH first: the request is parsed and handed out with its sequence.
    @Test func authFirst() {
        var session = ClientSession()
        let action = session.receive(authFrame(#"{"mid":42,"platform":"ios","room_id":"live://1","last_seq":7}"#, sequence: 9))
        #expect(action == .authenticate(AuthRequest(user: "42", room: "live://1", platform: "ios", lastSeq: 7), sequence: 9))
    }

    /// Anything before AUTH is a fatal auth_required.
    @Test func heartbeatBeforeAuth() {
        var session = ClientSession()
        guard case .fail(let error, let op, let seq) = session.receive(Frame(.heartbeat, sequence: 3)) else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.code == "auth_required" && error.isFatal && op == .heartbeat && seq == 3)
        #expect(session.state == .closing)
        #expect(session.receive(Frame(.heartbeat)) == .none)
    }

    /// Bad AUTH bodies are fatal bad_auth.
    @Test(arguments: [
        "not json", "[]", #"{"key":"k"}"#, #"{"mid":""}"#, #"{"mid":1.5}"#, #"{"mid":true}"#,
        #"{"mid":"u","accepts":"1000"}"#, #"{"mid":"u","accepts":[-1]}"#, #"{"mid":"u","last_seq":-3}"#,
        #"{"mid":"u","key":{}}"#,
        // Control characters in any field the admin socket or a node message prints (issue 10 item 7).
        #"{"mid":"u","platform":"ios\n.\nworker=9 uid=root key=x"}"#, #"{"mid":"u","room_id":"live://1\n."}"#,
        #"{"mid":"u","key":"k\r"}"#, #"{"mid":"u","platform":"\u007f"}"#,
    ])
    func badAuth(body: String) {
        var session = ClientSession()
        guard case .fail(let error, _, _) = session.receive(authFrame(body)) else {
            Issue.record("accepted \(body)")
            return
        }
        #expect(error.code == "bad_auth")
    }

    /// Integer and string user ids are the same user.
    @Test func midForms() throws {
        #expect(try AuthRequest(body: Array(#"{"mid":42}"#.utf8)).user == "42")
        #expect(try AuthRequest(body: Array(#"{"mid":"42"}"#.utf8)).user == "42")
    }

    /// Online: heartbeats, a second AUTH is fatal, unknown ops are fatal, storage ops are forwarded.
    @Test func onlineFrames() {
        var session = online()
        #expect(session.receive(Frame(.heartbeat, sequence: 4)) == .heartbeat(sequence: 4))
        #expect(session.receive(Frame(.ack, text: #"{"seq":1}"#)) == .ack(1))
        if case .fail(let error, _, _) = session.receive(Frame(Operation(1000))) {
            #expect(error.code == "unknown_op")
        } else {
            Issue.record("op 1000 from a client accepted")
        }
        var again = online()
        if case .fail(let error, _, _) = again.receive(authFrame(#"{"mid":1}"#)) {
            #expect(error.code == "already_authenticated")
        } else {
            Issue.record("second AUTH accepted")
        }
    }

    /// While AUTH waits for Redis, every frame is held (the session is already the user's); once Redis answered,
    /// held frames are received as usual.
    @Test func authenticatingHoldsFrames() {
        var session = ClientSession()
        guard case .authenticate(let request, _) = session.receive(authFrame(#"{"mid":"u1","key":"k1"}"#)) else {
            Issue.record("AUTH not accepted")
            return
        }
        session.authenticating(request, key: "k1")
        #expect(session.state == .authenticating && session.isAuthenticating)
        #expect(session.user == "u1" && session.key == "k1")
        let heartbeat = Frame(.heartbeat, sequence: 2)
        #expect(session.receive(heartbeat) == .hold(heartbeat))
        #expect(session.receive(authFrame(#"{"mid":"u1"}"#)) == .hold(authFrame(#"{"mid":"u1"}"#)))
        session.authenticated()
        #expect(session.state == .online && !session.isAuthenticating)
        #expect(session.receive(heartbeat) == .heartbeat(sequence: 2))
    }

    /// A session that closed while AUTH waited stays closed when Redis answers.
    @Test func closedWhileAuthenticating() {
        var session = ClientSession()
        session.authenticating(AuthRequest(user: "u"), key: "k")
        session.closing()
        session.authenticated()
        #expect(session.state == .closing)
    }

    /// ACK, SYNC and READ bodies become their numbers; SYNC's limit defaults to 100 and is at least 1.
    @Test func storageOperations() {
        var session = online()
        #expect(session.receive(Frame(.ack, sequence: 1, text: #"{"seq":12}"#)) == .ack(12))
        #expect(session.receive(Frame(.sync, sequence: 2, text: #"{"after":3,"limit":5}"#)) == .sync(after: 3, limit: 5, sequence: 2))
        #expect(session.receive(Frame(.sync, sequence: 3, text: #"{"after":0}"#)) == .sync(after: 0, limit: 100, sequence: 3))
        #expect(session.receive(Frame(.sync, sequence: 4, text: #"{"after":1,"limit":0}"#)) == .sync(after: 1, limit: 1, sequence: 4))
        #expect(session.receive(Frame(.read, sequence: 5, text: #"{"seq":7}"#)) == .read(7, sequence: 5))
    }

    /// Malformed ACK, SYNC and READ bodies are bad_body, with the frame's op and seq; the session stays online.
    @Test(arguments: [
        (Operation.ack, "{}"), (.ack, #"{"seq":-1}"#), (.ack, #"{"seq":"1"}"#), (.ack, "not json"), (.ack, "[1]"),
        (.sync, #"{"limit":5}"#), (.sync, #"{"after":-2}"#), (.read, #"{"seq":1.5}"#), (.read, ""),
    ])
    func badStorageBodies(operation: Operation, body: String) {
        var session = online()
        guard case .fail(let error, let op, let seq) = session.receive(Frame(operation, sequence: 8, text: body)) else {
            Issue.record("\(operation) \(body) accepted")
            return
        }
        #expect(error.code == "bad_body" && op == operation && seq == 8)
        #expect(session.state == .online)
    }

    /// SUB and UNSUB bodies become topic lists, as given; anything but a list of valid names is bad_body.
    @Test func topicOperations() {
        var session = online()
        #expect(session.receive(Frame(.sub, sequence: 1, text: #"{"topics":["a","b","a"]}"#)) == .join(["a", "b", "a"], sequence: 1))
        #expect(session.receive(Frame(.unsub, sequence: 2, text: #"{"topics":[]}"#)) == .leave([], sequence: 2))
        for bad in [#"{"topics":"a"}"#, #"{"topics":["a",1]}"#, #"{"topics":[""]}"#, #"{"topics":["a\nb"]}"#, "{}", "x"] {
            guard case .fail(let error, let op, _) = session.receive(Frame(.sub, text: bad)) else {
                Issue.record("SUB \(bad) accepted")
                continue
            }
            #expect(error.code == "bad_body" && op == .sub, "\(bad)")
        }
    }

    /// Accepts filter: listed ops only; control ops always; an empty list accepts all.
    @Test func acceptsFilter() {
        let session = online()
        #expect(session.accepts(Operation(1000)))
        #expect(!session.accepts(Operation(1002)))
        #expect(session.accepts(.heartbeatReply))
        #expect(online(#"{"mid":"u"}"#).accepts(Operation(4242)))
    }

    /// SUB_OPS adds to the list and UNSUB_OPS removes, each replying with the same body.
    @Test func subAndUnsubOps() {
        var session = online()
        #expect(session.receive(Frame(.subOps, sequence: 2, text: "1002, 1003")) == .reply(Frame(.subOpsReply, sequence: 2, text: "1002, 1003")))
        #expect(session.accepts(Operation(1003)))
        #expect(session.receive(Frame(.unsubOps, sequence: 3, text: "1000")) == .reply(Frame(.unsubOpsReply, sequence: 3, text: "1000")))
        #expect(!session.accepts(Operation(1000)))
        #expect(session.accepts(Operation(1001)))
        if case .fail(let error, _, _) = session.receive(Frame(.subOps, text: "abc")) {
            #expect(error.code == "bad_body" && !error.isFatal)
        } else {
            Issue.record("bad SUB_OPS body accepted")
        }
        #expect(session.state == .online)
    }

    /// CHANGE_ROOM moves the session and reports both rooms.
    @Test func changeRoom() {
        var session = online(#"{"mid":"u","room_id":"a"}"#)
        let body = #"{"room_id":"b"}"#
        #expect(session.receive(Frame(.changeRoom, sequence: 5, text: body))
            == .roomChanged(from: "a", to: "b", reply: Frame(.changeRoomReply, sequence: 5, text: body)))
        #expect(session.room == "b")
    }

    /// CHANGE_ROOM with goim's body, the bare room id; an empty body leaves the room; the reply echoes the body.
    @Test func changeRoomBareBody() {
        var session = online(#"{"mid":"u","room_id":"test://1"}"#)
        #expect(session.receive(Frame(.changeRoom, sequence: 6, text: "test://2"))
            == .roomChanged(from: "test://1", to: "test://2", reply: Frame(.changeRoomReply, sequence: 6, text: "test://2")))
        #expect(session.room == "test://2")
        #expect(session.receive(Frame(.changeRoom, sequence: 7))
            == .roomChanged(from: "test://2", to: nil, reply: Frame(.changeRoomReply, sequence: 7)))
        #expect(session.room == nil)
        for bad in [#"{"room":"x"}"#, #"{"room_id":3}"#, "{not json"] {
            guard case .fail(let error, _, _) = session.receive(Frame(.changeRoom, text: bad)) else {
                Issue.record("CHANGE_ROOM \(bad) accepted")
                continue
            }
            #expect(error.code == "bad_body" && !error.isFatal, "\(bad)")
        }
        guard case .fail(let error, _, _) = session.receive(Frame(.changeRoom, body: [0x74, 0xff, 0xfe])) else {
            Issue.record("CHANGE_ROOM with a body that is not UTF-8 accepted")
            return
        }
        #expect(error.code == "bad_body")
    }

    /// SEND_MSG (op 4) is answered as goim's comet answers it: op 4, the same seq, no body.
    @Test func sendMessage() {
        var session = online()
        #expect(session.receive(Frame(.sendMessage, sequence: 9, text: "hello")) == .reply(Frame(.sendMessage, sequence: 9)))
        #expect(session.state == .online)
    }
}

@Suite struct AdminTextTests {
    /// What a client chose is one token on an admin line: nothing in it can end the line, split the field or be
    /// the reply's `.` terminator.
    @Test func escape() {
        #expect(AdminText.escape("alice") == "alice")
        #expect(AdminText.escape("") == "-")
        #expect(AdminText.escape("-") == "\\x2d")
        #expect(AdminText.escape(".") == "\\x2e")
        #expect(AdminText.escape("ios\n.\nworker=9 uid=root") == "ios\\x0a.\\x0aworker\\x3d9\\x20uid\\x3droot")
        #expect(AdminText.escape("a\\b\u{7f}") == "a\\x5cb\\x7f")
        #expect(AdminText.escape("live://1000 é") == "live://1000\\x20é")
    }
}
