// Helpers for the tests of the PROXY protocol and the client limits (SPEC §8): PROXY v1 and v2 headers as HAProxy
// writes them (a header may claim any source address; the connection itself is always to 127.0.0.1), and clients
// that send one first.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// PROXY protocol headers (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>).
enum Proxy {
    /// The 12 bytes that open a v2 header.
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// `PROXY TCP4 <source> 198.51.100.1 <port> 3101\r\n` (TCP6 and `2001:db8::1` for an IPv6 source).
    static func v1(_ source: String, port: UInt16 = 40_001) -> [UInt8] {
        let v6 = source.contains(":")
        let line = "PROXY \(v6 ? "TCP6" : "TCP4") \(source) \(v6 ? "2001:db8::1" : "198.51.100.1") \(port) 3101\r\n"
        return Array(line.utf8)
    }

    /// A v2 PROXY command over TCP from `source` (IPv4 or IPv6) to 198.51.100.1 or 2001:db8::1, with `tlvs`
    /// (already encoded) after the addresses.
    static func v2(_ source: String, port: UInt16 = 40_002, tlvs: [UInt8] = []) -> [UInt8] {
        let v6 = source.contains(":")
        let addresses =
            bytes(source, v6: v6) + bytes(v6 ? "2001:db8::1" : "198.51.100.1", v6: v6) + be16(port) + be16(3101)
        let block = addresses + tlvs
        return signature + [0x21, v6 ? 0x21 : 0x11] + be16(UInt16(block.count)) + block
    }

    /// A v2 LOCAL command: the balancer's own connection (a health check); the socket's peer stands.
    static let v2Local: [UInt8] = signature + [0x20, 0x00, 0x00, 0x00]

    private static func bytes(_ address: String, v6: Bool) -> [UInt8] {
        var raw = [UInt8](repeating: 0, count: v6 ? 16 : 4)
        let parsed = raw.withUnsafeMutableBytes { inet_pton(v6 ? AF_INET6 : AF_INET, address, $0.baseAddress) }
        precondition(parsed == 1, "not an address: \(address)")
        return raw
    }

    private static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
}

extension WireClient {
    /// A client of `gateway`'s TCP listener (from `source` when given) that sends `header` first.
    static func connect(
        _ gateway: GatewayProcess, proxy header: [UInt8], from source: String? = nil
    ) async throws -> WireClient {
        let port = gateway.tcpPort
        let client = try await offload { WireClient(socket: try TestSocket(port: port, timeout: 5, source: source)) }
        try client.sendRaw(header)
        return client
    }

    /// A client behind a load balancer that says it comes from `address` (a PROXY v2 header).
    static func connect(_ gateway: GatewayProcess, claiming address: String) async throws -> WireClient {
        try await connect(gateway, proxy: Proxy.v2(address))
    }
}

extension GatewayProcess {
    /// `conns` lines of `user` (without `total`).
    func conns(_ user: String) async throws -> [String] {
        try await admin("conns \(user)").filter { $0.contains("uid=") }
    }

    /// The `addr=` field of `user`'s one connection in `conns`.
    func connAddress(_ user: String) async throws -> String? {
        let fields = try await conns(user).first?.split(separator: " ") ?? []
        return fields.first { $0.hasPrefix("addr=") }.map { String($0.dropFirst(5)) }
    }
}

/// The settings of a gateway behind a load balancer.
let behindProxy = ["PUSHGW_SERVER_PROXY_PROTOCOL": "true"]
