import PushCore

/// A browser's connection on the WebSocket listener (RFC 6455): first the HTTP upgrade, then WebSocket frames
/// whose binary payload is the same pushgw frame stream as on TCP, fed to the `ClientConnection` it is. Every
/// pushgw frame out goes as one unfragmented binary message (goim's JS client reads one frame per message); the
/// fan-out's shared encoding is appended unchanged behind a 2–10-byte header. The upgrade and the AUTH together
/// must come within `limits.handshake_timeout` of the accept.
final class WebSocketConnection: ClientConnection {
    /// The upgrade request being read; nil once it is answered.
    private var handshake: WebSocketHandshake? = WebSocketHandshake()
    private var frames: WebSocketDecoder

    override init(fd: Int32, server: ConnectionServer, address: IPAddress) {
        frames = WebSocketDecoder(maxMessage: WebSocketDecoder.messageLimit(maxFrame: server.maxFrame))
        super.init(fd: fd, server: server, address: address)
    }

    override func received(_ bytes: UnsafeRawBufferPointer) {
        guard handshake != nil else {
            // The bytes are in the loop's scratch buffer, ours for this call: payloads are unmasked in place.
            return receiveFrames(UnsafeMutableRawBufferPointer(mutating: bytes))
        }
        switch handshake!.feed(bytes) {
        case .needMore:
            break
        case .refuse(let error):
            handshake = nil
            server.logger.debug(
                "WebSocket upgrade refused",
                metadata: ["fd": "\(fd)", "status": "\(error.status)", "error": "\(error.message)"])
            enqueue { HTTPResponse(error).encode(into: &$0, close: true) }
            close(.upgradeRefused)
        case .upgrade(let response, var rest):
            handshake = nil
            enqueue { $0.append(contentsOf: response) }
            if !rest.isEmpty { rest.withUnsafeMutableBytes { receiveFrames($0) } }
        }
    }

    /// WebSocket frames: binary payload to the pushgw decoder, pings answered, a close echoed.
    private func receiveFrames(_ bytes: UnsafeMutableRawBufferPointer) {
        do {
            try frames.feed(bytes) { event in
                switch event {
                case .binary(let payload):
                    super.received(payload)
                    return isOpen && session.state != .closing
                case .ping(let payload):
                    enqueue { WebSocketFrame.encode(.pong, payload: payload, into: &$0) }
                    return isOpen
                case .pong:
                    return true
                case .close(let code, _):
                    close(.webSocketClosed(code))
                    return false
                }
            }
        } catch let error as WebSocketError {
            server.logger.debug(
                "WebSocket protocol error",
                metadata: ["fd": "\(fd)", "status": "\(error.code)", "error": "\(error.message)"])
            close(.webSocketError(error.code, error.message))
        } catch {
            close(.protocolError)  // `feed` throws only what the closure does, and it does not
        }
    }

    override func enqueueFrame(length: Int, _ write: (inout [UInt8]) -> Void) -> Bool {
        // Before the 101 nothing but HTTP may be sent (and no frame is due: the client is not authenticated).
        guard handshake == nil else { return false }
        return enqueue {
            WebSocketFrame.encodeHeader(.binary, payloadLength: length, into: &$0)
            write(&$0)
        }
    }

    /// A goim room batch goes as the whole RAW frame in one binary message: goim's JS client unpacks op 9 itself.
    override func send(roomBatch raw: [UInt8]) -> Bool {
        send(encoded: raw)
    }

    /// The last frame in a binary message, then the close frame; before the upgrade there is no WebSocket to say
    /// them in.
    override func say(_ farewell: CloseReason.Farewell) {
        guard handshake == nil else { return }
        super.say(farewell)
        guard farewell.closesWebSocket else { return }
        enqueue { WebSocketFrame.encodeClose(farewell.webSocketStatus, reason: farewell.detail, into: &$0) }
    }

    override func openTimedOut() {
        // No complete upgrade request in time: there is no WebSocket to send ERROR in; just close.
        guard handshake == nil else { return close(CloseReason(.handshakeTimeout)) }
        super.openTimedOut()
    }
}
