import Metrics
import ParleyCore

/// What the login flow counts (docs/deploy.md, "Monitoring"), made once per process.
struct LoginMetrics: Sendable {
    /// The process's login metrics; the first use registers them, at zero.
    static let shared = LoginMetrics()

    /// Codes stored and queued for mail.
    let codesSent: Counter
    /// Codes refused at `/verify`, by reason; each reason's counter is made up front, so that every one exports zero.
    private let failures: [Reason: Counter]

    /// Why a code was refused, as the `reason` label says it.
    enum Reason: String, CaseIterable {
        case malformed
        case noCode = "no_code"
        case expired
        case wrongCode = "wrong_code"
        case locked
        case rateLimited = "rate_limited"
    }

    private init() {
        let factory = ParleyMetrics.factory
        self.codesSent = Counter(label: "parley_login_codes_sent_total", factory: factory)
        var failures: [Reason: Counter] = [:]
        for reason in Reason.allCases {
            failures[reason] = Counter(label: "parley_login_verifications_failed_total", dimensions: [("reason", reason.rawValue)], factory: factory)
        }
        self.failures = failures
    }

    /// Counts a refused code.
    func failed(_ refusal: LoginError) {
        let reason: Reason
        switch refusal {
        case .malformedCode: reason = .malformed
        case .noCode: reason = .noCode
        case .codeExpired: reason = .expired
        case .wrongCode: reason = .wrongCode
        case .tooManyAttempts: reason = .locked
        case .verifyAddressLimited, .addressLimited, .codeSentRecently: reason = .rateLimited
        case .invalidRefreshToken, .refreshTokenReused: return
        }
        self.failures[reason]?.increment()
    }
}
