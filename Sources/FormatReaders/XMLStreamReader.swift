import CLibXML2
import Foundation

/// A streaming XML reader over libxml2's SAX2 push parser: memory stays flat whatever the file
/// size (no tree is built), elements are named by namespace URI (never by prefix), and the
/// network, DTD loading and entities are off: a document that declares an entity or references
/// one other than the five predefined ones is refused, so XXE and entity bombs never get in.
/// This is the only file that sees libxml2's types.
public enum XMLStreamReader {
    public struct Attribute: Sendable, Equatable {
        public var namespace: String
        public var localName: String
        public var value: String
        public init(namespace: String, localName: String, value: String) {
            self.namespace = namespace
            self.localName = localName
            self.value = value
        }
    }

    public enum Event: Sendable, Equatable {
        /// An element opens (an empty element is followed at once by its `.end`).
        case start(namespace: String, localName: String, attributes: [Attribute], line: Int)
        /// Character data inside the current element (text and CDATA up to the next tag, in one
        /// piece; text that is only whitespace between tags is skipped).
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

    /// Streams a file's events to `handler`, reading it in chunks.
    public static func read(path: String, chunkSize: Int = 1 << 20, _ handler: (Event) throws -> Void) throws {
        guard let file = FileHandle(forReadingAtPath: path) else {
            throw Failure(message: "cannot open \(path) as XML", line: 0)
        }
        defer { try? file.close() }
        try parse(name: path, handler) { feed in
            while let chunk = try file.read(upToCount: chunkSize), !chunk.isEmpty {
                guard chunk.withUnsafeBytes(feed) else { return }
            }
        }
    }

    /// Streams an in-memory document's events to `handler`.
    public static func read(bytes: [UInt8], _ handler: (Event) throws -> Void) throws {
        try parse(name: "memory.xml", handler) { feed in
            _ = bytes.withUnsafeBytes(feed)
        }
    }

    /// Runs the push parser over what `produce` feeds it (its `feed` answers false once parsing stopped).
    private static func parse(
        name: String, _ handler: (Event) throws -> Void,
        produce: ((UnsafeRawBufferPointer) -> Bool) throws -> Void
    ) throws {
        try withoutActuallyEscaping(handler) { handler in
            let state = UnsafeMutablePointer<SAXState>.allocate(capacity: 1)
            state.initialize(to: SAXState(handler: handler))
            defer {
                state.deinitialize(count: 1)
                state.deallocate()
            }
            var sax = makeSAXHandler()
            guard let ctxt = xmlCreatePushParserCtxt(&sax, UnsafeMutableRawPointer(state), nil, 0, name) else {
                throw Failure(message: "cannot start the XML parser", line: 0)
            }
            defer { xmlFreeParserCtxt(ctxt) }
            xmlCtxtUseOptions(ctxt, options)
            state.pointee.parser = ctxt
            var tags = StartTagScanner()
            try produce { chunk in
                guard state.pointee.failure == nil, state.pointee.thrown == nil else { return false }
                if let line = tags.scan(chunk) {
                    state.pointee.failure = Failure(
                        message: "an element has more than \(StartTagScanner.mostAttributes) attributes (namespace declarations included)",
                        line: line)
                    return false
                }
                let base = chunk.baseAddress?.assumingMemoryBound(to: CChar.self)
                var offset = 0
                // xmlParseChunk takes an Int32 size.
                while offset < chunk.count, state.pointee.failure == nil, state.pointee.thrown == nil {
                    let n = min(chunk.count - offset, 1 << 30)
                    if xmlParseChunk(ctxt, base.map { $0 + offset }, Int32(n), 0) != 0 { state.pointee.fail(nil) }
                    offset += n
                }
                return state.pointee.failure == nil && state.pointee.thrown == nil
            }
            if state.pointee.failure == nil, state.pointee.thrown == nil, xmlParseChunk(ctxt, nil, 0, 1) != 0 {
                state.pointee.fail(nil)
            }
            if let thrown = state.pointee.thrown { throw thrown }
            if var failure = state.pointee.failure {
                if failure.line <= 0 { failure.line = Int(xmlSAX2GetLineNumber(UnsafeMutableRawPointer(ctxt))) }
                throw failure
            }
            if ctxt.pointee.wellFormed == 0 {
                throw Failure(message: "malformed XML", line: Int(xmlSAX2GetLineNumber(UnsafeMutableRawPointer(ctxt))))
            }
        }
    }
}

/// Counts the attributes of each start tag before libxml2 sees it: its check for a repeated
/// attribute compares each with all before it, so one element of 500,000 attributes (6 MB) took
/// 111 s, and an invoice's 32 MiB would have run near an hour. A linear pass over the bytes:
/// `=` outside quotes inside a tag. Comments, CDATA and declarations (`<!`, `<?`) are skipped to
/// their first `>`, which may end them early: what follows is read as text, where nothing counts.
struct StartTagScanner {
    static let mostAttributes = 1_000
    private enum Mode { case text, open, tag, quoted(UInt8), other }
    private var mode = Mode.text
    private var count = 0
    private var line = 1

