import HTTPTypes
import HummingbirdTesting
import Logging
import ParleyCore
import ParleyStore
import ParleyTestSupport
import SQLKit
import Testing
import Tracing

/// W3C Trace Context: `traceparent` read and written as the specification says, one trace id from a request to the mail
/// job it queues, and on every log line written within it.
@Suite struct TracingTests {
    static let example = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test func aTraceparentIsReadAsTheSpecificationSays() {
        let parent = TraceParent(header: Self.example)
        #expect(parent == TraceParent(traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "00f067aa0ba902b7", flags: 1))
        #expect(parent?.header == Self.example)
        #expect(TraceParent(header: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.flags == 0)
        // A later version is read by its first four fields (and written back as 00).
        #expect(TraceParent(header: "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds")?.spanID == "00f067aa0ba902b7")
        let refused = [
            "", "00", "garbage",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // version ff
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // all-zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // all-zero parent id
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // 31 digits
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // version 00 has exactly four fields
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bx-01",  // not hex
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ]
        for header in refused { #expect(TraceParent(header: header) == nil, "\(header)") }
    }

    @Test func aSpanContinuesItsParentsTraceOrStartsANewOne() {
        let tracer = CorrelationTracer()
        var context = ServiceContext.topLevel
        tracer.extract([HTTPField.Name("traceparent")!: Self.example] as HTTPFields, into: &context, using: FieldsExtractor())
        let child = tracer.startSpan("GET /x", context: context, ofKind: .server, at: DefaultTracerClock.now)
        let parent = try? #require(context.traceParent)
        #expect(child.context.traceParent?.traceID == parent?.traceID)
        #expect(child.context.traceParent?.spanID != parent?.spanID)
        #expect(child.context.traceParent?.flags == 1)
        var outgoing: [String: String] = [:]
        tracer.inject(child.context, into: &outgoing, using: DictionaryInjector())
        #expect(outgoing["traceparent"] == child.context.traceParent?.header)

        // A malformed traceparent starts a new trace; so does none.
        var malformed = ServiceContext.topLevel
        tracer.extract([HTTPField.Name("traceparent")!: "00-zz"] as HTTPFields, into: &malformed, using: FieldsExtractor())
        #expect(malformed.traceParent == nil)
        let root = tracer.startSpan("GET /y", context: malformed, ofKind: .server, at: DefaultTracerClock.now)
        let fresh = try? #require(root.context.traceParent)
        #expect(fresh?.traceID.count == 32 && fresh?.spanID.count == 16 && fresh?.traceID != parent?.traceID)
    }

    @Test func everyLogLineWithinATraceCarriesItsIDs() {
        var context = ServiceContext.topLevel
        context.traceParent = TraceParent(header: Self.example)
        let metadata = ServiceContext.$current.withValue(context) { Logger.MetadataProvider.trace.get() }
        #expect(metadata["traceId"] == .string("4bf92f3577b34da6a3ce929d0e0e4736"))
        #expect(metadata["spanId"] == .string("00f067aa0ba902b7"))
        #expect(Logger.MetadataProvider.trace.get().isEmpty, "outside a trace, nothing")
    }

    /// A login request's trace reaches the mail job it queues, as a child span: the mail service's lines carry the id.
    @Test(arguments: DatabaseKind.allCases)
    func aLoginsMailJobKeepsTheRequestsTrace(_ kind: DatabaseKind) async throws {
        _ = TestTracing.installed
        try await TestApp.run(kind) { app in
            let email = "traced-\(Identifier.make().suffix(12))@example.com"
            let asked = try await app.request(
                .post,
                "/api/v1/login",
                headers: [HTTPField.Name("traceparent")!: Self.example],
                json: #"{"email":"\#(email)"}"#
            )
            #expect(asked.status == .accepted)
            let stored = try await app.database.read { sql in
                try await sql.raw("SELECT trace_parent FROM mail_outbox WHERE recipient = \(bind: email)").first()?
                    .decode(column: "trace_parent", as: String?.self)
            }
            let job = try #require(stored.flatMap { TraceParent(header: $0) })
            #expect(job.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
            #expect(job.spanID != "00f067aa0ba902b7", "the request's own span, a child of the caller's")
        }
    }

    /// A send's request trace is what the mark of the mail it makes owed keeps: the request's own span, in the caller's
    /// trace; a malformed `traceparent` is not stored, the request's new trace is.
    @Test(arguments: DatabaseKind.allCases)
    func aSendsTraceIsKeptWithTheMailItMakesOwed(_ kind: DatabaseKind) async throws {
        _ = TestTracing.installed
        try await TestApp.run(kind) { app in
            let (ann, bob, cat) = (try await app.signIn(), try await app.signIn(), try await app.signIn())
            let malformed = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-" + String(repeating: "x", count: 200)
            for (other, header) in [(bob, Self.example), (cat, malformed)] {
                let chatID = try await app.directChat(ann, with: other)
                var headers = ann.headers
                headers[HTTPField.Name("traceparent")!] = header
                let sent = try await app.request(.post, "/api/v1/chats/\(chatID)/messages", headers: headers, json: #"{"text":"traced"}"#)
                #expect(sent.status == .created)
            }
            let kept = try await app.database.read { sql in
                try await sql.raw("SELECT user_id, trace_parent FROM missed_mail WHERE user_id IN (\(bind: bob.userID), \(bind: cat.userID))")
                    .all().reduce(into: [String: String]()) { kept, row in
                        kept[try row.decode(column: "user_id", as: String.self)] = try row.decode(column: "trace_parent", as: String?.self)
                    }
            }
            let bobs = try #require(kept[bob.userID].flatMap { TraceParent(header: $0) })
            #expect(bobs.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" && bobs.spanID != "00f067aa0ba902b7")
            let cats = try #require(kept[cat.userID].flatMap { TraceParent(header: $0) })
            #expect(cats.traceID != "4bf92f3577b34da6a3ce929d0e0e4736", "a new trace")
            #expect(kept.values.allSatisfy { $0.utf8.count == 55 })
        }
    }
}

struct FieldsExtractor: Extractor {
    func extract(key: String, from carrier: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { carrier[$0] }
    }
}

struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}
