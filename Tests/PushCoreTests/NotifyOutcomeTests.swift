import Testing

@testable import PushCore

/// One provider answer and what it must come to.
struct AnswerCase: Sendable, CustomTestStringConvertible {
    let status: Int
    let body: String
    let retryAfter: String?
    let outcome: ProviderOutcome
    let renew: Bool
    let reason: String?

    init(
        _ status: Int, _ body: String, retryAfter: String? = nil, _ outcome: ProviderOutcome, renew: Bool = false,
        reason: String? = nil
    ) {
        self.status = status
        self.body = body
        self.retryAfter = retryAfter
        self.outcome = outcome
        self.renew = renew
        self.reason = reason
    }

    /// An answer without a body.
    init(_ status: Int, _ outcome: ProviderOutcome) {
        self.init(status, "", outcome)
    }

    /// An APNs answer with body `{"reason":<reason>}`.
    static func apns(
        _ status: Int, _ reason: String, retryAfter: String? = nil, _ outcome: ProviderOutcome, renew: Bool = false
    ) -> AnswerCase {
        AnswerCase(
            status, #"{"reason":"\#(reason)"}"#, retryAfter: retryAfter, outcome, renew: renew, reason: reason)
    }

    var testDescription: String { "\(status) \(body.prefix(60))" }
}

/// An FCM error body with the given status, message and details.
private func fcmError(_ code: Int, _ status: String, _ message: String, errorCode: String? = nil, field: String? = nil)
    -> String
{
    var details: [String] = []
    if let errorCode {
        details.append(#"{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"\#(errorCode)"}"#)
    }
    if let field {
        details.append(
            #"{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"\#(field)","#
                + #""description":"Invalid value"}]}"#)
    }
    return #"{"error":{"code":\#(code),"message":"\#(message)","status":"\#(status)","details":["#
        + details.joined(separator: ",") + "]}}"
}

@Suite("Notifications: provider answers and retries")
struct NotifyOutcomeTests {
    /// APNs: 200 delivered; 410 and the token reasons of 400 invalid; an expired provider token retried with a new
    /// one; 429 and 5xx retried (after Retry-After when given); the rest failed for good.
    @Test(arguments: [
        AnswerCase(200, .delivered),
        AnswerCase(410, #"{"reason":"Unregistered","timestamp":1700000000000}"#, .invalidToken, reason: "Unregistered"),
        .apns(410, "ExpiredToken", .invalidToken),
        .apns(400, "BadDeviceToken", .invalidToken),
        .apns(400, "Unregistered", .invalidToken),
        .apns(400, "DeviceTokenNotForTopic", .invalidToken),
        .apns(400, "BadCollapseId", .failed(reason: "APNs 400 BadCollapseId")),
        .apns(400, "MissingTopic", .failed(reason: "APNs 400 MissingTopic")),
        AnswerCase(400, "", .failed(reason: "APNs 400 (no reason)")),
        .apns(403, "ExpiredProviderToken", .retry(after: nil), renew: true),
        .apns(403, "InvalidProviderToken", .failed(reason: "APNs 403 InvalidProviderToken")),
        .apns(404, "BadPath", .failed(reason: "APNs 404 BadPath")),
        .apns(405, "MethodNotAllowed", .failed(reason: "APNs 405 MethodNotAllowed")),
        .apns(413, "PayloadTooLarge", .failed(reason: "APNs 413 PayloadTooLarge")),
        .apns(429, "TooManyRequests", retryAfter: "30", .retry(after: 30)),
        .apns(429, "TooManyProviderTokenUpdates", .retry(after: nil)),
        .apns(500, "InternalServerError", .retry(after: nil)),
        .apns(503, "ServiceUnavailable", retryAfter: "120", .retry(after: 120)),
        .apns(503, "Shutdown", .retry(after: nil)),
    ])
    func apns(_ example: AnswerCase) {
        let answer = APNsProvider.answer(
            status: example.status, retryAfter: example.retryAfter, body: Array(example.body.utf8))
        #expect(answer == ProviderAnswer(example.outcome, reason: example.reason, renewCredentials: example.renew))
    }

    /// FCM: 200 delivered; 404 and UNREGISTERED invalid, as an INVALID_ARGUMENT about the token; a refused access
    /// token retried with a new one; quota and 5xx retried; SENDER_ID_MISMATCH and the rest failed.
    @Test(arguments: [
        AnswerCase(200, #"{"name":"projects/p/messages/0:1"}"#, .delivered),
        AnswerCase(
            404, fcmError(404, "NOT_FOUND", "Requested entity was not found.", errorCode: "UNREGISTERED"),
            .invalidToken, reason: "NOT_FOUND UNREGISTERED"),
        AnswerCase(404, "", .invalidToken, reason: "NOT_FOUND"),
        AnswerCase(
            400, fcmError(400, "INVALID_ARGUMENT", "x", errorCode: "UNREGISTERED"), .invalidToken,
            reason: "INVALID_ARGUMENT UNREGISTERED"),
        AnswerCase(
            400,
            fcmError(
                400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
                errorCode: "INVALID_ARGUMENT"), .invalidToken, reason: "INVALID_ARGUMENT"),
        AnswerCase(
            400, fcmError(400, "INVALID_ARGUMENT", "Invalid value", field: "message.token"), .invalidToken,
            reason: "INVALID_ARGUMENT"),
        AnswerCase(
            400,
            fcmError(
                400, "INVALID_ARGUMENT", "Invalid value at 'message.data[0].value'", field: "message.data[0].value"),
            .failed(reason: "FCM 400 INVALID_ARGUMENT: Invalid value at 'message.data[0].value'"),
            reason: "INVALID_ARGUMENT"),
        AnswerCase(
            403, fcmError(403, "PERMISSION_DENIED", "SenderId mismatch", errorCode: "SENDER_ID_MISMATCH"),
            .failed(reason: "FCM 403 PERMISSION_DENIED SENDER_ID_MISMATCH: SenderId mismatch"),
            reason: "PERMISSION_DENIED SENDER_ID_MISMATCH"),
        AnswerCase(
            401, fcmError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
            .retry(after: nil), renew: true, reason: "UNAUTHENTICATED"),
        AnswerCase(
            401, fcmError(401, "UNAUTHENTICATED", "APNs auth failed", errorCode: "THIRD_PARTY_AUTH_ERROR"),
            .failed(reason: "FCM 401 UNAUTHENTICATED THIRD_PARTY_AUTH_ERROR: APNs auth failed"),
            reason: "UNAUTHENTICATED THIRD_PARTY_AUTH_ERROR"),
        AnswerCase(
            429, fcmError(429, "RESOURCE_EXHAUSTED", "Quota exceeded", errorCode: "QUOTA_EXCEEDED"), retryAfter: "60",
            .retry(after: 60), reason: "RESOURCE_EXHAUSTED QUOTA_EXCEEDED"),
        AnswerCase(
            503, fcmError(503, "UNAVAILABLE", "down", errorCode: "UNAVAILABLE"), .retry(after: nil),
            reason: "UNAVAILABLE"),
        AnswerCase(
            500, fcmError(500, "INTERNAL", "oops", errorCode: "INTERNAL"), .retry(after: nil), reason: "INTERNAL"),
        AnswerCase(502, "<html>Bad Gateway</html>", .retry(after: nil)),
        AnswerCase(400, "garbage", .failed(reason: "FCM 400 (no reason)")),
    ])
    func fcm(_ example: AnswerCase) {
        let answer = FCMProvider.answer(
            status: example.status, retryAfter: example.retryAfter, body: Array(example.body.utf8))
        #expect(answer == ProviderAnswer(example.outcome, reason: example.reason, renewCredentials: example.renew))
    }

    /// The webhook by status: 2xx delivered, 410 invalid, 408/429/5xx retried, the rest failed.
    @Test(arguments: [
        (200, nil, ProviderOutcome.delivered), (204, nil, .delivered), (410, nil, .invalidToken),
        (429, "5", .retry(after: 5)), (503, nil, .retry(after: nil)), (408, nil, .retry(after: nil)),
        (400, nil, .failed(reason: "webhook answered 400")), (301, nil, .failed(reason: "webhook answered 301")),
        (404, nil, .failed(reason: "webhook answered 404")),
    ] as [(Int, String?, ProviderOutcome)])
    func webhook(_ status: Int, _ retryAfter: String?, _ outcome: ProviderOutcome) {
        #expect(WebhookProvider.answer(status: status, retryAfter: retryAfter).outcome == outcome)
    }

    /// No answer at all is worth a retry after the backoff.
    @Test func connectionFailure() {
        #expect(ProviderOutcome.connectionFailed == .retry(after: nil))
    }

    /// `Retry-After` in seconds; a date or anything else is ignored.
    @Test(arguments: [
        ("120", 120), (" 5 ", 5), ("0", 0), ("Wed, 21 Oct 2015 07:28:00 GMT", nil), ("-1", nil), ("1.5", nil),
        ("", nil), ("99999999999999999999999", nil),
    ] as [(String, Double?)])
    func retryAfter(_ text: String, _ seconds: Double?) {
        #expect(RetryAfter.seconds(text) == seconds)
    }

    // MARK: - Backoff

    /// Ceilings double from the base up to the cap.
    @Test func ceilings() {
        let policy = RetryPolicy(base: 1, cap: 300, maxAttempts: 20)
        #expect((1...11).map { policy.ceiling(afterAttempt: $0) } == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300])
        #expect(RetryPolicy(base: 0.5, cap: 10, maxAttempts: 3).ceiling(afterAttempt: 3) == 2)
        #expect(policy.ceiling(afterAttempt: 10_000) == 300)
    }

    /// Full jitter: every delay between 0 and the attempt's ceiling, spread over that range.
    @Test func fullJitter() throws {
        let policy = RetryPolicy(base: 1, cap: 300, maxAttempts: 8)
        var generator = SplitMix64(seed: 42)
        for attempts in 1...7 {
            let ceiling = policy.ceiling(afterAttempt: attempts)
            let delays = try (0..<500).map { _ in
                try #require(policy.delay(afterAttempt: attempts, using: &generator))
            }
            #expect(delays.allSatisfy { $0 >= 0 && $0 <= ceiling })
            #expect(delays.min()! < ceiling * 0.1 && delays.max()! > ceiling * 0.9, "attempt \(attempts)")
        }
    }

    /// After `max_attempts` attempts, no more; a provider's Retry-After is taken as given.
    @Test func giveUpAndRetryAfter() {
        let policy = GatewayConfiguration(cores: 1).notify.retryPolicy
        #expect(policy.maxAttempts == 8)
        var generator = SplitMix64(seed: 1)
        #expect(policy.delay(afterAttempt: 7, using: &generator) != nil)
        #expect(policy.delay(afterAttempt: 8, using: &generator) == nil)
        #expect(policy.delay(afterAttempt: 9, retryAfter: 5, using: &generator) == nil)
        #expect(policy.delay(afterAttempt: 1, retryAfter: 900, using: &generator) == 900)
        #expect(RetryPolicy(maxAttempts: 1).delay(afterAttempt: 1, using: &generator) == nil)
    }
}
