import ChatService
import Foundation
import HTTPTypes
import HummingbirdTesting
import ParleyApp
import ParleyCore
import ParleyTestSupport
import Synchronization
import Testing

/// `GET /health` of a chat instance checks the store its files live in, as it checks the database: the data folder on
/// disk, or the bucket of an S3-compatible store (moto, which scripts/test and scripts/s3 start). A store that cannot
/// take files makes the instance unhealthy (503, `"fileStore":"down"`); the user and mail services keep no files and
/// have no such check.
@Suite struct HealthRouteTests {
    static let s3Endpoint = ProcessInfo.processInfo.environment["PARLEY_TEST_S3_ENDPOINT"]
    static let s3Skipped: Comment = "PARLEY_TEST_S3_ENDPOINT is not set: run the tests through scripts/test or scripts/s3, which start moto"

    /// The health report: status code, `status` and `checks`.
    static func health(_ app: TestApp) async throws -> (status: HTTPResponse.Status, state: String?, checks: [String: String]) {
        let response = try await app.request(.get, "/health")
        let body = try response.json()
        return (response.status, body["status"] as? String, body["checks"] as? [String: String] ?? [:])
    }

    static func s3(bucket: String, endpoint: String, secretAccessKey: String? = nil) -> S3Settings {
        let environment = ProcessInfo.processInfo.environment
        return S3Settings(
            bucket: bucket,
            endpoint: endpoint,
            region: "us-east-1",
            style: .path,
            accessKeyID: environment["PARLEY_TEST_S3_ACCESS_KEY_ID"] ?? "parley-test",
            secretAccessKey: secretAccessKey ?? environment["PARLEY_TEST_S3_SECRET_ACCESS_KEY"] ?? "parley-test-secret"
        )
    }

    static func freshBucket() -> String { "parley-health-" + Identifier.make().suffix(12).lowercased() }

    @Test("the data folder is checked: up while it takes files, down (503) once it cannot", arguments: DatabaseKind.allCases)
    func theDiskStoreIsChecked(_ kind: DatabaseKind) async throws {
        try await TestApp.run(kind) { app in
            let up = try await Self.health(app)
            #expect(up.status == .ok)
            #expect(up.state == "healthy")
            #expect(up.checks == ["database": "up", "fileStore": "up"])
            // Nothing of the check is left among the files.
            let files = URL(fileURLWithPath: app.configuration.dataDirectory).appendingPathComponent("files")
            #expect(try FileManager.default.contentsOfDirectory(atPath: files.path) == [])

            // The folder replaced by a plain file: no file can be stored under it.
            try FileManager.default.removeItem(at: files)
            try Data("not a folder".utf8).write(to: files)
            let down = try await Self.health(app)
            #expect(down.status == .serviceUnavailable)
            #expect(down.state == "unhealthy")
            #expect(down.checks == ["database": "up", "fileStore": "down"])
        }
    }

    @Test("only chat instances keep files: the user and mail services report no file store")
    func servicesWithoutFilesHaveNoStoreCheck() async throws {
        for role in [ServiceRole.user, .mail] {
            try await TestApp.run(.sqlite, role: role) { app in
                let health = try await Self.health(app)
                #expect(health.status == .ok)
                #expect(health.checks == ["database": "up"], "\(role)")
            }
        }
    }

    @Test("a bucket that answers is up", .enabled(if: s3Endpoint != nil, s3Skipped))
    func aLiveBucketIsUp() async throws {
        let endpoint = try #require(Self.s3Endpoint)
        let settings = Self.s3(bucket: Self.freshBucket(), endpoint: endpoint)
        try await S3BlobStore(settings: settings).createBucket()
        try await TestApp.run(.sqlite) {
            $0.blobStore = .s3(settings)
        } _: { app in
            let health = try await Self.health(app)
            #expect(health.status == .ok)
            #expect(health.checks == ["database": "up", "fileStore": "up"])
        }
    }

    @Test(
        "a store that is down, a bucket that does not exist, or credentials the store refuses: 503 naming the file store",
        .enabled(if: s3Endpoint != nil, s3Skipped)
    )
    func anUnreachableBucketIsDown() async throws {
        let live = try #require(Self.s3Endpoint)
        let existing = Self.freshBucket()
        try await S3BlobStore(settings: Self.s3(bucket: existing, endpoint: live)).createBucket()
        let stores = [
            "nothing listens": Self.s3(bucket: existing, endpoint: "http://127.0.0.1:\(ObjectStoreRouteTests.closedPort())"),
            "no such bucket": Self.s3(bucket: Self.freshBucket(), endpoint: live),
            "wrong secret": Self.s3(bucket: existing, endpoint: live, secretAccessKey: "not-the-secret"),
        ]
        for (what, settings) in stores {
            // With a wrong secret moto refuses only when it checks signatures (scripts/lib/s3.sh starts it so).
            if what == "wrong secret" && ProcessInfo.processInfo.environment["PARLEY_TEST_S3_SECRET_ACCESS_KEY"] == nil { continue }
            try await TestApp.run(.sqlite) {
                $0.blobStore = .s3(settings)
            } _: { app in
                let started = ContinuousClock.now
                let health = try await Self.health(app)
                #expect(health.status == .serviceUnavailable, "\(what)")
                #expect(health.state == "unhealthy", "\(what)")
                #expect(health.checks == ["database": "up", "fileStore": "down"], "\(what)")
                #expect(ContinuousClock.now - started < .seconds(4), "\(what): the check is bounded")
            }
        }
    }
}

/// A health check answers at its limit even when what it checks ignores cancellation and hangs: a PostgreSQL pool's
/// request for a connection waits while the database refuses connections (seen in CI as a `/health` that never answered,
/// and a server that then did not stop on SIGTERM). Told by order, not time: the check ends only when the test lets it
/// (or after 30 s), and the answer must come before that.
@Suite struct HealthCheckLimitTests {
    /// A check that ends only when released, whatever cancellation says.
    final class Gate: Sendable {
        private let state = Mutex<(waiter: CheckedContinuation<Void, Never>?, released: Bool, byTimeout: Bool)>((nil, false, false))

        func wait() async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let released = self.state.withLock { state -> Bool in
                    if !state.released { state.waiter = continuation }
                    return state.released
                }
                if released { continuation.resume() }
            }
        }

        /// Lets the check end; whether it had been let go by the 30 s fallback already.
        @discardableResult func release(byTimeout: Bool = false) -> Bool {
            let (waiter, already) = self.state.withLock { state -> (CheckedContinuation<Void, Never>?, Bool) in
                let already = state.byTimeout
                guard !state.released else { return (nil, already) }
                state.released = true
                state.byTimeout = byTimeout
                defer { state.waiter = nil }
                return (state.waiter, already)
            }
            waiter?.resume()
            return already
        }
    }

    @Test func aCheckThatIgnoresCancellationIsDownAtTheLimit() async {
        let gate = Gate()
        DispatchQueue.global().asyncAfter(deadline: .now() + 30) { gate.release(byTimeout: true) }
        let up = await OperationsController.answers(within: .milliseconds(200)) { await gate.wait() }
        let answeredOnlyAfterTheFallback = gate.release()
        #expect(!up)
        #expect(!answeredOnlyAfterTheFallback, "the answer waited for the hung check")
    }

    @Test func aCheckThatAnswersInTimeIsUp() async {
        #expect(await OperationsController.answers(within: .seconds(30)) {})
        #expect(await OperationsController.answers(within: .seconds(30)) { throw CancellationError() } == false)
    }
}
