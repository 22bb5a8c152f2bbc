import Logging
import NIOCore
import PostgresKit
import PostgresNIO
import SQLKit

/// A PostgreSQL connection's statements, each sent from the connection's event loop and only while the connection is
/// open: a statement on a connection that has closed fails at once instead of waiting for ever.
///
/// postgres-nio (1.33.2) writes a statement to its channel without a promise. While the channel is active its handler
/// is in the pipeline, and should the connection close later, the handler fails every statement it holds. Once the
/// channel has closed and its handlers are gone, the write fails unseen at the pipeline's head, and the statement's
/// own promise is never completed: its caller (a transaction of the message writer, holding every send behind it)
/// waited for ever after a PostgreSQL restart, and cancelling it cannot reach `EventLoopFuture.get()`.
///
/// SwiftNIO marks a channel inactive before it tells the handlers and removes them a turn of the event loop later. So
/// on the event loop, "still active" means the handler will see the write, and "inactive" is answered here, with no
/// window between the check and the write. See docs/proposals/postgres-statement-on-closed-connection.md.
struct OpenConnectionSQLDatabase: SQLDatabase {
    let connection: PostgresConnection
    let base: any SQLDatabase

    init(_ connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.base = connection.sql(queryLogLevel: nil, logger: logger)
    }

    var logger: Logger { self.base.logger }
    var eventLoop: any EventLoop { self.base.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { self.base.version }
    var dialect: any SQLDialect { self.base.dialect }
    var queryLogLevel: Logger.Level? { self.base.queryLogLevel }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        let connection = self.connection
        let base = self.base
        let loop = connection.eventLoop
        return loop.flatSubmit {
            guard !connection.isClosed else {
                return loop.makeFailedFuture(StoreError("the PostgreSQL connection closed before the statement was sent"))
            }
            // On the event loop, postgres-nio writes the statement before this call returns.
            return base.execute(sql: query, onRow)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try await self.execute(sql: query, onRow).get()
    }
}
