extension FCMProvider {
    /// FCM's error body, `{"error":{"code":404,"message":"…","status":"NOT_FOUND","details":[{"@type":
    /// "type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}, {"@type":
    /// "type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token",…}]}]}}`, as far as
    /// classifying needs it.
    struct ErrorBody {
        /// `error.status`, the google.rpc code's name: `NOT_FOUND`, `INVALID_ARGUMENT`, …
        var status: String?
        /// The `FcmError` detail's `errorCode`: `UNREGISTERED`, `INVALID_ARGUMENT`, `QUOTA_EXCEEDED`, …
        var errorCode: String?
        /// `error.message`.
        var message: String?
        /// The `field` of each `BadRequest` detail's field violations.
        var fields: [String] = []

        init(_ body: [UInt8]) {
            guard let error = (try? JSONParser.parse(body))?["error"] else { return }
            status = error["status"]?.stringValue
            message = error["message"]?.stringValue
            for detail in error["details"]?.arrayValue ?? [] {
                if let code = detail["errorCode"]?.stringValue { errorCode = code }
                for violation in detail["fieldViolations"]?.arrayValue ?? [] {
                    if let field = violation["field"]?.stringValue { fields.append(field) }
                }
            }
        }

        /// `NOT_FOUND UNREGISTERED`, or the one of them given; nil when neither is.
        var reason: String? {
            let words = [status, errorCode == status ? nil : errorCode].compactMap { $0 }
            return words.isEmpty ? nil : words.joined(separator: " ")
        }

        /// An `INVALID_ARGUMENT` about the registration token (`message.token` named as the field at fault, or "The
        /// registration token is not a valid FCM registration token"), not about another part of the message.
        var isAboutToken: Bool {
            guard status == "INVALID_ARGUMENT" || errorCode == "INVALID_ARGUMENT" else { return false }
            if fields.contains("message.token") { return true }
            return message?.lowercased().contains("registration token") == true
        }
    }

    /// Classifies FCM's answer: its status, its `retry-after` header if any, and its body.
    ///
    /// | answer | outcome |
    /// |---|---|
    /// | 200 | delivered |
    /// | 404 `NOT_FOUND`, or `UNREGISTERED` with any status | invalid token |
    /// | 400 `INVALID_ARGUMENT` about `message.token` | invalid token |
    /// | 401 (the access token was refused), except `THIRD_PARTY_AUTH_ERROR` | retry, with a new access token |
    /// | 408, 429 `QUOTA_EXCEEDED`, 5xx (`UNAVAILABLE`, `INTERNAL`) | retry, after `retry-after` if given |
    /// | any other (`SENDER_ID_MISMATCH`, `THIRD_PARTY_AUTH_ERROR`, other `INVALID_ARGUMENT`s) | failed |
    ///
    /// `SENDER_ID_MISMATCH` (a token of another Firebase project) fails rather than removing the token: with a
    /// wrong `fcm.project_id` every token would say so, and removing them all would be a disaster to undo.
    public static func answer(status: Int, retryAfter: String? = nil, body: [UInt8]) -> ProviderAnswer {
        if (200..<300).contains(status) { return ProviderAnswer(.delivered) }
        let error = ErrorBody(body)
        let reason = error.reason
        if status == 404 || error.errorCode == "UNREGISTERED" || (status == 400 && error.isAboutToken) {
            return ProviderAnswer(.invalidToken, reason: reason ?? "NOT_FOUND")
        }
        switch status {
        case 401 where error.errorCode != "THIRD_PARTY_AUTH_ERROR":
            return ProviderAnswer(.retry(after: nil), reason: reason, renewCredentials: true)
        case 408, 429, 500..<600:
            return ProviderAnswer(.retry(after: RetryAfter.seconds(retryAfter)), reason: reason)
        default:
            let words = [reason, error.message].compactMap { $0 }.joined(separator: ": ")
            let text = "FCM \(status) \(words.isEmpty ? "(no reason)" : words)"
            return ProviderAnswer(.failed(reason: text), reason: reason)
        }
    }
}
