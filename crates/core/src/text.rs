//! How things are printed in messages and logs: URLs with the password
//! masked (a secret is never printed), statements abbreviated.

/// Replaces the password in `scheme://user:password@host` with `***`.
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    // The userinfo ends at the last '@' before the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

/// The first 120 characters of a statement, for messages.
pub fn abbreviate(sql: &str) -> String {
    let one_line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 120 {
        format!("{}...", one_line.chars().take(120).collect::<String>())
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url("mysql://root:s3cret@db:3306/x"),
            "mysql://root:***@db:3306/x"
        );
        assert_eq!(mask_url("mysql://root@db:3306"), "mysql://root@db:3306");
        assert_eq!(mask_url("mysql://u:p@ss@h/"), "mysql://u:***@h/");
    }
}

/// The backquoted identifier `s` starts with (`` `a``b` `` is ``a`b``),
/// and the text after its closing quote; `None` when `s` does not start
/// with one.
pub fn backquoted(s: &str) -> Option<(String, &str)> {
    let rest = s.strip_prefix('`')?;
    let mut name = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            if chars.peek().map(|(_, n)| *n) == Some('`') {
                chars.next();
                name.push('`');
                continue;
            }
            return Some((name, &rest[i + 1..]));
        }
        name.push(c);
    }
    // Unterminated: the name runs to the end.
    Some((name, ""))
}
