import HTTPTypes
import Hummingbird
import ParleyCore

/// The routes of group management and blocks: each parses its request, asks the service, and shapes the answer.
extension ChatController {
    /// Adds the group and block routes to `routes` (authenticated, under `/api/v1`).
    func addGroupRoutes(to routes: RouterGroup<ParleyRequestContext>) {
        routes.patch("chats/:id", use: self.updateGroup)
        routes.post("chats/:id/members", use: self.addMembers)
        routes.delete("chats/:id/members/:userId", use: self.removeMember)
        routes.put("chats/:id/members/:userId/role", use: self.setRole)
        routes.get("blocks", use: self.blocks)
        routes.put("blocks/:userId", use: self.block)
        routes.delete("blocks/:userId", use: self.unblock)
    }

    @Sendable func updateGroup(request: Request, context: ParleyRequestContext) async throws -> ChatSummary {
        let userID = try context.requireUserID()
        let body = try await request.decodeJSON(as: UpdateGroupRequest.self, context: context)
        return try await self.service.updateGroup(
            chatID: try context.parameters.require("id"),
            userID: userID,
            name: body.name,
            avatarFileID: body.avatarFileId
        )
    }

    @Sendable func addMembers(request: Request, context: ParleyRequestContext) async throws -> ChatSummary {
        let userID = try context.requireUserID()
        let body = try await request.decodeJSON(as: AddMembersRequest.self, context: context)
        return try await self.service.addMembers(chatID: try context.parameters.require("id"), userID: userID, userIDs: body.userIds)
    }

    @Sendable func removeMember(request: Request, context: ParleyRequestContext) async throws -> Response {
        let userID = try context.requireUserID()
        try await self.service.removeMember(
            chatID: try context.parameters.require("id"),
            userID: userID,
            memberID: try context.parameters.require("userId")
        )
        return Response(status: .noContent)
    }

    @Sendable func setRole(request: Request, context: ParleyRequestContext) async throws -> ChatSummary {
        let userID = try context.requireUserID()
        let body = try await request.decodeJSON(as: RoleRequest.self, context: context)
        return try await self.service.setRole(
            chatID: try context.parameters.require("id"),
            userID: userID,
            memberID: try context.parameters.require("userId"),
            role: body.role
        )
    }

    @Sendable func blocks(request: Request, context: ParleyRequestContext) async throws -> BlockList {
        BlockList(users: try await self.service.blocks(of: try context.requireUserID()))
    }

    @Sendable func block(request: Request, context: ParleyRequestContext) async throws -> Response {
        try await self.service.block(try context.parameters.require("userId"), by: try context.requireUserID())
        return Response(status: .noContent)
    }

    @Sendable func unblock(request: Request, context: ParleyRequestContext) async throws -> Response {
        try await self.service.unblock(try context.parameters.require("userId"), by: try context.requireUserID())
        return Response(status: .noContent)
    }
}
