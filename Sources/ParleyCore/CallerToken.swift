/// The access token of the request being served, for calls to other services made on the caller's behalf.
public enum CallerToken {
    /// Set by ``AuthenticationMiddleware`` (and the realtime handler) for the duration of the request.
    @TaskLocal public static var current: String?
}
