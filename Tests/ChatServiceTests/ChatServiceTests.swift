import Foundation
import HTTPTypes
import ParleyCore
import ParleyStore
import ParleyTestSupport
import Testing

@testable import ChatService

/// Profiles of the users a test made: the chat service only needs to know who exists.
struct FakeDirectory: UserDirectory {
    let ids: Set<String>

    func profiles(of ids: [String]) async throws -> [String: PublicUser] {
        var profiles: [String: PublicUser] = [:]
        for id in ids where self.ids.contains(id) { profiles[id] = PublicUser(id: id, name: "User", avatarUrl: nil) }
        return profiles
    }
}

@Suite("The chat service on SQLite and PostgreSQL")
struct ChatServiceTests {
    static let png = [UInt8](Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")!)

    func service(_ database: Database, users: [String]) async throws -> ChatService {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("parley-blobs-\(Identifier.make())").path
        return ChatService(
            database: database,
            directory: FakeDirectory(ids: Set(users)),
            blobs: try DiskBlobStore(directory: folder),
            signer: try await FileURLSigner.load(database: database, baseURL: ""),
            bus: InProcessEventBus(),
            maxUploadBytes: 1000
        )
    }

    @Test("a send is stored once by the writer, and only members can send or read", arguments: DatabaseKind.allCases)
    func sendsThroughTheWriter(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let users = try await makeUsers(3, in: database)
            let chats = try await self.service(database, users: users)
            try await withRunning(chats.writer) {
                let (chat, created) = try await chats.openDirect(userID: users[0], with: users[1])
                #expect(created)
                let (first, new) = try await chats.send(chatID: chat.id, userID: users[0], text: "hi", upload: nil, clientMessageID: "c1")
                let (again, newAgain) = try await chats.send(chatID: chat.id, userID: users[0], text: "hi", upload: nil, clientMessageID: "c1")
                #expect(new && !newAgain && again == first && first.seq == 1)
                let (image, _) = try await chats.send(
                    chatID: chat.id,
                    userID: users[1],
                    text: nil,
                    upload: Upload(bytes: Self.png, field: .image),
                    clientMessageID: nil
                )
                #expect(image.kind == "image" && image.image?.contentType == "image/png" && image.seq == 2)
                let fileID = try #require(image.image?.url.split(separator: "/").last?.split(separator: "?").first.map(String.init))
                #expect(try await chats.file(fileID).size == Int64(Self.png.count))
                #expect(try await chats.blobs.get(key: fileID) == Self.png)
                await #expect(throws: ChatError.chatNotFound) {
                    try await chats.send(chatID: chat.id, userID: users[2], text: "intruder", upload: nil, clientMessageID: nil)
                }
                await #expect(throws: ChatError.chatNotFound) {
                    try await chats.messages(in: chat.id, for: users[2], before: nil, after: nil, limit: 10)
                }
                #expect(try await chats.messages(in: chat.id, for: users[1], before: nil, after: nil, limit: 10).messages.map(\.seq) == [1, 2])
                let page = try await chats.chats(of: users[0], after: nil, limit: 10)
                #expect(page.chats.map(\.id) == [chat.id] && page.next == nil && page.chats.first?.unreadCount == 1)
            }
        }
    }

    @Test("refusals are the chat service's own errors", arguments: DatabaseKind.allCases)
    func refusals(kind: DatabaseKind) async throws {
        try await TestDatabases.with(kind) { database in
            let users = try await makeUsers(2, in: database)
            let chats = try await self.service(database, users: users)
            let chat = try await chats.openDirect(userID: users[0], with: users[1]).0.id
            await #expect(throws: ChatError.invalidMembers("A chat with yourself is not possible.")) {
                try await chats.openDirect(userID: users[0], with: users[0])
            }
            await #expect(throws: ChatError.userNotFound) { try await chats.openDirect(userID: users[0], with: Identifier.make()) }
            let stranger = Identifier.make()
            await #expect(throws: ChatError.memberNotFound(stranger)) {
                try await chats.createGroup(userID: users[0], name: "g", memberIDs: [stranger])
            }
            await #expect(throws: ChatError.invalidGroupName) { try await chats.createGroup(userID: users[0], name: " ", memberIDs: [users[1]]) }
            await #expect(throws: ChatError.invalidSeq) { try await chats.markRead(chatID: chat, userID: users[0], seq: -1) }
            await #expect(throws: ChatError.textTooLong(maxLength: 4000)) {
                try await chats.submitText(chatID: chat, userID: users[0], text: String(repeating: "x", count: 4001), clientMessageID: nil)
            }
            await #expect(throws: ChatError.invalidClientMessageID) {
                try await chats.submitText(chatID: chat, userID: users[0], text: "x", clientMessageID: "")
            }
            await #expect(throws: ChatError.imageTooLarge(maxBytes: 1000)) {
                try await chats.store(Upload(bytes: Self.png + [UInt8](repeating: 0, count: 1000), field: .image), owner: users[0])
            }
            await #expect(throws: ChatError.unsupportedImage) { try await chats.store(Upload(bytes: [1, 2, 3], field: .image), owner: users[0]) }
            await #expect(throws: ChatError.fileNotFound) { try await chats.file(Identifier.make()) }
        }
    }
}

@Suite("Domain errors at the edge")
struct ErrorConversionTests {
    @Test("a domain error answers with the contract's body, and anything else is a 500 worth logging")
    func conversion() {
        let notFound = APIError(from: ChatError.chatNotFound)
        #expect(notFound.status == .notFound)
        #expect(notFound.jsonBody == #"{"error":{"code":"chat_not_found","message":"There is no such chat."}}"#)
        #expect(ChatError.chatNotFound.jsonBody == notFound.jsonBody)
        #expect(!APIError.isServerFault(ChatError.chatNotFound))
        struct Unexpected: Error {}
        #expect(APIError(from: Unexpected()).jsonBody == APIError.internalError.jsonBody)
        #expect(APIError.isServerFault(Unexpected()))
        let tooLarge = APIError(from: ChatError.imageTooLarge(maxBytes: 10))
        #expect(tooLarge.status == .contentTooLarge && tooLarge.message == "An image is at most 10 bytes." && tooLarge.code == "file_too_large")
    }
}
