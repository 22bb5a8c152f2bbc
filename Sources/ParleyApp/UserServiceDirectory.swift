import ChatService
import ParleyCore
import UserService

/// The all-in-one chat service's directory and its mailer's address book: the user service of the same process, asked
/// directly.
struct UserServiceDirectory: UserDirectory, MailAddressBook {
    let users: UserService

    func profiles(of ids: [String]) async throws -> [String: PublicUser] {
        try await self.users.profiles(of: ids)
    }

    func mailContacts(of ids: [String]) async throws -> [String: MailContact] {
        Dictionary(try await self.users.mailContacts(of: ids).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }
}
