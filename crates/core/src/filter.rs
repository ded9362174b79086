//! Which tables a pattern list selects (`include`, `exclude`, a
//! transform's `tables`).

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::event::TableId;

/// `db.table` patterns with `*` and `?` wildcards.
#[derive(Debug, Clone)]
pub struct TableFilter {
    /// Databases never selected: the server's own (the source's
    /// [`Source::system_schemas`](crate::stage::Source::system_schemas)).
    never: &'static [&'static str],
    include: GlobSet,
    exclude: GlobSet,
    include_patterns: Vec<String>,
}

impl TableFilter {
    /// An empty include list selects every non-system table.
    pub fn new(include: &[String], exclude: &[String]) -> std::result::Result<Self, String> {
        let include_patterns = if include.is_empty() {
            vec!["*.*".to_string()]
        } else {
            include.to_vec()
        };
        Ok(TableFilter {
            never: &[],
            include: build(&include_patterns)?,
            exclude: build(exclude)?,
            include_patterns,
        })
    }

    /// The same filter, never selecting tables of the `never` databases.
    pub fn excluding(mut self, never: &'static [&'static str]) -> Self {
        self.never = never;
        self
    }

    pub fn matches(&self, t: &TableId) -> bool {
        let name = format!("{}.{}", t.database, t.name);
        !self.never.contains(&t.database.as_str())
            && self.include.is_match(&name)
            && !self.exclude.is_match(&name)
    }

    /// Whether a table of database `db` could be selected (for CREATE/DROP DATABASE).
    pub fn may_select_database(&self, db: &str) -> bool {
        !self.never.contains(&db)
            && self.include_patterns.iter().any(|p| {
                let db_part = p.split_once('.').map_or(p.as_str(), |(d, _)| d);
                Glob::new(db_part).is_ok_and(|g| g.compile_matcher().is_match(db))
            })
    }

    /// Include patterns that select none of `tables`: almost always a typo.
    pub fn unmatched_includes(&self, tables: &[TableId]) -> Vec<String> {
        self.include_patterns
            .iter()
            .filter(|p| {
                let Ok(g) = Glob::new(p) else { return false };
                let m = g.compile_matcher();
                !tables
                    .iter()
                    .any(|t| m.is_match(format!("{}.{}", t.database, t.name)))
            })
            .cloned()
            .collect()
    }
}

fn build(patterns: &[String]) -> std::result::Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        if !p.contains('.') {
            return Err(format!(
                "table pattern `{p}` has no `.`; write `database.table`, e.g. `{p}.*`"
            ));
        }
        b.add(Glob::new(p).map_err(|e| format!("table pattern `{p}`: {e}"))?);
    }
    b.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_wildcards_and_system_schemas() {
        let f = TableFilter::new(
            &["shop.*".into(), "*.audit_?".into()],
            &["shop.tmp_*".into()],
        )
        .unwrap();
        assert!(f.matches(&TableId::new("shop", "orders")));
        assert!(!f.matches(&TableId::new("shop", "tmp_x")));
        assert!(f.matches(&TableId::new("crm", "audit_1")));
        assert!(!f.matches(&TableId::new("crm", "audit_12")));
        let all = TableFilter::new(&[], &[]).unwrap().excluding(&["mysql"]);
        assert!(!all.matches(&TableId::new("mysql", "user")));
        assert!(TableFilter::new(&["shop".into()], &[]).is_err());
        let unmatched = f.unmatched_includes(&[TableId::new("shop", "a")]);
        assert_eq!(unmatched, vec!["*.audit_?".to_string()]);
    }
}
