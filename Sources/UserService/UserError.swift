public import ParleyCore

/// What the user service refuses about accounts and profiles; each case answers as the contract says.
public enum UserError: Error, Equatable, APIErrorConvertible {
    /// Not a plain `local@domain.tld` address.
    case invalidEmail
    /// A display name the rules refuse; the sentence says which rule.
    case invalidName(String)
    /// The token names an account that no longer exists.
    case accountGone
    /// The avatar is not a file its owner uploaded.
    case avatarNotFound
    /// No such user.
    case userNotFound

    /// The contract's answer.
    public var apiError: APIError {
        switch self {
        case .invalidEmail: .badRequest("Enter a valid email address.", code: "invalid_email")
        case .invalidName(let message): .badRequest(message, code: "invalid_name")
        case .accountGone: .unauthorized("This account no longer exists.", code: "invalid_token")
        case .avatarNotFound: .notFound("There is no such file.", code: "file_not_found")
        case .userNotFound: .notFound("There is no such user.", code: "user_not_found")
        }
    }
}

/// What the login flow refuses: codes, their limits, and refresh tokens; each case answers as the contract says.
public enum LoginError: Error, Equatable, APIErrorConvertible {
    /// Too many code requests from one client address within the window.
    case addressLimited(retryAfter: Int)
    /// Too many code checks from one client address within the window.
    case verifyAddressLimited(retryAfter: Int)
    /// A code went to this address within the resend window.
    case codeSentRecently(retryAfter: Int)
    /// Not six digits.
    case malformedCode
    /// No code is waiting for this address (never asked, or used).
    case noCode
    case codeExpired
    case wrongCode
    /// The code was burned by wrong tries, or the email is locked out after too many wrong codes, or this client address
    /// has entered too many wrong codes for it: wait `retryAfter`, then ask for a new code.
    case tooManyAttempts(retryAfter: Int)
    case invalidRefreshToken
    /// A rotated refresh token came back: its whole family is revoked.
    case refreshTokenReused

    /// The contract's answer.
    public var apiError: APIError {
        switch self {
        case .addressLimited(let wait): .rateLimited("Too many code requests from this address; try again later.", retryAfter: wait)
        case .verifyAddressLimited(let wait): .rateLimited("Too many sign-in attempts from this address; try again later.", retryAfter: wait)
        case .codeSentRecently(let wait):
            .rateLimited("A code was sent to this address a moment ago; wait before asking for another.", retryAfter: wait)
        case .malformedCode: .badRequest("The code is six digits.", code: "invalid_code")
        case .noCode: .badRequest("There is no valid code for this address; ask for a new one.", code: "invalid_code")
        case .codeExpired: .badRequest("The code has expired; ask for a new one.", code: "code_expired")
        case .wrongCode: .badRequest("The code is not correct.", code: "invalid_code")
        case .tooManyAttempts(let wait):
            .rateLimited("Too many wrong codes; wait, then ask for a new one.", retryAfter: wait, code: "too_many_attempts")
        case .invalidRefreshToken: .unauthorized("The refresh token is not valid.", code: "invalid_token")
        case .refreshTokenReused: .unauthorized("This refresh token was already used; sign in again.", code: "token_reused")
        }
    }
}
