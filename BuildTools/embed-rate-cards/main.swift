import Foundation

// embed-rate-cards OUTPUT CARD.yaml…: writes a Swift file holding each card's bytes (base64, so no
// text in a card can end the literal), keyed by the file name without `.yaml`.
let arguments = CommandLine.arguments.dropFirst()
guard let output = arguments.first else {
    FileHandle.standardError.write(Data("usage: embed-rate-cards OUTPUT CARD.yaml…\n".utf8))
    exit(2)
}
var source = """
    // Generated at build time by embed-rate-cards from RateCards/*.yaml. Do not edit.
    enum GeneratedRateCards {
        static let base64: [String: String] = [

    """
for path in arguments.dropFirst() {
    let url = URL(fileURLWithPath: path)
    let name = url.deletingPathExtension().lastPathComponent
    let data = try Data(contentsOf: url)
    source += "        \"\(name)\": \"\(data.base64EncodedString())\",\n"
}
source += "    ]\n}\n"
try source.write(toFile: output, atomically: true, encoding: .utf8)
