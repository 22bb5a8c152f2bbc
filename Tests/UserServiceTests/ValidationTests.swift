import ParleyCore
import Testing

@testable import UserService

@Suite("Email and name validation")
struct ValidationTests {
    @Test("emails are trimmed and lower-cased")
    func normalisesEmail() throws {
        #expect(try EmailAddress.normalise("  Alice.B+chat@Example.COM \n") == "alice.b+chat@example.com")
    }

    @Test(
        "malformed emails are refused",
        arguments: [
            "", "alice", "alice@", "@example.com", "alice@example", "al ice@example.com", "alice@@example.com", "a..b@example.com",
            ".a@example.com", "alice@-example.com", "alice@exa_mple.com", "<script>@example.com", String(repeating: "a", count: 250) + "@example.com",
        ]
    )
    func refusesMalformedEmail(email: String) {
        #expect(throws: UserError.invalidEmail) { try EmailAddress.normalise(email) }
    }

    @Test("names are trimmed and kept within 1–50 characters")
    func validatesNames() throws {
        #expect(try DisplayName.validate("  Zoë 👩‍💻  ") == "Zoë 👩‍💻")
        #expect(try DisplayName.validate(String(repeating: "é", count: 50)).count == 50)
        #expect(throws: UserError.invalidName("The name must not be empty.")) { try DisplayName.validate("   ") }
        #expect(throws: UserError.invalidName("The name must be at most 50 characters.")) {
            try DisplayName.validate(String(repeating: "x", count: 51))
        }
        let control = UserError.invalidName("The name must not contain control characters.")
        #expect(throws: control) { try DisplayName.validate("bad\u{0007}name") }
        #expect(throws: control) { try DisplayName.validate("two\nlines") }
        #expect(throws: control) { try DisplayName.validate("rtl\u{202E}trick") }
    }

    @Test("a new account's name is the email's local part")
    func defaultName() {
        #expect(DisplayName.fromEmail("alice@example.com") == "alice")
        #expect(DisplayName.fromEmail(String(repeating: "b", count: 64) + "@example.com").count == 50)
    }
}

@Suite("Secrets")
struct SecretsTests {
    @Test("login codes are six digits and vary")
    func loginCodes() {
        let codes = (0..<200).map { _ in Secrets.loginCode() }
        #expect(codes.allSatisfy { $0.count == 6 && $0.allSatisfy(\.isNumber) })
        #expect(Set(codes).count > 190)
    }

    @Test("code hashes depend on email, code and the server secret")
    func codeHashes() {
        let pepper = SigningKeyFixture.key.codePepper
        let hash = Secrets.codeHash(email: "a@b.co", code: "123456", pepper: pepper)
        #expect(hash.count == 64)
        #expect(hash != Secrets.codeHash(email: "a@b.co", code: "123457", pepper: pepper))
        #expect(hash != Secrets.codeHash(email: "c@b.co", code: "123456", pepper: pepper))
        #expect(ConstantTime.equals(hash, Secrets.codeHash(email: "a@b.co", code: "123456", pepper: pepper)))
        #expect(!ConstantTime.equals(hash, String(hash.dropLast())))
    }
}
