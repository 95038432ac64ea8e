/// A provider's name as a multi-provider export writes it ("Anthropic, PBC", "Amazon Web Services,
/// Inc.", "Microsoft Corporation"), reduced to the name a plugin registers (`anthropic`, `amazon
/// web services`, `microsoft`): "Anthropic, PBC" was taken as a provider no plugin sells, and the
/// meter's Anthropic usage was set aside as another vendor's.
public enum ProviderName {
    static let legalForms: Set<String> = [
        "inc", "incorporated", "pbc", "llc", "ltd", "limited", "corp", "corporation", "co", "company", "gmbh", "ag", "sa", "plc", "lp",
        "llp", "bv", "sarl", "sas", "kk", "pte",
    ]

    public static func normalized(_ name: String) -> String {
        var words = name.lowercased().filter { $0 != "." }.split { !($0.isLetter || $0.isNumber) }.map(String.init)
        while words.count > 1, let last = words.last, legalForms.contains(last) { words.removeLast() }
        if words.count > 1, words.first == "the" { words.removeFirst() }
        return words.joined(separator: " ")
    }
}
