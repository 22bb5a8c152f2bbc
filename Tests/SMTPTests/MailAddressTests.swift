import Testing

@testable import SMTP

@Suite("Mail addresses")
struct MailAddressTests {
    @Test("'Parley <no-reply@localhost>' has a display name and an address")
    func nameAndAddress() throws {
        let address = try MailAddress(parsing: "Parley <no-reply@localhost>")
        #expect(address.displayName == "Parley")
        #expect(address.address == "no-reply@localhost")
        #expect(address.localPart == "no-reply")
        #expect(address.domain == "localhost")
    }

    @Test("a bare address has no display name")
    func bareAddress() throws {
        let address = try MailAddress(parsing: "  a@b.c ")
        #expect(address.displayName == nil)
        #expect(address.address == "a@b.c")
    }

    @Test("a quoted display name is unquoted")
    func quotedName() throws {
        let address = try MailAddress(parsing: #""Doe, \"JD\" Jane" <jane.doe+tag@example.com>"#)
        #expect(address.displayName == #"Doe, "JD" Jane"#)
        #expect(address.address == "jane.doe+tag@example.com")
    }

    @Test("an empty display name is none", arguments: ["<a@b.c>", "\"\" <a@b.c>", "   <a@b.c>"])
    func emptyName(text: String) throws {
        #expect(try MailAddress(parsing: text).displayName == nil)
    }

    @Test("UTF-8 display names and addresses are accepted")
    func unicode() throws {
        let address = try MailAddress(parsing: "Jürgen Groß <jürgen@bücher.example>")
        #expect(address.displayName == "Jürgen Groß")
        #expect(address.domain == "bücher.example")
    }

    @Test(
        "invalid addresses are rejected",
        arguments: [
            "", "plainaddress", "@example.com", "user@", "a@b@c.d", "user@exa mple.com", "us er@example.com",
            ".user@example.com", "user.@example.com", "us..er@example.com", "user@-example.com", "user@example..com",
            "Name <user@example.com", "Name user@example.com>", "\"Unclosed <a@b.c>", "user@exam_ple.com",
            "a@b.c\r\nBcc: victim@example.com", String(repeating: "x", count: 65) + "@example.com",
        ]
    )
    func rejects(text: String) {
        #expect(throws: MailAddressError.self) { try MailAddress(parsing: text) }
    }

    @Test("a display name with a line break is rejected")
    func rejectsHeaderInjection() {
        #expect(throws: MailAddressError.self) { try MailAddress(address: "a@b.c", displayName: "Evil\r\nBcc: x@y.z") }
    }

    @Test("an address literal domain is accepted")
    func addressLiteral() throws {
        #expect(try MailAddress(parsing: "root@[127.0.0.1]").domain == "[127.0.0.1]")
    }
}
