import Testing

@testable import PushCore

/// Builds raw frame bytes by hand, so a bad header can be made on purpose.
private func rawFrame(length: UInt32? = nil, headerLength: UInt16 = 16, version: UInt16 = 1, op: UInt32, seq: UInt32 = 0, body: [UInt8] = []) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.appendBigEndian(length ?? UInt32(16 + body.count))
    bytes.appendBigEndian(headerLength)
    bytes.appendBigEndian(version)
    bytes.appendBigEndian(op)
    bytes.appendBigEndian(seq)
    return bytes + body
}

/// Feeds `chunks` in order and returns the frames, or the first error.
private func decode(_ chunks: [[UInt8]], maxFrame: Int = 65_536) -> ([Frame], ProtocolError?) {
    var decoder = FrameDecoder()
    var frames: [Frame] = []
    do {
        for chunk in chunks {
            try chunk.withUnsafeBytes { try decoder.feed($0, maxFrame: maxFrame) { frames.append($0); return true } }
        }
    } catch let error as ProtocolError {
        return (frames, error)
    } catch {
        Issue.record("unexpected error \(error)")
    }
    return (frames, nil)
}

@Suite struct FrameDecoderTests {
    static let sample = [
        Frame(.heartbeat, sequence: 1),
        Frame(.auth, sequence: 2, text: #"{"mid":42,"key":"phone"}"#),
        Frame(Operation(1000), sequence: 7, body: Array(repeating: 0xAB, count: 300)),
    ]

    /// An encoded frame decodes to itself.
    @Test(arguments: sample)
    func roundTrip(frame: Frame) {
        let (frames, error) = decode([frame.encoded])
        #expect(error == nil)
        #expect(frames == [frame])
    }

    /// Header fields land at the offsets of SPEC §2, big-endian.
    @Test func wireLayout() {
        let bytes = Frame(Operation(0x0102_0304), sequence: 0x0A0B_0C0D, body: [9, 9]).encoded
        #expect(bytes == [0, 0, 0, 18, 0, 16, 0, 1, 1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D, 9, 9])
    }

    /// Three frames coalesced in one read are split apart, in order.
    @Test func coalesced() {
        let stream = Self.sample.flatMap(\.encoded)
        let (frames, error) = decode([stream])
        #expect(error == nil)
        #expect(frames == Self.sample)
    }

    /// The stream cut at every byte position into two reads gives the same frames.
    @Test func splitAtEveryByte() {
        let stream = Self.sample.flatMap(\.encoded)
        for cut in 0...stream.count {
            let (frames, error) = decode([Array(stream[..<cut]), Array(stream[cut...])])
            #expect(error == nil, "cut at \(cut)")
            #expect(frames == Self.sample, "cut at \(cut)")
        }
    }

    /// One byte per read, and empty reads in between.
    @Test func oneByteAtATime() {
        let stream = Self.sample.flatMap(\.encoded)
        let chunks = stream.flatMap { [[$0], []] }
        let (frames, error) = decode(chunks)
        #expect(error == nil)
        #expect(frames == Self.sample)
    }

    /// Random chunk sizes, many seeds.
    @Test(arguments: 1...20)
    func randomChunks(seed: Int) {
        var rng = SplitMix(seed: UInt64(seed))
        let stream = (0..<10).flatMap { _ in Self.sample.flatMap(\.encoded) }
        var chunks: [[UInt8]] = []
        var offset = 0
        while offset < stream.count {
            let size = min(Int(rng.next() % 97), stream.count - offset)
            chunks.append(Array(stream[offset..<offset + size]))
            offset += size
        }
        let (frames, error) = decode(chunks)
        #expect(error == nil)
        #expect(frames.count == 30)
        #expect(Array(frames.prefix(3)) == Self.sample)
    }

    /// A partial frame is held; between frames no buffer is kept.
    @Test func buffersOnlyPartialFrames() throws {
        var decoder = FrameDecoder()
        let bytes = Frame(.heartbeat).encoded
        try Array(bytes[..<5]).withUnsafeBytes { try decoder.feed($0) { _ in true } }
        #expect(decoder.hasPartialFrame)
        try Array(bytes[5...]).withUnsafeBytes { try decoder.feed($0) { _ in true } }
        #expect(!decoder.hasPartialFrame)
        #expect(decoder.pending.capacity == 0)
    }

    /// Returning false from the callback stops decoding: later frames are not delivered.
    @Test func stopsWhenAsked() throws {
        var decoder = FrameDecoder()
        var count = 0
        try Self.sample.flatMap(\.encoded).withUnsafeBytes {
            try decoder.feed($0) { _ in
                count += 1
                return false
            }
        }
        #expect(count == 1)
    }

    struct Malformed: CustomTestStringConvertible, Sendable {
        let name: String
        let bytes: [UInt8]
        let code: String
        var testDescription: String { name }
    }

    /// Every protocol violation of SPEC §2 is caught, whole or arriving a byte at a time.
    @Test(arguments: [
        Malformed(name: "length below header", bytes: rawFrame(length: 15, op: 2), code: "bad_length"),
        Malformed(name: "length zero", bytes: [0, 0, 0, 0], code: "bad_length"),
        Malformed(name: "header length 12", bytes: rawFrame(headerLength: 12, op: 2), code: "bad_header"),
        Malformed(name: "header length 0", bytes: rawFrame(headerLength: 0, op: 2), code: "bad_header"),
        Malformed(name: "over max_frame", bytes: rawFrame(length: 65_537, op: 1000), code: "frame_too_large"),
        Malformed(name: "length 4 GiB", bytes: [0xFF, 0xFF, 0xFF, 0xFF], code: "frame_too_large"),
        Malformed(name: "good frame then bad", bytes: Frame(.heartbeat).encoded + rawFrame(headerLength: 17, op: 2), code: "bad_header"),
    ])
    func malformed(_ fixture: Malformed) {
        let whole = decode([fixture.bytes])
        #expect(whole.1?.code == fixture.code)
        let bytewise = decode(fixture.bytes.map { [$0] })
        #expect(bytewise.1?.code == fixture.code)
        #expect(whole.1?.isFatal == true)
    }

    /// A frame of exactly max_frame bytes passes; one more does not.
    @Test func maxFrameBoundary() {
        let atLimit = Frame(Operation(1000), body: Array(repeating: 1, count: 100 - 16)).encoded
        #expect(decode([atLimit], maxFrame: 100).1 == nil)
        let over = Frame(Operation(1000), body: Array(repeating: 1, count: 101 - 16)).encoded
        #expect(decode([over], maxFrame: 100).1?.code == "frame_too_large")
    }

    /// Any version is accepted.
    @Test func otherVersions() {
        let (frames, error) = decode([rawFrame(version: 7, op: 2, seq: 5)])
        #expect(error == nil)
        #expect(frames == [Frame(.heartbeat, sequence: 5)])
    }
}

/// A small deterministic generator for chunk sizes.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
