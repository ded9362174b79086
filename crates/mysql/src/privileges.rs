//! Reading `SHOW GRANTS` to find a missing privilege before anything is
//! written, instead of failing half-way through a migration.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::connect::Endpoint;
use crate::Result;

/// The current user's grants, parsed. When they include a role or anything
/// else we cannot evaluate, `decisive` is false and checks pass (the server
/// will still refuse, with the hint from [`Endpoint::error`]).
#[derive(Debug, Default)]
pub struct Grants {
    entries: Vec<(Vec<String>, String)>,
    decisive: bool,
}

impl Grants {
    pub async fn load(ep: &Endpoint, conn: &mut Conn) -> Result<Grants> {
        let lines: Vec<String> = conn
            .query("SHOW GRANTS")
            .await
            .map_err(|e| ep.error("reading the user's privileges (SHOW GRANTS)", e))?;
        Ok(Grants::parse(&lines))
    }

    pub fn parse(lines: &[String]) -> Grants {
        let mut g = Grants {
            entries: Vec::new(),
            decisive: true,
        };
        for line in lines {
            let Some(rest) = line.strip_prefix("GRANT ") else {
                continue;
            };
            let (Some(on), Some(to)) = (rest.find(" ON "), rest.find(" TO ")) else {
                // `GRANT role TO user`: privileges come from a role we do not expand.
                g.decisive = false;
                continue;
            };
            if on > to {
                g.decisive = false;
                continue;
            }
            let privs = split_privileges(&rest[..on]);
            let object = rest[on + 4..to].trim().to_string();
            g.entries.push((privs, object));
        }
        g
    }

    /// Whether `privilege` (e.g. "INSERT") is held on `db`.`table` (`table`
    /// `None` means on the whole database, or globally when `db` is `None`).
    pub fn has(&self, privilege: &str, db: Option<&str>, table: Option<&str>) -> bool {
        if !self.decisive {
            return true;
        }
        self.entries.iter().any(|(privs, object)| {
            let holds = privs
                .iter()
                .any(|p| p == privilege || p == "ALL PRIVILEGES" || p == "ALL");
            holds && covers(object, db, table)
        })
    }
}

/// `SELECT, INSERT, UPDATE (a, b)` → ["SELECT", "INSERT"]; column grants are
/// too narrow for whole-table copying, so they are dropped.
fn split_privileges(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|p| p.trim().to_ascii_uppercase())
        .filter(|p| !p.contains('('))
        .collect()
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches('`').replace("``", "`")
}

/// Whether a grant object like `*.*`, `` `shop\_%`.* `` or `` `a`.`b` `` covers db.table.
fn covers(object: &str, db: Option<&str>, table: Option<&str>) -> bool {
    if object == "*.*" {
        return true;
    }
    let Some(db) = db else { return false };
    let (odb, otable) = match object.find("`.") {
        Some(p) => (&object[..p + 1], &object[p + 2..]),
        None => match object.split_once('.') {
            Some(x) => x,
            None => return false,
        },
    };
    if !like(&unquote(odb), db) {
        return false;
    }
    match (otable.trim(), table) {
        ("*", _) => true,
        (t, Some(table)) => unquote(t) == table,
        (_, None) => false,
    }
}

/// SQL LIKE with `%`, `_` and `\` escapes, as used in database-level grants.
fn like(pattern: &str, s: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('%') => (0..=s.len()).any(|i| go(&p[1..], &s[i..])),
            Some('_') => !s.is_empty() && go(&p[1..], &s[1..]),
            Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && go(&p[2..], &s[1..]),
            Some(c) => s.first() == Some(c) && go(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    go(&p, &s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grants() {
        let g = Grants::parse(&[
            "GRANT USAGE ON *.* TO `u`@`%`".into(),
            "GRANT SELECT, INSERT, UPDATE (a, b) ON `shop\\_%`.* TO `u`@`%`".into(),
            "GRANT CREATE ON `x`.`t` TO `u`@`%`".into(),
        ]);
        assert!(g.has("INSERT", Some("shop_copy"), Some("t")));
        assert!(!g.has("INSERT", Some("shopxcopy"), Some("t")));
        assert!(!g.has("UPDATE", Some("shop_copy"), Some("t")));
        assert!(g.has("CREATE", Some("x"), Some("t")));
        assert!(!g.has("CREATE", Some("x"), None));
        assert!(!g.has("RELOAD", None, None));
        let all = Grants::parse(&[
            "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION".into(),
        ]);
        assert!(all.has("RELOAD", None, None));
        let role = Grants::parse(&["GRANT `dba` TO `u`@`%`".into()]);
        assert!(role.has("RELOAD", None, None));
    }
}
