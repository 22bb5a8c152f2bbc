import Logging
import NIOCore
import SocketIOProtocol
import Synchronization

extension EngineSession: SessionClock.Owner {
    /// Connects the session to its Socket.IO layer and starts the heartbeat: the first ping is due after `pingInterval`,
    /// and a session that admits no socket within `connectTimeout` is closed (checked then, when it comes first).
    func start(hooks: Hooks) {
        let now = ContinuousClock.now
        let scheduled = self.state.withLock { state -> Scheduled? in
            guard state.phase == .open else { return nil }
            state.hooks = hooks
            if self.configuration.connectTimeout < self.configuration.pingInterval {
                state.firstPing = now + self.configuration.pingInterval
                return state.setDeadline(.connect, at: now + self.configuration.connectTimeout)
            }
            return state.setDeadline(.ping, at: now + self.configuration.pingInterval)
        }
        self.schedule(scheduled)
    }

    /// Stops taking packets. With `flush`, what is queued still goes out (plus a close packet on polling) until
    /// `pingTimeout` has passed; without, the queue is dropped and the transport is stopped at once.
    func close(_ reason: DisconnectReason, flush: Bool = false) {
        var wakePoll: (CheckedContinuation<PollResult, Never>, [ByteBuffer])?
        var flushSocket: WebSocketSink?
        var finished: Finished?
        let hooks = self.state.withLock { state -> Hooks?? in
            guard state.phase == .open else { return .none }
            let hooks = state.hooks
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
                // Without a sink yet, the WebSocket finds the session draining when it attaches.
                flushSocket = state.sink
            }
            return .some(hooks)
        }
        guard case .some(let hooks) = hooks else { return }
        self.logger.debug("session closed", metadata: ["sio.reason": .string(reason.rawValue), "sio.flush": "\(flush)"])
        // The Socket.IO layer hears of the close before anything is woken, so nothing new is routed to this session.
        hooks?.closed(reason)
        if let (continuation, batch) = wakePoll { continuation.resume(returning: .packets(batch)) }
        // After everything posted before it: the WebSocket writes its backlog, then closes and finishes the session.
        flushSocket?.post(.close(flush: true))
        if let finished {
            finished.run()
        } else {
            self.startDrainDeadline()
        }
    }

    /// Gives a draining session `pingTimeout` to deliver its last packets, then finishes it.
    private func startDrainDeadline() {
        let deadline = ContinuousClock.now + self.configuration.pingTimeout
        self.schedule(
            self.state.withLock { state in
                state.phase == .draining ? state.setDeadline(.drain, at: deadline) : nil
            }
        )
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

    /// The client sent `5`: the WebSocket takes over the queue, in order, from the packet the last GET did not take, and
    /// carries the session from now on; nil when the session cannot be upgraded.
    ///
    /// A producer that finds the sink only after this lock posts to the loop's outbox, which runs after the WebSocket has
    /// written the hand-over: packets keep their order across the switch.
    func completeUpgrade(sink: WebSocketSink) -> Handover? {
        let outcome = self.state.withLock { state -> (Handover, CheckedContinuation<PollResult, Never>?)? in
            guard state.phase != .finished, state.transport == .polling, state.upgrading else { return nil }
            state.transport = .webSocket
            state.upgrading = false
            let poll = state.pollWaiter?.continuation
            state.pollWaiter = nil
            state.sink = sink
            return (.attached(packets: state.takeQueue(), draining: state.phase == .draining), poll)
        }
        outcome?.1?.resume(returning: .packets([EngineText.noop]))
        return outcome?.0
    }

    /// Reserves the upgrade for one WebSocket, when it opens. A second WebSocket on the same sid (a retried probe, or
    /// anyone who knows the sid) is refused: it could otherwise take the first one's place as the session's carrier
    /// (packets would go to the wrong socket), or abort its upgrade.
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

    // MARK: Heartbeat and deadlines

    /// Puts the deadline the state just set on the clock (after the session's lock is released).
    private func schedule(_ deadline: Scheduled?) {
        guard let deadline else { return }
        self.clock.schedule(self, token: deadline.token, at: deadline.instant)
    }

    /// A pong arrived from the client: the next ping is due `pingInterval` from now (as the reference server measures
    /// it), unless the session has been without a socket for `connectTimeout`.
    func receivedPong() {
        let now = ContinuousClock.now
        var unattached = false
        let scheduled = self.state.withLock { state -> Scheduled? in
            guard state.phase == .open, state.deadline?.kind == .pong else { return nil }
            if let since = state.unattachedSince, since.duration(to: now) >= self.configuration.connectTimeout {
                unattached = true
                return nil
            }
            return state.setDeadline(.ping, at: now + self.configuration.pingInterval)
        }
        if unattached { self.close(.connectTimeout) }
        self.schedule(scheduled)
    }

    /// Whether `token` is the session's live deadline.
    func isCurrent(token: UInt64) -> Bool {
        self.state.withLock { $0.deadline?.token == token }
    }

    /// The clock's call when a deadline passes: pings, closes a session whose pong is `pingTimeout` late or that has
    /// been without a socket for `connectTimeout`, or finishes a draining one. A stale deadline does nothing.
    func deadlinePassed(token: UInt64) {
        enum Action {
            case none
            case ping(Scheduled)
            case schedule(Scheduled)
            case close(DisconnectReason)
            case finish(Finished)
        }
        let now = ContinuousClock.now
        let action = self.state.withLock { state -> Action in
            guard let deadline = state.deadline, deadline.token == token else { return .none }
            state.deadline = nil
            switch (deadline.kind, state.phase) {
            case (.connect, .open):
                if let since = state.unattachedSince, since.duration(to: now) >= self.configuration.connectTimeout {
                    return .close(.connectTimeout)
                }
                return .schedule(state.setDeadline(.ping, at: max(state.firstPing ?? now, now)))
            case (.ping, .open):
                return .ping(state.setDeadline(.pong, at: now + self.configuration.pingTimeout))
            case (.pong, .open):
                return .close(.pingTimeout)
            case (.drain, .draining):
                return .finish(state.finish())
            default:
                return .none
            }
        }
        switch action {
        case .none:
            break
        case .ping(let pongDeadline):
            // The pong deadline is set before the ping leaves, so a fast pong finds it.
            self.schedule(pongDeadline)
            self.logger.trace("ping")
            self.enqueue(EngineText.ping)
        case .schedule(let deadline):
            self.schedule(deadline)
        case .close(let reason):
            self.close(reason)
        case .finish(let finished):
            finished.run()
        }
    }
}

extension EngineSession {
    /// A deadline to put on the clock once the session's lock is released.
    struct Scheduled {
        let token: UInt64
        let instant: ContinuousClock.Instant
    }
}

extension EngineSession.State {
    /// Makes `kind` at `instant` the session's one deadline (the one before it goes stale), returning what to schedule.
    mutating func setDeadline(_ kind: EngineSession.Deadline, at instant: ContinuousClock.Instant) -> EngineSession.Scheduled {
        let token = self.nextID()
        self.deadline = (kind, token)
        return EngineSession.Scheduled(token: token, instant: instant)
    }
}
