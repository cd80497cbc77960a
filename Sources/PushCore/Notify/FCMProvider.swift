/// Firebase Cloud Messaging HTTP v1: the request for one notification (Google's `projects.messages.send`), and how
/// its answers are read (`FCMProvider+Answer.swift`).
public enum FCMProvider {
    /// `POST /v1/projects/<projectID>/messages:send` under `url` (`fcm.url`), with `authorization: Bearer
    /// <accessToken>` (``AccessTokenCache``), `content-type: application/json` and the body ``body(of:)``.
    public static func request(
        for entry: NotificationEntry, projectID: String, accessToken: String, url: ProviderURL
    ) -> ProviderRequest {
        ProviderRequest(
            path: url.path(appending: "/v1/projects/\(PercentEncoding.pathSegment(projectID))/messages:send"),
            headers: [("authorization", "Bearer \(accessToken)"), ("content-type", "application/json")],
            body: body(of: entry))
    }

    /// `{"message":{"token":…,"notification":{"title":…,"body":…},"data":{…},
    /// "android":{"priority":"HIGH"|"NORMAL","collapse_key":…,"notification":{"notification_count":<b>,"sound":…}}}}`.
    ///
    /// `notification` only when there is a title or a body, each only when given; `data` only when `notify.data`
    /// has members, each value a string as FCM requires (a string as it is, anything else as its JSON text);
    /// `collapse_key` and `sound` only when given; `notification_count` (the badge) always.
    public static func body(of entry: NotificationEntry) -> [UInt8] {
        let notify = entry.notify
        var writer = JSONWriter()
        writer.object { writer in
            writer.key("message")
            writer.object { message in
                message.field("token", entry.token)
                if notify.title != nil || notify.body != nil {
                    message.key("notification")
                    message.object { notification in
                        if let title = notify.title { notification.field("title", title) }
                        if let body = notify.body { notification.field("body", body) }
                    }
                }
                if !notify.data.isEmpty {
                    message.key("data")
                    message.object { data in
                        for (name, value) in notify.data {
                            if case .string(let text) = value {
                                data.field(name, text)
                            } else {
                                data.field(name, String(decoding: value.jsonBytes, as: UTF8.self))
                            }
                        }
                    }
                }
                message.key("android")
                message.object { android in
                    android.field("priority", notify.priority == .high ? "HIGH" : "NORMAL")
                    if let collapseKey = notify.collapseID { android.field("collapse_key", collapseKey) }
                    android.key("notification")
                    android.object { notification in
                        notification.field("notification_count", entry.badge)
                        if let sound = notify.sound { notification.field("sound", sound) }
                    }
                }
            }
        }
        return writer.bytes
    }
}
