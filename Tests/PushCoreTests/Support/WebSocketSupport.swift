// Helpers of the WebSocket handshake and frame tests: masked client frames, chunkings, a binary message's payload.
import Testing

@testable import PushCore

/// A client frame, masked with a fixed key.
func clientFrame(
    _ opcode: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, mask: UInt32 = 0x37FA_213D
) -> [UInt8] {
    var out: [UInt8] = []
    WebSocketFrame.encodeMasked(opcode, payload: payload, mask: mask, fin: fin, rsv: rsv, into: &out)
    return out
}

/// `bytes` cut at `cut`: two chunks.
func split(_ bytes: [UInt8], at cut: Int) -> [[UInt8]] {
    [Array(bytes[..<cut]), Array(bytes[cut...])]
}

/// Some pushgw frames, as a binary message carries them.
let pushgwFrames: [UInt8] =
    Frame(.auth, sequence: 1, text: #"{"mid":7,"key":"web"}"#).encoded + Frame(.heartbeat, sequence: 2).encoded
