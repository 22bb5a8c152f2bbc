import ParleyCore
import SocketIOServer

extension ChatRealtime {
    /// Answers a realtime `sendMessage` once its batch is committed: the message, or the contract's error body.
    func acknowledgeSend(_ pending: PendingAppend, ack: SocketIOAck?) async {
        do {
            let (message, _) = try await self.service.sent(pending)
            ack?(encodedArguments: [#"{"ok":true,"message":"# + ParleyJSON.text(message) + "}"])
        } catch let error as any APIErrorConvertible {
            ack?(encodedArguments: [error.jsonBody])
        } catch {
            self.logger.error("realtime event failed", metadata: ["event": "sendMessage", "error": "\(error)"])
            ack?(encodedArguments: [APIError.internalError.jsonBody])
        }
    }
}
