/// The header a load balancer writes before a client's first byte under the PROXY protocol, versions 1 (a text
/// line) and 2 (binary), as HAProxy specifies it: <https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>.
///
/// The parser is incremental without keeping state: the caller hands it every byte read so far, gets `.needMore`
/// until the header is complete, then `.header` with its length; the bytes after it are the client's own. It
/// decides as early as it can: a first byte that starts neither version, a wrong v2 signature or a v1 line with a
/// byte that is not text is `.invalid` at once, so a client that connects without a load balancer is closed
/// without waiting for its handshake timeout. It never asks for more than `maxLength` bytes.
///
/// Only the source address and port are used; the destination is checked (v1) or skipped (v2), and v2 TLVs are
/// walked to check they fill the header exactly, then ignored (their CRC32C included).
public enum ProxyHeader {
    /// What the bytes read so far hold.
    public enum Result: Equatable, Sendable {
        /// A header may still come: read more and call again with all the bytes.
        case needMore
        /// A complete header of `length` bytes. `source` and `port` are the client's; both nil for a v2 LOCAL
        /// command (the balancer's own health check), v1 `UNKNOWN`, or a v2 family with no IP address
        /// (`AF_UNSPEC`, `AF_UNIX`): the connection's peer address stands.
        case header(source: IPAddress?, port: UInt16?, length: Int)
        /// Not a PROXY header, or a broken one: close the connection. The reason is for the log.
        case invalid(String)
    }

    /// The longest v1 line, `\r\n` included (the specification's limit).
    public static let maxV1Length = 107
    /// The longest v2 header accepted: the 16 fixed bytes and up to 2048 of addresses and TLVs. The length field
    /// would allow 65535, but the largest address block is 216 bytes (AF_UNIX) and the TLVs real balancers send
    /// (AWS's VPC endpoint, GCP's and Azure's link ids, HAProxy's ALPN, authority and TLS fields) fit far inside
    /// this: a stranger must not make every connection buffer 64 KiB before it is known to be a balancer.
    public static let maxV2Length = 16 + 2048
    /// The most bytes a caller ever needs to buffer before `parse` decides.
    public static let maxLength = maxV2Length

    /// The 12 bytes that open a v2 header: `\r\n\r\n\0\r\nQUIT\n`.
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix = Array("PROXY ".utf8)

