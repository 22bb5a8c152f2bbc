import ChatService
import ParleyCore
import UserService

/// The all-in-one chat service's directory: the user service of the same process, asked directly.
struct UserServiceDirectory: UserDirectory {
    let users: UserService

    func profiles(of ids: [String]) async throws -> [String: PublicUser] {
        try await self.users.profiles(of: ids)
    }
}
