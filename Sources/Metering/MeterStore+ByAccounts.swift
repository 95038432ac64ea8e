extension MeterStore {
    /// Each group of a grouped read, read in sets of accounts when the whole answer is past the
    /// read's bounds (100,000 groups, 16 MiB): an org-wide reconcile of 2,000 accounts groups by
    /// account × model × token type × day and was refused. Only a read that groups by account
    /// can be split so; its groups come back per set of accounts, not in one sorted list.
    public func forEachGroup(_ query: UsageQuery, _ body: (UsageGroup) throws -> Void) async throws {
        let whole: UsageResult
        do {
            whole = try await usage(query)
        } catch  where UsageAccumulator.isAnswerLimit(error) && query.groupBy.contains(.accountID) {
            var list = query
            list.groupBy = [.accountID]
            let accounts = try await usage(list).groups.compactMap { $0.keys[0] }
            // A set's accounts are one `IN` list in the store's SQL: at most a few thousand.
            var pending = Self.split(accounts[...], into: max(2, (accounts.count + Self.maxAccountsPerRead - 1) / Self.maxAccountsPerRead))
            while let set = pending.popLast() {
                var part = query
                part.scope = query.scope.intersect(.accounts(Array(set)))
                let groups: [UsageGroup]
                do {
                    groups = try await groupsOfPart(part)
                } catch  where UsageAccumulator.isAnswerLimit(error) && set.count > 1 {
                    pending += Self.split(set, into: 2)
                    continue
                }
                for g in groups { try body(g) }
            }
            return
        }
        for g in whole.groups { try body(g) }
    }

    /// One set's groups. A dimension the whole read groups by may be on none of one set's
    /// events, which the store refuses for that set: its groups have no value there.
    private func groupsOfPart(_ query: UsageQuery) async throws -> [UsageGroup] {
        do {
            return try await usage(query).groups
        } catch let e as UsageBoxError where e.code == .invalidArgument && !UsageAccumulator.isAnswerLimit(e) {
            guard let field = e.field, let at = query.groupBy.firstIndex(where: { $0.isDimension && $0.name == field }),
                !query.filters.contains(where: { $0.field.name == field })
            else { throw e }
            var less = query
            less.groupBy.remove(at: at)
            return try await groupsOfPart(less).map { g in
                var g = g
                g.keys.insert(nil, at: at)
                return g
            }
        }
    }

    static var maxAccountsPerRead: Int { 4_096 }

    static func split(_ accounts: ArraySlice<String>, into parts: Int) -> [ArraySlice<String>] {
        let size = (accounts.count + parts - 1) / max(parts, 1)
        guard size > 0 else { return [] }
        return stride(from: accounts.startIndex, to: accounts.endIndex, by: size).map { accounts[$0..<min($0 + size, accounts.endIndex)] }
    }
}
