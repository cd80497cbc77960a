internal import COpenSSL

/// Standard and URL-safe base64 (RFC 4648), for `payload_b64`, device tokens and the WebSocket handshake, over
/// OpenSSL's `EVP_EncodeBlock`/`EVP_DecodeBlock`.
///
/// `EVP_DecodeBlock` alone is looser and differently strict than what callers rely on (it skips leading and
/// trailing whitespace, takes `=` inside a quantum as zero bits, counts padding in its length, needs whole quanta
/// and knows one alphabet), so ``decode(_:)`` checks the text itself first and hands OpenSSL only canonical
/// standard-alphabet quanta.
public enum Base64 {
    /// Encodes; `url` selects the URL-safe alphabet without padding.
    public static func encode<Bytes: Collection<UInt8>>(_ bytes: Bytes, url: Bool = false) -> String {
        if let text = bytes.withContiguousStorageIfAvailable({ encode(buffer: $0, url: url) }) { return text }
        return Array(bytes).withUnsafeBufferPointer { encode(buffer: $0, url: url) }
    }

    /// Input bytes per `EVP_EncodeBlock` call: a multiple of 3 (no padding inside), far below `Int32.max / 4`.
    private static let encodeChunk = 3 << 20

    private static func encode(buffer: UnsafeBufferPointer<UInt8>, url: Bool) -> String {
        let padded = (buffer.count + 2) / 3 * 4
        guard padded > 0 else { return "" }
        // One byte more than the text: EVP_EncodeBlock ends what it writes with a NUL.
        return String(unsafeUninitializedCapacity: padded + 1) { text in
            var written = 0
            var offset = 0
            while offset < buffer.count {
                let count = min(encodeChunk, buffer.count - offset)
                written += Int(
                    EVP_EncodeBlock(text.baseAddress! + written, buffer.baseAddress! + offset, Int32(count)))
                offset += count
            }
            guard url else { return written }
            // URL-safe: `-` and `_` for `+` and `/`, and no padding.
            while written > 0, text[written - 1] == UInt8(ascii: "=") { written -= 1 }
            for index in 0..<written {
                switch text[index] {
                case UInt8(ascii: "+"): text[index] = UInt8(ascii: "-")
                case UInt8(ascii: "/"): text[index] = UInt8(ascii: "_")
                default: break
                }
            }
            return written
        }
    }

    /// Decodes either alphabet (even mixed), with or without padding (at most two `=`, only at the end, not
    /// checked against the length); nil on any other character, including whitespace, and on a lone last
    /// character (a leftover sextet cannot be a whole byte). Bits past the last whole byte are ignored.
    public static func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { decode(utf8: $0) }
    }

    private static func decode(utf8: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        // What EVP_DecodeBlock cannot be trusted to refuse, and what it must be given differently.
        var data = 0
        var padding = 0
        var urlSafe = false
        for char in utf8 {
            switch char {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                break
            case UInt8(ascii: "-"), UInt8(ascii: "_"):
                urlSafe = true
            case UInt8(ascii: "="):
                padding += 1
                continue
            default:
                return nil
            }
            guard padding == 0 else { return nil }
            data += 1
        }
        guard data % 4 != 1, padding <= 2 else { return nil }
        guard data > 0 else { return [] }

        // EVP_DecodeBlock counts the padding's zero bytes in its length: the last quantum gives 3 - missing.
        let missing = (4 - data % 4) % 4
        let whole = data - data % 4
        return [UInt8](unsafeUninitializedCapacity: (data + missing) / 4 * 3) { out, count in
            var written = 0
            var done = 0
            let text = utf8.baseAddress!
            if !urlSafe {
                // The usual case: whole quanta straight from the text, no copy.
                written = decodeBlock(text, whole, into: out.baseAddress!)
                done = whole
            }
            // The rest (URL-safe text, the last partial quantum) through 1 KiB on the stack (a multiple of 4, under
            // Swift's limit for stack allocation), in standard alphabet and padded: no allocation at any length.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { scratch in
                while done < data {
                    let take = min(1024, data - done)
                    let padded = (take + 3) / 4 * 4
                    for index in 0..<take {
                        switch text[done + index] {
                        case UInt8(ascii: "-"): scratch[index] = UInt8(ascii: "+")
                        case UInt8(ascii: "_"): scratch[index] = UInt8(ascii: "/")
                        case let char: scratch[index] = char
                        }
                    }
                    for index in take..<padded { scratch[index] = UInt8(ascii: "=") }
                    let source = UnsafePointer(scratch.baseAddress!)
                    written += decodeBlock(source, padded, into: out.baseAddress! + written)
                    done += take
                }
            }
            count = max(0, written - missing)
        }
    }

    /// Characters per `EVP_DecodeBlock` call: a multiple of 4, far below `Int32.max`.
    private static let decodeChunk = 4 << 20

    /// Decodes `count` characters of checked, padded standard-alphabet quanta from `text` (a multiple of 4); the
    /// bytes written, padding included.
    private static func decodeBlock(
        _ text: UnsafePointer<UInt8>, _ count: Int, into out: UnsafeMutablePointer<UInt8>
    ) -> Int {
        var written = 0
        var done = 0
        while done < count {
            let chunk = min(decodeChunk, count - done)
            let result = EVP_DecodeBlock(out + written, text + done, Int32(chunk))
            // Cannot fail on checked input; if it did, fewer bytes is safer than uninitialized ones.
            guard result >= 0 else { return written }
            written += Int(result)
            done += chunk
        }
        return written
    }
}
