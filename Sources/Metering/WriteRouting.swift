/// Marks writes one server forwards to the server that owns their account, so the owner never
/// forwards them again (servers whose peer lists differ refuse instead of looping).
public enum WriteRouting {
    /// The request header a forwarding server sets.
    public static let header = "X-UsageBox-Forwarded"

    /// True while handling a write another server forwarded here.
    @TaskLocal public static var forwarded = false
}
