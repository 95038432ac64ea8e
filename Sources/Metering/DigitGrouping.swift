/// Whole numbers as people read them in tables and pages: 191400000 → "191,400,000".
public enum DigitGrouping {
    /// Thousands separated by commas; `minus` is the sign written before a negative number
    /// ("-" in terminals and CSV, U+2212 on pages).
    public static func grouped(_ v: Int64, minus: String = "-") -> String {
        let digits = String(v.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (v < 0 ? minus : "") + out
    }
}
