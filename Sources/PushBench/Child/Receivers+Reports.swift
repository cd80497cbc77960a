
/// What goes to the coordinator: `progress` four times a second, `result` on `report`.
extension Receivers {
    func sendProgress() {
        guard started else { return }
        ParentLink.send {
            $0.field("type", "progress")
            $0.field("phase", phase)
            $0.field("online", online)
            $0.field("opened", nextToOpen)
            $0.field("failed", failed)
            $0.field("delivered", delivered)
            $0.field("complete", complete)
            $0.field("unexpected_closes", unexpectedCloses)
        }
    }

    func report() {
        ParentLink.send {
            $0.field("type", "result")
            $0.field("online", online)
            $0.field("failed", failed)
            $0.field("unexpected_closes", unexpectedCloses)
            $0.key("close_reasons")
            $0.object { writer in for (reason, count) in closeReasons { writer.field(reason, count) } }
            $0.field("heartbeats_sent", heartbeatsSent)
            $0.field("heartbeat_replies", heartbeatReplies)
            $0.field("acks_sent", acksSent)
            $0.field("delivered", delivered)
            $0.field("first_delivery_ns", firstDeliveryAt)
            $0.field("last_delivery_ns", lastDeliveryAt)
            $0.field("gaps", gaps)
            $0.field("duplicates", duplicates)
            $0.field("complete", complete)
            $0.field("backlog", backlog)
            $0.field("last_completion_ns", lastCompletionAt)
            $0.key("latency")
            latency.encode(into: &$0)
            $0.key("completion")
            completion.encode(into: &$0)
            $0.key("fan_count")
            $0.array { writer in fanCount.forEach { writer.value($0) } }
            $0.key("fan_first_ns")
            $0.array { writer in fanFirst.forEach { writer.value($0 == .max ? 0 : $0) } }
            $0.key("fan_last_ns")
            $0.array { writer in fanLast.forEach { writer.value($0) } }
        }
        phase += 1
        delivered = 0
        latency.reset()
        firstDeliveryAt = 0
        lastDeliveryAt = 0
        gaps = 0
        duplicates = 0
        for index in 0..<plan.messages {
            fanCount[index] = 0
            fanFirst[index] = .max
            fanLast[index] = 0
        }
    }
}
