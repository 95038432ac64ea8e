public import ExactJSON

/// The per-batch answer of `POST /v1/usage/batch` (docs/api.md).
public struct IngestResponse: Sendable, Equatable {
    public var accepted = 0
    public var duplicates = 0
    public var conflicts = 0
    public var rejected = 0
    public var errors: [Problem] = []

    /// A conflict or rejection of the event at `index` (its position in the batch).
    public struct Problem: Sendable, Equatable {
        public enum Status: String, Sendable { case rejected, conflict }
        public var index: Int
        public var eventID: String?
        public var status: Status
        public var code: String
        public var message: String
        public var field: String?
        /// Where the event came from when read from a file (CLI only).
        public var file: String?
        public var line: Int?

        public init(index: Int, eventID: String?, status: Status, code: String, message: String, field: String? = nil) {
            self.index = index
            self.eventID = eventID
            self.status = status
            self.code = code
            self.message = message
            self.field = field
        }
    }

    public init() {}

    /// Events whose outcome was `accepted` and which were Corrections into closed periods.
    public var postClose = 0

    public mutating func add(_ other: IngestResponse, errorLimit: Int = .max) {
        accepted += other.accepted
        duplicates += other.duplicates
        conflicts += other.conflicts
        rejected += other.rejected
        postClose += other.postClose
        for e in other.errors where errors.count < errorLimit { errors.append(e) }
    }

}