    /// The line of a tag past the limit, or nil.
    mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Int? {
        for b in bytes {
            if b == 0x0A { line += 1 }
            switch mode {
            case .text:
                if b == 0x3C { mode = .open }
            case .open:
                mode = b == 0x21 || b == 0x3F ? .other : .tag
                count = 0
            case .tag:
                switch b {
                case 0x3E: mode = .text
                case 0x22, 0x27: mode = .quoted(b)
                case 0x3D:
                    count += 1
                    if count > Self.mostAttributes { return line }
                default: break
                }
            case let .quoted(q):
                if b == q { mode = .tag }
            case .other:
                if b == 0x3E { mode = .text }
            }
        }
        return nil
    }
}

/// The parse's state, reached from libxml2's callbacks through their user-data pointer (a raw
/// pointer, not a class: no exclusivity checks on the per-element path).
private struct SAXState {
    let handler: (XMLStreamReader.Event) throws -> Void
    var parser: xmlParserCtxtPtr?
    /// Character data since the last tag, delivered as one `.text` before the next tag.
    var text: [UInt8] = []
    var textHasCDATA = false
    var failure: XMLStreamReader.Failure?
    var thrown: (any Error)?
    /// Element and attribute names and namespace URIs are interned in the parser's dictionary for
    /// the whole parse, so a pointer stands for its text: a small direct-mapped cache turns the
    /// same pointer into the same String without copying (URIs are long; this was a sixth of the time).
    var names = [(pointer: UnsafePointer<xmlChar>?, text: String)](repeating: (nil, ""), count: 512)

    mutating func name(_ p: UnsafePointer<xmlChar>?) -> String {
        guard let p else { return "" }
        let slot = Int((UInt(bitPattern: p) >> 3) & 511)
        if names[slot].pointer == p { return names[slot].text }
        let text = string(p)
        names[slot] = (p, text)
        return text
    }

    init(handler: @escaping (XMLStreamReader.Event) throws -> Void) { self.handler = handler }

    var line: Int { parser.map { Int(xmlSAX2GetLineNumber(UnsafeMutableRawPointer($0))) } ?? 0 }

    /// Records the first failure and stops the parser.
    mutating func fail(_ message: String?, line: Int? = nil) {
        if failure == nil, thrown == nil {
            failure = XMLStreamReader.Failure(message: message ?? "malformed XML", line: line ?? self.line)
        }
        if let parser { xmlStopParser(parser) }
    }

    mutating func emit(_ event: XMLStreamReader.Event) {
        guard failure == nil, thrown == nil else { return }
        do {
            try handler(event)
        } catch {
            thrown = error
            if let parser { xmlStopParser(parser) }
        }
    }

