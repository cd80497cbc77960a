extension JSONWriter {
    /// Writes a parsed value back as compact JSON: numbers exactly as they were written, strings escaped again,
    /// members and elements in document order (a repeated name is written each time, as parsed).
    public mutating func value(_ json: JSONValue) {
        switch json {
        case .null: null()
        case .bool(let flag): value(flag)
        case .number(let text): raw(text.utf8)
        case .string(let text): value(text)
        case .array(let elements):
            array { writer in
                for element in elements { writer.value(element) }
            }
        case .object(let members):
            object { writer in
                for (name, member) in members {
                    writer.key(name)
                    writer.value(member)
                }
            }
        }
    }

    /// Starts member `name` and writes `json` as its value.
    public mutating func field(_ name: String, _ json: JSONValue) {
        key(name)
        value(json)
    }
}

extension JSONValue {
    /// The value as compact JSON text, as `JSONWriter.value(_:)` writes it.
    public var jsonBytes: [UInt8] {
        var writer = JSONWriter()
        writer.value(self)
        return writer.bytes
    }
}
