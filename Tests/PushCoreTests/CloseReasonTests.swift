import Testing

@testable import PushCore

private func text(_ frame: Frame?) -> String? { frame.map { String(decoding: $0.body, as: UTF8.self) } }

@Suite struct CloseReasonTests {
    /// The peer is gone, the socket failed or is full, an HTTP or admin connection is done: nothing is said, and
    /// the descriptor closes at once.
    @Test(arguments: [
        (CloseReason.peerClosed, CloseReason.Kind.peerClosed), (.ioError, .ioError), (.writeQueueFull, .writeQueueFull),
        (.requestDone, .requestDone), (.shutdown, .shutdown), (.protocolError, .protocolError),
    ])
    func silent(reason: CloseReason, kind: CloseReason.Kind) {
        #expect(reason.kind == kind)
        let farewell = reason.farewell
        #expect(farewell.frame == nil && !farewell.closesWebSocket && !farewell.flushes && farewell.detail.isEmpty)
    }

    /// A fatal protocol error: ERROR with the code, message and op, the frame's sequence; a WebSocket close frame
    /// with the error's status and its code as the reason; counted as protocol_error.
    @Test func protocolError() {
        let error = ProtocolError.frameTooLarge(70_000, limit: 65_536)
        let reason = CloseReason.protocolError(error, operation: .heartbeat, sequence: 7)
        #expect(reason.kind == .protocolError)
        let farewell = reason.farewell
        #expect(farewell.frame?.operation == .error && farewell.frame?.sequence == 7)
        #expect(
            text(farewell.frame)
                == #"{"code":"frame_too_large","message":"packet length 70000 exceeds max_frame 65536","op":2}"#)
        #expect(farewell.closesWebSocket && farewell.webSocketStatus == .messageTooBig)
        #expect(farewell.detail == "frame_too_large" && farewell.flushes)
    }

    /// The timeouts send their ERROR and are counted apart.
    @Test func timeouts() {
        #expect(CloseReason.handshakeTimeout.kind == .handshakeTimeout)
        #expect(CloseReason.idleTimeout.kind == .idleTimeout)
        for (reason, code) in [(CloseReason.handshakeTimeout, "handshake_timeout"), (.idleTimeout, "idle_timeout")] {
            let farewell = reason.farewell
            #expect(farewell.frame?.operation == .error && text(farewell.frame)?.contains("\"code\":\"\(code)\"") == true)
            #expect(farewell.webSocketStatus == .policyViolation && farewell.detail == code && farewell.flushes)
        }
    }