    mutating func flushText() {
        guard !text.isEmpty else { return }
        if textHasCDATA || text.contains(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) {
            emit(.text(String(decoding: text, as: UTF8.self)))
        }
        text.removeAll(keepingCapacity: true)
        textHasCDATA = false
    }
}

private func string(_ p: UnsafePointer<xmlChar>?) -> String {
    guard let p else { return "" }
    return String(cString: UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self))
}

private func state(_ ctx: UnsafeMutableRawPointer?) -> UnsafeMutablePointer<SAXState> {
    ctx!.assumingMemoryBound(to: SAXState.self)
}

/// The callbacks, built per parse (the C struct is not Sendable, so no shared global).
private func makeSAXHandler() -> xmlSAXHandler {
    var h = xmlSAXHandler()
    h.initialized = XML_SAX2_MAGIC
    h.startElementNs = { ctx, localName, _, uri, _, _, attributeCount, _, attributes in
        let s = state(ctx)
        s.pointee.flushText()
        var list: [XMLStreamReader.Attribute] = []
        if attributeCount > 0, let attributes {
            list.reserveCapacity(Int(attributeCount))
            for i in 0..<Int(attributeCount) {
                // Five pointers per attribute: local name, prefix, URI, value start, value end.
                let a = attributes + 5 * i
                guard let start = a[3], let end = a[4] else { continue }
                let bytes = UnsafeBufferPointer(start: start, count: end - start)
                var value = String(decoding: bytes, as: UTF8.self)
                // Without entity substitution libxml2 keeps a decoded '&' as "&#38;" in attribute
                // values (a literal '&' cannot occur), so this restores the text exactly.
                if bytes.contains(0x26) { value = value.replacingOccurrences(of: "&#38;", with: "&") }
                list.append(XMLStreamReader.Attribute(namespace: s.pointee.name(a[2]), localName: s.pointee.name(a[0]), value: value))
            }
        }
        s.pointee.emit(.start(namespace: s.pointee.name(uri), localName: s.pointee.name(localName), attributes: list, line: s.pointee.line))
    }
    h.endElementNs = { ctx, localName, _, uri in
        let s = state(ctx)
        s.pointee.flushText()
        s.pointee.emit(.end(namespace: s.pointee.name(uri), localName: s.pointee.name(localName)))
    }
    h.characters = { ctx, bytes, count in
        guard let bytes, count > 0 else { return }
        state(ctx).pointee.text.append(contentsOf: UnsafeBufferPointer(start: bytes, count: Int(count)))
    }
    h.ignorableWhitespace = h.characters
    h.cdataBlock = { ctx, bytes, count in
        let s = state(ctx)
        s.pointee.textHasCDATA = true
        guard let bytes, count > 0 else { return }
        s.pointee.text.append(contentsOf: UnsafeBufferPointer(start: bytes, count: Int(count)))
    }
    h.entityDecl = { ctx, name, _, _, _, _ in
        state(ctx).pointee.fail("entity declarations are not allowed (<!ENTITY \(string(name))>): external and nested entities are refused")
    }
    h.reference = { ctx, name in
        state(ctx).pointee.fail("entity reference &\(string(name)); is not allowed")
    }
    h.serror = { ctx, error in
        guard let ctx, let error else { return }
        let s = state(ctx)
        // Warnings are not failures, except an entity left undeclared (its text would vanish).
        let undeclared = error.pointee.code == Int32(XML_WAR_UNDECLARED_ENTITY.rawValue)
        guard error.pointee.level.rawValue >= XML_ERR_ERROR.rawValue || undeclared else { return }
        let message = error.pointee.message.map { String(cString: $0).trimmingCharacters() } ?? "XML error"
        s.pointee.fail(message, line: Int(error.pointee.line))
    }
    return h
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var s = Substring(self)
        while let l = s.last, l.isWhitespace { s.removeLast() }
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        return String(s)
    }
}
