//! A parser for Java `.properties` text with the semantics of `java.util.Properties::load`.

use super::ConfigError;

/// Parses Java properties text into `(key, value)` pairs, in file order (a key that occurs twice
/// appears twice; apply them in order and the last one wins, as in Java).
///
/// Follows `java.util.Properties::load(Reader)`:
/// - lines end with `\n`, `\r` or `\r\n`; blank lines are skipped;
/// - a line whose first non-whitespace character is `#` or `!` is a comment (a trailing
///   backslash does not continue a comment);
/// - a line ending in an odd number of backslashes continues on the next line, whose leading
///   whitespace is dropped;
/// - the key ends at the first unescaped `=`, `:` or whitespace; whitespace around the
///   separator is skipped, and one `=` or `:` after whitespace is part of the separator;
/// - in keys and values, `\t`, `\n`, `\r`, `\f` and `\uXXXX` are escapes, and a backslash
///   before any other character stands for that character (`\:`, `\=`, `\ `, `\\`, `\#`);
/// - leading whitespace of a value is dropped, trailing whitespace is kept (the typed setters
///   trim values, as Java's `ConfigDef` does).
///
/// Whitespace is space, tab and form feed. The only error is a malformed `\uXXXX` escape.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    let mut lines = natural_lines(text).peekable();
    while let Some((line_no, first)) = lines.next() {
        let trimmed = first.trim_start_matches(is_ws);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        let mut logical = String::from(trimmed);
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start_matches(is_ws)),
                None => break,
            }
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        let key = unescape(raw_key, line_no)?;
        let value = unescape(raw_value, line_no)?;
        out.push((key, value));
    }
    Ok(out)
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\u{c}'
}

/// Splits text into natural lines (terminated by `\n`, `\r` or `\r\n`), numbered from 1.
fn natural_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text;
    let mut line_no = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        line_no += 1;
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..end];
        let after = &rest[end..];
        rest = if let Some(r) = after.strip_prefix("\r\n") {
            r
        } else if after.is_empty() {
            after
        } else {
            &after[1..]
        };
        Some((line_no, line))
    })
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

fn split_key_value(line: &str) -> (&str, &str) {
    let mut preceding_backslash = false;
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut has_sep = false;
    for (i, c) in line.char_indices() {
        if !preceding_backslash && (c == '=' || c == ':') {
            key_end = i;
            value_start = i + 1;
            has_sep = true;
            break;
        }
        if !preceding_backslash && is_ws(c) {
            key_end = i;
            value_start = i + c.len_utf8();
            break;
        }
        preceding_backslash = c == '\\' && !preceding_backslash;
    }
    let mut rest = &line[value_start..];
    while let Some(c) = rest.chars().next() {
        if is_ws(c) {
            rest = &rest[c.len_utf8()..];
        } else if !has_sep && (c == '=' || c == ':') {
            has_sep = true;
            rest = &rest[1..];
        } else {
            break;
        }
    }
    (&line[..key_end], rest)
}

fn unescape(s: &str, line: usize) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => {}
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = (hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| ConfigError::Properties {
                        line,
                        message: format!("malformed \\uxxxx encoding: \\u{hex}"),
                    })?;
                // Java strings are UTF-16: a surrogate pair arrives as two escapes.
                if (0xD800..0xDC00).contains(&code) {
                    let rest = chars.as_str();
                    let low = rest
                        .strip_prefix("\\u")
                        .and_then(|r| r.get(..4))
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .filter(|l| (0xDC00..0xE000).contains(l));
                    if let Some(low) = low {
                        let combined = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                        out.push(char::from_u32(combined).unwrap_or('\u{FFFD}'));
                        chars = rest[6..].chars();
                        continue;
                    }
                }
                out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
            }
            Some(other) => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Vec<(String, String)> {
        parse_properties(text).unwrap()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn separators() {
        assert_eq!(
            p("a=1\nb:2\nc 3\nd = 4\ne : 5\nf  =  6\ng\n h\t7"),
            kv(&[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "4"),
                ("e", "5"),
                ("f", "6"),
                ("g", ""),
                ("h", "7")
            ])
        );
        // Only one separator is consumed.
        assert_eq!(p("a==b\nc :=d"), kv(&[("a", "=b"), ("c", "=d")]));
    }

    #[test]
    fn comments_and_blank_lines() {
        assert_eq!(
            p("# c\n  ! c\n\n   \nx=1 # not a comment\r\n#y=2"),
            kv(&[("x", "1 # not a comment")])
        );
        // A comment does not continue.
        assert_eq!(p("# c \\\nx=1"), kv(&[("x", "1")]));
    }

    #[test]
    fn continuation() {
        assert_eq!(p("a=b\\\n    c\\\n\td"), kv(&[("a", "bcd")]));
        assert_eq!(p("a=b\\\\\nc=d"), kv(&[("a", "b\\"), ("c", "d")]));
        assert_eq!(p("a=b\\"), kv(&[("a", "b")]));
        assert_eq!(p("a=b\\\r\n  # c"), kv(&[("a", "b# c")]));
        assert_eq!(p("a=b\\\n\nc=d"), kv(&[("a", "b"), ("c", "d")]));
        assert_eq!(
            p("a=1\rb=2\r\nc=3"),
            kv(&[("a", "1"), ("b", "2"), ("c", "3")])
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            p("k\\:e\\=y\\ x = v\\:\\=\\n\\t\\u0041\\\\\\q"),
            kv(&[("k:e=y x", "v:=\n\tA\\q")])
        );
        assert_eq!(p("e=\\uD83D\\uDE00!"), kv(&[("e", "\u{1F600}!")]));
        assert!(matches!(
            parse_properties("x=1\ny=\\u12G4"),
            Err(ConfigError::Properties { line: 2, .. })
        ));
        assert!(parse_properties("y=\\u12").is_err());
    }

    #[test]
    fn trailing_whitespace_kept() {
        assert_eq!(p("a = b  "), kv(&[("a", "b  ")]));
    }
}
