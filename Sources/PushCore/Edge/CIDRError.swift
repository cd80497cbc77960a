/// Text that is not an address or range: what it was, and why.
public struct CIDRError: Error, Equatable, Sendable, CustomStringConvertible {
    enum Problem: Equatable, Sendable {
        case notAnAddress
        case prefixRange(Int)
        case hostBits(String)
    }

    /// The text as given.
    public let text: String
    let problem: Problem

    init(_ text: String, _ problem: Problem) {
        self.text = text
        self.problem = problem
    }

    /// `"10.0.0.1/8" has bits set after the prefix; the range is 10.0.0.0/8`, and the like.
    public var description: String {
        switch problem {
        case .notAnAddress:
            "\"\(text)\" is not an IPv4 or IPv6 address or range (a.b.c.d, a.b.c.d/n, x:x::x, x:x::/n)"
        case .prefixRange(let limit):
            "\"\(text)\" has a bad prefix length: expected 0 to \(limit) after the /"
        case .hostBits(let network):
            "\"\(text)\" has bits set after the prefix; the range is \(network)"
        }
    }
}
