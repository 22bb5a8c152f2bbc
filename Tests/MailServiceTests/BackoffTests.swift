import Logging
import ParleyCore
import ParleyStore
import Testing

@testable import MailService

@Suite("Retry backoff")
struct BackoffTests {
    @Test("waits double with each attempt, with bounded jitter, and stop growing at an hour")
    func exponentialBackoff() async throws {
        var configuration = ParleyConfiguration()
        configuration.mailRetryBaseSeconds = 2
        let database = try await Database.open(.sqlite(path: "/tmp/parley-backoff-\(Identifier.make()).sqlite"), logger: Logger(label: "t"))
        let service = MailDeliveryService(
            outbox: MailOutbox(database: database),
            transport: LogMailTransport(),
            settings: .init(configuration: configuration),
            wakeup: Wakeup(),
            worker: "w",
            logger: Logger(label: "t")
        )
        for attempt in 1...5 {
            let wait = service.backoff(afterAttempt: attempt)
            let base = 2.0 * Double(1 << (attempt - 1))
            #expect(wait >= base && wait <= base * 1.2)
        }
        #expect(service.backoff(afterAttempt: 30) <= 3600 * 1.2)
        await database.close()
    }
}
