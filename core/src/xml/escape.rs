//! Escaping text for XML element content.

/// Escape text for element content. Control characters become character references so that
/// `\r` and `\t` survive XML end-of-line and whitespace handling.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("&#{};", c as u32)),
            c => out.push(c),
        }
    }
    out
}