    /// Kick, drain and storage down at AUTH: DISCONNECT `{"reason","reconnect","after_ms"}` then close status 1000
    /// with the DISCONNECT reason.
    @Test(arguments: [
        (CloseReason.kicked, CloseReason.Kind.kicked, #"{"reason":"kicked","reconnect":false,"after_ms":0}"#),
        (.draining(afterMillis: 1234), .shutdown, #"{"reason":"shutdown","reconnect":true,"after_ms":1234}"#),
        (
            .storageUnavailable(afterMillis: 4000), .protocolError,
            #"{"reason":"storage_unavailable","reconnect":true,"after_ms":4000}"#
        ),
    ])
    func disconnect(reason: CloseReason, kind: CloseReason.Kind, body: String) {
        #expect(reason.kind == kind)
        let farewell = reason.farewell
        #expect(farewell.frame?.operation == .disconnect && farewell.frame?.sequence == 0 && text(farewell.frame) == body)
        #expect(farewell.closesWebSocket && farewell.webSocketStatus == .normal && farewell.flushes)
        #expect(body.contains("\"reason\":\"\(farewell.detail)\""))
    }

    /// WebSocket-level closes carry no pushgw frame: only the close frame (its reason the error's message, or
    /// none when answering the client's close frame with the same status).
    @Test func webSocket() {
        let error = CloseReason.webSocketError(.protocolError, "unmasked frame")
        #expect(error.kind == .protocolError)
        #expect(
            error.farewell
                == CloseReason.Farewell(
                    frame: nil, closesWebSocket: true, webSocketStatus: .protocolError, detail: "unmasked frame",
                    flushes: true))
        for status in [WebSocketCloseCode.normal, nil] {
            let echo = CloseReason.webSocketClosed(status)
            #expect(echo.kind == .peerClosed)
            #expect(echo.farewell.frame == nil && echo.farewell.closesWebSocket && echo.farewell.webSocketStatus == status)
            #expect(echo.farewell.detail.isEmpty && echo.farewell.flushes)
        }
        // A refused upgrade: its HTTP answer is queued already; it is flushed, nothing is added.
        let refused = CloseReason.upgradeRefused.farewell
        #expect(refused.frame == nil && !refused.closesWebSocket && refused.flushes)
    }

    /// The frame rate: a dropped frame's ERROR is not fatal, the one after another burst is (same code, answering
    /// the frame, WebSocket 1008), counted as rate_limited.
    @Test func rateLimited() {
        let drop = ProtocolError.rateLimited(.sub)
        #expect(drop.code == "rate_limited" && !drop.isFatal)
        let reason = CloseReason.rateLimited(operation: .sub, sequence: 9)
        #expect(reason.kind == .rateLimited)
        let farewell = reason.farewell
        #expect(farewell.frame?.operation == .error && farewell.frame?.sequence == 9)
        #expect(text(farewell.frame)?.hasPrefix(#"{"code":"rate_limited","#) == true)
        #expect(text(farewell.frame)?.hasSuffix(#""op":24}"#) == true)
        #expect(farewell.webSocketStatus == .policyViolation && farewell.detail == "rate_limited" && farewell.flushes)
        #expect(ProtocolError.rateLimitedClose(.sub).isFatal)
    }

    /// What automatic bans count against an address: failed AUTHs and fatal protocol errors, broken WebSocket
    /// framing, a refused upgrade, the frame rate; not timeouts, storage down, bans, kicks, drains or closes.
    @Test func blame() {
        let blamed: [CloseReason] = [
            .protocolError(.authFailed("forged"), operation: .auth, sequence: 1),
            .protocolError(.badLength(3), operation: Operation(0), sequence: 0),
            .webSocketError(.protocolError, "unmasked"), .upgradeRefused, .rateLimited(operation: .sub, sequence: 1),
        ]
        for reason in blamed { #expect(reason.blamesClient, "\(reason)") }
        let spared: [CloseReason] = [
            .peerClosed, .ioError, .handshakeTimeout, .idleTimeout, .kicked, .banned, .bannedAddress,
            .bannedAtAuth(until: 0, sequence: 1), .storageUnavailable(afterMillis: 1000), .draining(afterMillis: 1),
            .webSocketClosed(.normal), .writeQueueFull, .tlsHandshakeFailed, .protocolError,
        ]
        for reason in spared { #expect(!reason.blamesClient, "\(reason)") }
    }

    /// The metric labels are the wire contract of `/metrics` and the admin socket: every kind, spelled as before.
    @Test func labels() {
        #expect(
            CloseReason.Kind.allCases.map(\.rawValue) == [
                "peer_closed", "io_error", "protocol_error", "handshake_timeout", "idle_timeout", "write_queue_full",
                "kicked", "shutdown", "banned", "request_done", "tls_handshake_failed", "refused", "rate_limited",
                "proxy_refused",
            ])
        #expect(CloseReason.kicked.rawValue == "kicked")
        // What a lingering connection keeps is its kind alone.
        #expect(MemoryLayout<CloseReason.Kind>.size == 1)
        #expect(CloseReason(.kicked) != .kicked, "the notice is part of the reason")
    }

    /// A reason is a few words on the stack: no allocation for the common ones (their strings are literals).
    @Test func cheap() {
        #expect(MemoryLayout<CloseReason>.size <= 48)
    }
}
