extension StringProtocol {
    /// The text without leading and trailing spaces (only U+0020: header values and operation lists).
    public var trimmingSpaces: SubSequence {
        var text = self[...]
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return text
    }
}
