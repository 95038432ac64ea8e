import CLibXML2

/// A streaming XML reader over libxml2's `xmlTextReader`: memory stays flat whatever the file
/// size, elements are named by namespace URI (never by prefix), and the network, DTD loading and
/// entity substitution are off (an unexpanded entity reference is an error, so XXE and entity
/// bombs never get in). This is the only file that sees libxml2's types.
public enum XMLStreamReader {
    public struct Attribute: Sendable, Equatable {
        public var namespace: String
        public var localName: String
        public var value: String
    }

    public enum Event: Sendable, Equatable {
        /// An element opens (an empty element is followed at once by its `.end`).
        case start(namespace: String, localName: String, attributes: [Attribute], line: Int)
        /// Character data inside the current element (text or CDATA).
        case text(String)
        case end(namespace: String, localName: String)
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var line: Int
        public var description: String { "line \(line): \(message)" }
    }

    /// The libxml2 version this build links.
    public static var libraryVersion: String { String(cString: usagebox_libxml_version()) }

    static let options = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue)

    /// Streams a file's events to `handler`.
    public static func read(path: String, _ handler: (Event) throws -> Void) throws {
        guard let reader = xmlReaderForFile(path, nil, options) else {
            throw Failure(message: "cannot open \(path) as XML", line: 0)
        }
        try run(reader, handler)
    }

    /// Streams an in-memory document's events to `handler`.
    public static func read(bytes: [UInt8], _ handler: (Event) throws -> Void) throws {
        try bytes.withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) { chars in
                guard let reader = xmlReaderForMemory(chars.baseAddress, Int32(chars.count), "memory.xml", nil, options) else {
                    throw Failure(message: "cannot read the document as XML", line: 0)
                }
                try run(reader, handler)
            }
        }
    }

    /// The first error libxml2 reports, kept for the thrown `Failure`.
    private final class ErrorBox {
        var message: String?
        var line = 0
    }

    private static func run(_ reader: xmlTextReaderPtr, _ handler: (Event) throws -> Void) throws {
        defer { xmlFreeTextReader(reader) }
        let box = ErrorBox()
        let context = Unmanaged.passUnretained(box).toOpaque()
        withExtendedLifetime(box) {
            xmlTextReaderSetStructuredErrorHandler(reader, { ctx, error in
                guard let ctx, let error else { return }
                let box = Unmanaged<ErrorBox>.fromOpaque(ctx).takeUnretainedValue()
                // Warnings are not failures; errors and fatal errors are.
                guard box.message == nil, error.pointee.level.rawValue >= XML_ERR_ERROR.rawValue else { return }
                box.message = error.pointee.message.map { String(cString: $0).trimmingCharacters() } ?? "XML error"
                box.line = Int(error.pointee.line)
            }, context)
        }
        func string(_ p: UnsafePointer<xmlChar>?) -> String {
            guard let p else { return "" }
            return String(cString: UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self))
        }
        while true {
            let rc = xmlTextReaderRead(reader)
            if rc == 0 { break }
            if rc < 0 {
                throw Failure(message: box.message ?? "malformed XML", line: box.line > 0 ? box.line : Int(xmlTextReaderGetParserLineNumber(reader)))
            }
            switch xmlTextReaderNodeType(reader) {
            case 1:  // element
                let namespace = string(xmlTextReaderConstNamespaceUri(reader))
                let localName = string(xmlTextReaderConstLocalName(reader))
                let line = Int(xmlTextReaderGetParserLineNumber(reader))
                let isEmpty = xmlTextReaderIsEmptyElement(reader) == 1
                var attributes: [Attribute] = []
                if xmlTextReaderHasAttributes(reader) == 1 {
                    while xmlTextReaderMoveToNextAttribute(reader) == 1 {
                        let ns = string(xmlTextReaderConstNamespaceUri(reader))
                        // Namespace declarations are plumbing, not data.
                        if ns == "http://www.w3.org/2000/xmlns/" { continue }
                        attributes.append(Attribute(namespace: ns, localName: string(xmlTextReaderConstLocalName(reader)),
                                                    value: string(xmlTextReaderConstValue(reader))))
                    }
                    xmlTextReaderMoveToElement(reader)
                }
                try handler(.start(namespace: namespace, localName: localName, attributes: attributes, line: line))
                if isEmpty { try handler(.end(namespace: namespace, localName: localName)) }
            case 3, 4:  // text, CDATA
                try handler(.text(string(xmlTextReaderConstValue(reader))))
            case 5:  // entity reference left unexpanded
                throw Failure(message: "entity reference &\(string(xmlTextReaderConstLocalName(reader))); is not allowed",
                              line: Int(xmlTextReaderGetParserLineNumber(reader)))
            case 15:  // end element
                try handler(.end(namespace: string(xmlTextReaderConstNamespaceUri(reader)), localName: string(xmlTextReaderConstLocalName(reader))))
            default:
                continue
            }
        }
        if let message = box.message, box.line > 0 {
            throw Failure(message: message, line: box.line)
        }
    }
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var s = Substring(self)
        while let l = s.last, l.isWhitespace { s.removeLast() }
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        return String(s)
    }
}
