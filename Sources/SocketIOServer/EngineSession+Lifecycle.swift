import Logging
import NIOCore
import SocketIOProtocol
import Synchronization

extension EngineSession {
    /// Connects the session to its Socket.IO layer and starts the heartbeat.
    func start(hooks: Hooks) {
        // Detached: the session outlives the request that opened it, and must not carry that request's task-locals.
        let heartbeat = Task.detached { await self.runHeartbeat() }
        let stillOpen = self.state.withLock { state -> Bool in
            guard state.phase == .open else { return false }
            state.hooks = hooks
            state.tasks.append(heartbeat)
            return true
        }
        if !stillOpen { heartbeat.cancel() }
    }

    /// Stops taking packets. With `flush`, what is queued still goes out (plus a close packet on polling) until
    /// `pingTimeout` has passed; without, the queue is dropped and the transport is stopped at once.
    func close(_ reason: DisconnectReason, flush: Bool = false) {
        var wakePoll: (CheckedContinuation<PollResult, Never>, [ByteBuffer])?
        var wakeSocket: (CheckedContinuation<[ByteBuffer]?, Never>, [ByteBuffer])?
        var finished: Finished?
        let hooks = self.state.withLock { state -> Hooks?? in
            guard state.phase == .open else { return .none }
            let hooks = state.hooks
            state.pongWaiter?.resume(returning: false)
            state.pongWaiter = nil
            guard flush else {
                finished = state.finish()
                return .some(hooks)
            }
            state.phase = .draining
            switch state.transport {
            case .polling:
                state.queue.append(EngineText.close)
                if let waiter = state.pollWaiter {
                    state.pollWaiter = nil
                    wakePoll = (waiter.continuation, state.takePollingBatch())
                    if state.queue.isEmpty { finished = state.finish() }
                }
            case .webSocket:
                if let waiter = state.socketWaiter {
                    state.socketWaiter = nil
                    if state.queue.isEmpty {
                        finished = state.finish()
                        wakeSocket = (waiter.continuation, [])
                    } else {
                        wakeSocket = (waiter.continuation, state.takeQueue())
                    }
                }
            }
            return .some(hooks)
        }
        guard case .some(let hooks) = hooks else { return }
        self.logger.debug("session closed", metadata: ["sio.reason": .string(reason.rawValue), "sio.flush": "\(flush)"])
        // The Socket.IO layer hears of the close before anything is woken, so nothing new is routed to this session.
        hooks?.closed(reason)
        if let (continuation, batch) = wakePoll { continuation.resume(returning: .packets(batch)) }
        if let (continuation, batch) = wakeSocket { continuation.resume(returning: batch.isEmpty ? nil : batch) }
        if let finished {
            finished.run()
        } else {
            self.startDrainDeadline()
        }
    }

    /// Gives a draining session `pingTimeout` to deliver its last packets, then finishes it.
    private func startDrainDeadline() {
        let deadline = self.configuration.pingTimeout
        let timer = Task.detached {
            try? await Task.sleep(for: deadline)
            guard !Task.isCancelled else { return }
            self.finishNow()
        }
        let replaced = self.state.withLock { state -> [Task<Void, Never>]? in
            guard state.phase == .draining else { return nil }
            // The heartbeat is over; the timer takes its place among the tasks finish() cancels.
            defer { state.tasks = [timer] }
            return state.tasks
        }
        guard let replaced else {
            timer.cancel()
            return
        }
        // Cancelled outside the lock: a cancellation handler (the heartbeat's pong wait) takes it.
        for task in replaced {
            task.cancel()
        }
    }

    /// Finishes the session whatever its phase: nothing more is sent.
    func finishNow() {
        let finished = self.state.withLock { state -> Finished? in
            guard state.phase != .finished else { return nil }
            return state.finish()
        }
        finished?.run()
    }

    /// Marks whether a Socket.IO socket is connected, for the connect timeout.
    func setAttached(_ attached: Bool) {
        self.state.withLock { $0.unattachedSince = attached ? nil : .now }
    }

    // MARK: Upgrade

    /// A WebSocket answered `3probe`: ends a pending long-poll at once, as the client waits for it before sending `5`.
    func beginUpgrade() -> Bool {
        let outcome = self.state.withLock { state -> (Bool, CheckedContinuation<PollResult, Never>?) in
            guard state.phase != .finished, state.transport == .polling, !state.upgrading else { return (false, nil) }
            state.upgrading = true
            defer { state.pollWaiter = nil }
            return (true, state.pollWaiter?.continuation)
        }
        outcome.1?.resume(returning: .packets([EngineText.noop]))
        return outcome.0
    }

