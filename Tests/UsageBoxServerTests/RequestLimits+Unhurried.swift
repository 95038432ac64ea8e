import UsageBoxServer

extension RequestLimits {
    /// The server's limits with no read time limit to speak of: tests about something else ran a
    /// reconciliation past the 30 s default while every test shared two cores (CI) and were
    /// answered 400 `timeout`. The tests of the limit itself set their own.
    static var unhurried: RequestLimits {
        var limits = RequestLimits()
        limits.readSeconds = 3_600
        return limits
    }
}
