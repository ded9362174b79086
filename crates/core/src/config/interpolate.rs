//! `${VAR}` and `${VAR:-default}` substitution in pipeline files.
//!
//! Substitution runs on the text before YAML parsing, so it works for every
//! value type (a port number as well as a password). To stop a value from
//! changing the document's structure, each value is escaped for the quoting
//! it lands in; an unquoted value that YAML would misread is refused with
//! advice to quote it, rather than silently producing a different document.
//! `$${` writes a literal `${`. References inside comments are ignored.

/// A failed substitution, with its 1-based position in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolateError {
    pub line: u64,
    pub column: u64,
    pub message: String,
    pub hint: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Plain,
    Double,
    Single,
    Comment,
}

/// Expands references using `lookup` (normally `std::env::var`).
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(text.len());
    let mut ctx = Ctx::Plain;
    let (mut line, mut col) = (1u64, 1u64);
    let mut prev: char = '\n';
    let mut chars = text.char_indices().peekable();

    while let Some((i, c)) = chars.next() {
        let start_col = col;
        if c == '\n' {
            line += 1;
            col = 1;
            if ctx == Ctx::Comment {
                ctx = Ctx::Plain;
            }
            out.push(c);
            prev = c;
            continue;
        }
        col += 1;
        match ctx {
            Ctx::Comment => {
                out.push(c);
                prev = c;
                continue;
            }
            Ctx::Plain if c == '#' && (prev.is_whitespace()) => ctx = Ctx::Comment,
            Ctx::Plain if c == '"' && starts_scalar(prev) => ctx = Ctx::Double,
            Ctx::Plain if c == '\'' && starts_scalar(prev) => ctx = Ctx::Single,
            Ctx::Double if c == '\\' => {
                // Keep the escaped character as it is.
                out.push(c);
                if let Some((_, n)) = chars.next() {
                    col += 1;
                    out.push(n);
                    prev = n;
                }
                continue;
            }
            Ctx::Double if c == '"' => ctx = Ctx::Plain,
            Ctx::Single if c == '\'' => {
                if matches!(chars.peek(), Some((_, '\''))) {
                    out.push_str("''");
                    chars.next();
                    col += 1;
                    prev = '\'';
                    continue;
                }
                ctx = Ctx::Plain;
            }
            _ => {}
        }

        if c == '$' && text[i..].starts_with("$${") {
            out.push_str("${");
            chars.next();
            chars.next();
            col += 2;
            prev = '{';
            continue;
        }
        if c == '$' && text[i..].starts_with("${") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find('}').filter(|e| !rest[..*e].contains('\n')) else {
                return Err(InterpolateError {
                    line,
                    column: start_col,
                    message: "unterminated `${` reference".into(),
                    hint: "close it with `}`, or write `$${` for a literal `${`".into(),
                });
            };
            let body = &rest[..end];
            let (name, default) = match body.find(":-") {
                Some(p) => (&body[..p], Some(&body[p + 2..])),
                None => (body, None),
            };
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(InterpolateError {
                    line,
                    column: start_col,
                    message: format!("`${{{body}}}` is not a valid variable reference"),
                    hint: "use ${NAME} or ${NAME:-default}, where NAME is letters, digits and _"
                        .into(),
                });
            }
            let value = match (lookup(name), default) {
                (Some(v), _) => v,
                (None, Some(d)) => d.to_string(),
                (None, None) => {
                    return Err(InterpolateError {
                        line,
                        column: start_col,
                        message: format!("environment variable `{name}` is not set"),
                        hint: format!(
                            "export {name}=... before running sluice, or give a default: ${{{name}:-value}}"
                        ),
                    })
                }
            };
            let at_scalar_start = starts_scalar(prev);
            match ctx {
                Ctx::Double => escape_double(&value, &mut out),
                Ctx::Single => out.push_str(&value.replace('\'', "''")),
                _ => {
                    if !plain_safe(&value, at_scalar_start) {
                        return Err(InterpolateError {
                            line,
                            column: start_col,
                            message: format!(
                                "the value of `{name}` contains characters that YAML reads as syntax in an unquoted value"
                            ),
                            hint: format!("put the reference in double quotes: \"${{{name}}}\""),
                        });
                    }
                    out.push_str(&value);
                }
            }
            // Skip `{body}` in the input.
            for _ in 0..end + 2 {
                chars.next();
            }
            col += (end + 2) as u64;
            prev = 'x';
            continue;
        }
        out.push(c);
        prev = c;
    }
    Ok(out)
}

fn starts_scalar(prev: char) -> bool {
    prev.is_whitespace() || matches!(prev, ':' | '-' | '[' | '{' | ',' | '\n')
}

fn plain_safe(v: &str, at_start: bool) -> bool {
    if v.contains(['\n', '\r', '\t']) || v.contains(" #") || v.contains(": ") || v.ends_with(':') {
        return false;
    }
    if at_start {
        if let Some(first) = v.chars().next() {
            if "[]{}&*!|>'\"%@`#,?:-".contains(first) || first == ' ' {
                return false;
            }
        }
    }
    !v.ends_with(' ')
}

fn escape_double(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PW" => Some("s3cr#t".into()),
            "QUOTE" => Some("a\"b\\c".into()),
            "HASHY" => Some("x #y".into()),
            "PORT" => Some("3307".into()),
            "STAR" => Some("*x".into()),
            _ => None,
        }
    }

    #[test]
    fn plain_double_single_and_default() {
        let t = "a: ${PORT}\nb: \"${QUOTE}\"\nc: 'it''s ${PW}'\nd: ${NOPE:-fallback}\n";
        let out = interpolate(t, env).unwrap();
        assert_eq!(
            out,
            "a: 3307\nb: \"a\\\"b\\\\c\"\nc: 'it''s s3cr#t'\nd: fallback\n"
        );
    }

    #[test]
    fn missing_variable_has_position() {
        let err = interpolate("x: 1\nurl: mysql://root:${DB_PW}@h\n", env).unwrap_err();
        assert_eq!((err.line, err.column), (2, 19));
        assert!(err.message.contains("DB_PW"), "{}", err.message);
        assert!(err.hint.contains("export DB_PW"));
    }

    #[test]
    fn comments_and_escapes_are_left_alone() {
        let out = interpolate("# uses ${NOPE}\na: $${LITERAL} # ${NOPE}\n", env).unwrap();
        assert_eq!(out, "# uses ${NOPE}\na: ${LITERAL} # ${NOPE}\n");
    }

    #[test]
    fn unsafe_plain_values_are_refused() {
        let err = interpolate("a: ${HASHY}\n", env).unwrap_err();
        assert!(err.hint.contains("double quotes"));
        assert!(interpolate("a: ${STAR}\n", env).is_err());
        assert_eq!(interpolate("a: \"${STAR}\"\n", env).unwrap(), "a: \"*x\"\n");
        // Inside a larger plain scalar `#` without a preceding space is fine.
        assert_eq!(
            interpolate("a: u:${PW}@h\n", env).unwrap(),
            "a: u:s3cr#t@h\n"
        );
    }
}