    /// Parses the start of a connection: every byte read so far, from the first.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Result {
        guard let first = bytes.first else { return .needMore }
        switch first {
        case v1Prefix[0]: return parseV1(bytes)
        case v2Signature[0]: return parseV2(bytes)
        default: return .invalid("the connection does not start with a PROXY header")
        }
    }

    /// Parses the start of a connection held in an array.
    public static func parse(_ bytes: [UInt8]) -> Result {
        bytes.withUnsafeBytes { parse($0) }
    }

    // MARK: - Version 1

    /// `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`, `PROXY TCP6 …`, or `PROXY UNKNOWN<anything>\r\n`.
    private static func parseV1(_ bytes: UnsafeRawBufferPointer) -> Result {
        let prefix = min(bytes.count, v1Prefix.count)
        guard bytes.prefix(prefix).elementsEqual(v1Prefix.prefix(prefix)) else {
            return .invalid("the connection does not start with a PROXY header")
        }
        var end: Int? = nil  // index of the \n
        for index in 0..<min(bytes.count, maxV1Length) {
            let byte = bytes[index]
            if byte == 0x0D {
                if index + 1 < bytes.count, bytes[index + 1] != 0x0A { return .invalid("PROXY v1: CR without LF") }
            } else if byte == 0x0A {
                guard index > 0, bytes[index - 1] == 0x0D else { return .invalid("PROXY v1: LF without CR") }
                end = index
                break
            } else if byte < 0x20 || byte > 0x7E {
                return .invalid("PROXY v1: a byte that is not printable ASCII in the line")
            }
        }
        guard let end else {
            if bytes.count >= maxV1Length { return .invalid("PROXY v1: no CRLF within \(maxV1Length) bytes") }
            return .needMore
        }
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[v1Prefix.count..<(end - 1)]), as: UTF8.self)
        let length = end + 1
        if line == "UNKNOWN" || line.hasPrefix("UNKNOWN ") {
            // The specification: the receiver must ignore anything after UNKNOWN up to the CRLF.
            return .header(source: nil, port: nil, length: length)
        }
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 5 else {
            return .invalid("PROXY v1: expected TCP4|TCP6 <source> <destination> <source port> <destination port>")
        }
        let isV6: Bool
        switch fields[0] {
        case "TCP4": isV6 = false
        case "TCP6": isV6 = true
        default: return .invalid("PROXY v1: unknown protocol \"\(fields[0])\"; expected TCP4, TCP6 or UNKNOWN")
        }
        guard let source = address(fields[1], isV6: isV6), address(fields[2], isV6: isV6) != nil else {
            return .invalid("PROXY v1: an address that is not \(isV6 ? "IPv6" : "IPv4")")
        }
        guard let sourcePort = port(fields[3]), port(fields[4]) != nil else {
            return .invalid("PROXY v1: a port that is not a number from 0 to 65535")
        }
        return .header(source: source, port: sourcePort, length: length)
    }

    /// An address of the family the line names: IPv6 text for TCP6 (an IPv4-mapped one reads as IPv4), dotted
    /// IPv4 for TCP4.
    private static func address(_ text: Substring, isV6: Bool) -> IPAddress? {
        guard text.contains(":") == isV6 else { return nil }
        return IPAddress(text)
    }

    /// 1 to 5 decimal digits, at most 65535.
    private static func port(_ text: Substring) -> UInt16? {
        guard (1...5).contains(text.utf8.count), text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
            return nil
        }
        return UInt16(text)
    }

    // MARK: - Version 2

    /// Command nibble of byte 12.
    private static let local: UInt8 = 0x0
    private static let proxy: UInt8 = 0x1

    /// The 16 fixed bytes: signature, version and command, family and transport, length (big-endian); then
    /// the addresses for the family, then TLVs (type, 2-byte length, value).
    private static func parseV2(_ bytes: UnsafeRawBufferPointer) -> Result {
        let signature = min(bytes.count, v2Signature.count)
        guard bytes.prefix(signature).elementsEqual(v2Signature.prefix(signature)) else {
            return .invalid("the connection does not start with a PROXY header")
        }
        if bytes.count > 12 {
            let versionCommand = bytes[12]
            guard versionCommand >> 4 == 2 else { return .invalid("PROXY v2: unknown version \(versionCommand >> 4)") }
            guard versionCommand & 0xF == local || versionCommand & 0xF == proxy else {
                return .invalid("PROXY v2: unknown command \(versionCommand & 0xF)")
            }
        }
        if bytes.count > 13, bytes[12] & 0xF == proxy, addressLength(family: bytes[13]) == nil {
            return .invalid("PROXY v2: unknown address family and transport 0x\(String(bytes[13], radix: 16))")
        }
        guard bytes.count >= 16 else { return .needMore }
        let isLocal = bytes[12] & 0xF == local
        let family = bytes[13]
        let length = 16 + (Int(bytes[14]) << 8 | Int(bytes[15]))
        guard length <= maxV2Length else {
            return .invalid("PROXY v2: a \(length)-byte header, over the \(maxV2Length) accepted")
        }
        if isLocal {
            // The balancer's own connection: the specification says to discard the block, family included.
            return bytes.count < length ? .needMore : .header(source: nil, port: nil, length: length)
        }
        let addresses = addressLength(family: family)!
        guard 16 + addresses <= length else {
            return .invalid("PROXY v2: \(length - 16) bytes after the header, too few for the addresses")
        }
        if family & 0xF == 0x2 {
            return .invalid("PROXY v2: a datagram (UDP) connection on a stream listener")
        }
        guard bytes.count >= length else { return .needMore }
        guard tlvsFit(UnsafeRawBufferPointer(rebasing: bytes[(16 + addresses)..<length])) else {
            return .invalid("PROXY v2: a TLV runs past the end of the header")
        }
        switch family >> 4 {
        case 0x1:
            let source = IPAddress(bytes: UnsafeRawBufferPointer(rebasing: bytes[16..<20]))
            return .header(source: source, port: UInt16(bytes[24]) << 8 | UInt16(bytes[25]), length: length)
        case 0x2:
            let source = IPAddress(bytes: UnsafeRawBufferPointer(rebasing: bytes[16..<32]))
            return .header(source: source, port: UInt16(bytes[48]) << 8 | UInt16(bytes[49]), length: length)
        default:
            // AF_UNSPEC (the balancer does not know) or AF_UNIX: no IP address to take, the peer's stands.
            return .header(source: nil, port: nil, length: length)
        }
    }

    /// Bytes of the address block for a family and transport byte, nil for a value the specification does not
    /// define (which a receiver must reject): UNSPEC 0x00, INET 0x11/0x12, INET6 0x21/0x22, UNIX 0x31/0x32.
    private static func addressLength(family: UInt8) -> Int? {
        switch family {
        case 0x00: 0
        case 0x11, 0x12: 12
        case 0x21, 0x22: 36
        case 0x31, 0x32: 216
        default: nil
        }
    }

    /// Whether `bytes` is a whole number of TLVs: 1 type byte, 2 length bytes (big-endian), the value.
    private static func tlvsFit(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        while index < bytes.count {
            guard index + 3 <= bytes.count else { return false }
            index += 3 + (Int(bytes[index + 1]) << 8 | Int(bytes[index + 2]))
        }
        return index == bytes.count
    }
}
