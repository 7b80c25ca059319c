//! Literal text inside the regular expressions runners take (Go's RE2, JavaScript, PCRE).

/// `text` as a regex matching exactly itself, in the subset of escapes RE2, JavaScript (with or
/// without the `u` flag) and PCRE all read the same way: a backslash before each syntax
/// character and `/`, and `\xHH` for control characters (so the pattern stays on one line).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' | '^' | '$' | '.' | '|' | '?' | '*' | '+' | '(' | ')' | '[' | ']' | '{' | '}'
            | '/' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// `^(?:a|b|…)$` over the escaped alternatives, in the given order.
pub fn anchored_union<'a>(alternatives: impl IntoIterator<Item = &'a str>) -> String {
    let parts: Vec<String> = alternatives.into_iter().map(escape).collect();
    format!("^(?:{})$", parts.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_syntax_and_control_characters() {
        assert_eq!(
            escape("a.b*c (x|y) [1] {2} ^$ \\ / ü\n\t"),
            "a\\.b\\*c \\(x\\|y\\) \\[1\\] \\{2\\} \\^\\$ \\\\ \\/ ü\\x0A\\x09"
        );
        assert_eq!(anchored_union(["a b", "c.d"]), "^(?:a b|c\\.d)$");
    }
}
