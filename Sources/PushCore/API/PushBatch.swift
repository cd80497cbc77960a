/// A `POST /v1/push/batch` body: `{"pushes":[…]}`, each item a `/v1/push` body. A bad item is answered in its
/// place and does not spoil the others.
public struct PushBatch: Sendable {
    /// Most pushes in one batch.
    public static let maxItems = 500

    /// Each item, parsed or refused, in order.
    public var items: [Result<PushRequest, APIError>]

    public init(body: [UInt8]) throws(APIError) {
        let pushes: [Range<Int>]
        do {
            let members = try JSONParser.parseObjectWithRanges(body)
            guard let range = members["pushes"]?.range else { throw APIError.badRequest("pushes is required") }
            pushes = try JSONParser.arrayElementRanges(body, in: range)
        } catch let error as APIError {
            throw error
        } catch {
            throw .badRequest("body must be {\"pushes\":[…]}: \(error)")
        }
        guard !pushes.isEmpty, pushes.count <= Self.maxItems else {
            throw .badRequest("pushes must hold 1 to \(Self.maxItems) pushes")
        }
        items = pushes.map { range in
            do throws(APIError) {
                return .success(try PushRequest(body: Array(body[range])))
            } catch {
                return .failure(error)
            }
        }
    }
}