    /// The client sent `5`: the WebSocket takes over the queue, in order, from the packet the last GET did not take.
    func completeUpgrade() -> Bool {
        var finished: Finished?
        let outcome = self.state.withLock { state -> (Bool, CheckedContinuation<PollResult, Never>?, Waiter<[ByteBuffer]?>?, [ByteBuffer]) in
            guard state.phase != .finished, state.transport == .polling, state.upgrading else { return (false, nil, nil, []) }
            state.transport = .webSocket
            state.upgrading = false
            let poll = state.pollWaiter?.continuation
            state.pollWaiter = nil
            guard let socket = state.socketWaiter, !state.queue.isEmpty || state.phase == .draining else { return (true, poll, nil, []) }
            state.socketWaiter = nil
            let batch = state.takeQueue()
            if batch.isEmpty { finished = state.finish() }
            return (true, poll, socket, batch)
        }
        outcome.1?.resume(returning: .packets([EngineText.noop]))
        if let socket = outcome.2 { socket.continuation.resume(returning: outcome.3.isEmpty ? nil : outcome.3) }
        finished?.run()
        return outcome.0
    }

    /// Reserves the upgrade for one WebSocket, before its writer waits for the queue. A second WebSocket on the same sid
    /// (a retried probe, or anyone who knows the sid) is refused: it could otherwise take the first one's place as the
    /// queue's writer (the first writer's continuation leaks and packets go to the wrong socket), or abort its upgrade.
    func claimUpgrade() -> Bool {
        self.state.withLock { state in
            guard state.phase == .open, state.transport == .polling, !state.upgradeClaimed else { return false }
            state.upgradeClaimed = true
            return true
        }
    }

    /// The probing WebSocket (the one that claimed the upgrade) went away before `5`: polling goes on as before.
    func abortUpgrade() {
        self.state.withLock { state in
            guard state.transport == .polling else { return }
            state.upgrading = false
            state.upgradeClaimed = false
        }
    }

    // MARK: Heartbeat

    /// A pong arrived from the client.
    func receivedPong() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Bool, Never>? in
            state.pongReceived = true
            defer { state.pongWaiter = nil }
            return state.pongWaiter
        }
        waiter?.resume(returning: true)
    }

    /// Pings every `pingInterval` (measured from the last pong, as the reference server does) and closes the session
    /// when a pong is `pingTimeout` late, or when no socket has connected for `connectTimeout`.
    func runHeartbeat() async {
        // A new session has `connectTimeout` to admit a socket; when that ends before the first ping, it is checked then.
        var wait = self.configuration.pingInterval
        if self.configuration.connectTimeout < wait {
            do {
                try await Task.sleep(for: self.configuration.connectTimeout)
            } catch {
                return
            }
            if self.closeIfUnattached() { return }
            wait -= self.configuration.connectTimeout
        }
        while true {
            do {
                try await Task.sleep(for: wait)
            } catch {
                return
            }
            wait = self.configuration.pingInterval
            let sent = self.state.withLock { state -> Bool in
                guard state.phase == .open else { return false }
                state.pongReceived = false
                return true
            }
            guard sent else { return }
            self.logger.trace("ping")
            self.enqueue(EngineText.ping)
            let answered = await self.waitForPong(timeout: self.configuration.pingTimeout)
            guard !Task.isCancelled else { return }
            guard answered else {
                self.close(.pingTimeout)
                return
            }
            if self.closeIfUnattached() { return }
        }
    }

    /// Closes the session when it has been without a socket for `connectTimeout`; returns whether it did.
    private func closeIfUnattached() -> Bool {
        let unattached = self.state.withLock { $0.unattachedSince }
        guard let unattached, unattached.duration(to: .now) >= self.configuration.connectTimeout else { return false }
        self.close(.connectTimeout)
        return true
    }

    /// Whether a pong arrives within `timeout`.
    private func waitForPong(timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.pong() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let answered = await group.next() ?? false
            group.cancelAll()
            return answered
        }
    }

    /// Returns true when the pong for the last ping arrives, false when cancelled or closed first.
    private func pong() async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let immediate = self.state.withLock { state -> Bool? in
                    if state.pongReceived { return true }
                    if state.phase != .open || Task.isCancelled { return false }
                    state.pongWaiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> CheckedContinuation<Bool, Never>? in
                defer { state.pongWaiter = nil }
                return state.pongWaiter
            }
            waiter?.resume(returning: false)
        }
    }
}
