import CLibXML2

/// The libxml2 version this build links, proving the Debian package is found. The streaming XML
/// reader for invoices (UBL/Peppol) builds on this module in the reconciliation framework.
public enum LibXML2 {
    public static var version: String {
        String(cString: usagebox_libxml_version())
    }
}
