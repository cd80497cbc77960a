/// Apple Push Notification service: the request for one notification (SPEC §10, Apple's "Sending notification
/// requests to APNs"), and how its answers are read (`APNsProvider+Answer.swift`).
public enum APNsProvider {
    /// `POST /3/device/<token>` under `url` (`apns.url`, or `apns.sandbox_url` for a sandbox entry), with
    /// - `authorization: bearer <providerToken>` (``APNsProviderToken``),
    /// - `apns-topic: <tp>` (left out when the entry has no topic; APNs then answers 400 `MissingTopic`),
    /// - `apns-push-type: alert`,
    /// - `apns-priority: 10` for `high`, `5` for `normal`,
    /// - `apns-expiration`, always: see ``expiration(of:inboxTTL:)``,
    /// - `apns-collapse-id: <collapse_id>` when the notification has one,
    ///
    /// and the body ``body(of:)``.
    public static func request(
        for entry: NotificationEntry, providerToken: String, url: ProviderURL, inboxTTL: Int
    ) -> ProviderRequest {
        var headers: [(name: String, value: String)] = [("authorization", "bearer \(providerToken)")]
        if !entry.topic.isEmpty { headers.append(("apns-topic", entry.topic)) }
        headers.append(("apns-push-type", "alert"))
        headers.append(("apns-priority", entry.notify.priority == .high ? "10" : "5"))
        headers.append(("apns-expiration", String(expiration(of: entry, inboxTTL: inboxTTL))))
        if let collapseID = entry.notify.collapseID { headers.append(("apns-collapse-id", collapseID)) }
        return ProviderRequest(
            path: url.path(appending: "/3/device/" + PercentEncoding.pathSegment(entry.token)),
            headers: headers,
            body: body(of: entry))
    }

    /// The `apns-expiration` value: the unix second at which the stored message leaves the inbox, its store time
    /// (`ts`) plus `inbox.ttl`.
    ///
    /// Not 0, which would have APNs try once and drop the notification when the phone is off or out of coverage,
    /// the very case notifications are for; and not later than the message itself is kept, so a phone that comes
    /// back after that is not told of a message it can no longer fetch. Computed from the entry, not the clock, so
    /// a retry carries the same deadline as the first attempt. A deadline already past makes APNs try once only.
    public static func expiration(of entry: NotificationEntry, inboxTTL: Int) -> UInt64 {
        entry.timestampMillis / 1000 + UInt64(max(0, inboxTTL))
    }

    /// `{"aps":{"alert":{"title":…,"body":…},"badge":<b>,"sound":…},<data's members>}`: `title`, `body` and
    /// `sound` only when given, `badge` always (0 clears the icon's number), then the members of `notify.data` beside
    /// `aps` in their order, except one named `aps`, which would replace the notification.
    public static func body(of entry: NotificationEntry) -> [UInt8] {
        let notify = entry.notify
        var writer = JSONWriter()
        writer.object { writer in
            writer.key("aps")
            writer.object { aps in
                aps.key("alert")
                aps.object { alert in
                    if let title = notify.title { alert.field("title", title) }
                    if let body = notify.body { alert.field("body", body) }
                }
                aps.field("badge", entry.badge)
                if let sound = notify.sound { aps.field("sound", sound) }
            }
            for (name, value) in notify.data where name != "aps" {
                writer.field(name, value)
            }
        }
        return writer.bytes
    }
}
