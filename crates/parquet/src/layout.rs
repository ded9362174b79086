//! Where files go: object paths for snapshot parts and change files, named
//! by source positions so that names sort in source order.

use sluice_core::event::{Position, TableId};

/// A position as a sortable name part: `000003-000000001234` for
/// `binlog.000003:1234`.
pub fn position_key(p: &Position) -> String {
    let seq: u64 = p
        .file
        .rsplit_once('.')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0);
    format!("{seq:06}-{:012}", p.offset)
}

/// `{prefix}/{database}/{table}` (prefix may be empty).
pub fn table_dir(prefix: &str, t: &TableId) -> String {
    join(
        prefix,
        &format!("{}/{}", clean(&t.database), clean(&t.name)),
    )
}

/// The default file names under a table's folder.
pub const DEFAULT_SNAPSHOT: &str = "snapshot/{snapshot}/part-{part}.parquet";
pub const DEFAULT_CHANGES: &str = "changes/date={date}/hour={hour}/{first}_{last}.parquet";

/// How data files are named under `{database}/{table}/`: templates with
/// `{snapshot}` (the snapshot's position) and `{part}` (00001, ...) for
/// snapshot parts; `{first}`, `{last}` (positions) and `{date}`, `{hour}`,
/// `{year}`, `{month}`, `{day}` (of the first change's commit, UTC) for
/// change files.
#[derive(Debug, Clone)]
pub struct Layout {
    snapshot: String,
    changes: String,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            snapshot: DEFAULT_SNAPSHOT.into(),
            changes: DEFAULT_CHANGES.into(),
        }
    }
}

impl Layout {
    /// Checks templates: known variables only, the ones that keep names
    /// unique present, a relative `.parquet` path.
    pub fn new(snapshot: &str, changes: &str) -> Result<Layout, String> {
        check(
            snapshot,
            "snapshot",
            &["snapshot", "part"],
            &["snapshot", "part"],
        )?;
        check(
            changes,
            "changes",
            &["first", "last", "date", "hour", "year", "month", "day"],
            &["first", "last"],
        )?;
        if fill(snapshot, &|_| Some("x".into())) == fill(changes, &|_| Some("x".into())) {
            return Err("`layout.snapshot` and `layout.changes` would name files alike".into());
        }
        Ok(Layout {
            snapshot: snapshot.into(),
            changes: changes.into(),
        })
    }

    /// A snapshot part's path, relative to the archive root like every
    /// path the manifests list.
    pub fn snapshot_part(&self, t: &TableId, snapshot: &str, part: u32) -> String {
        let name = fill(&self.snapshot, &|v| match v {
            "snapshot" => Some(snapshot.to_string()),
            "part" => Some(format!("{part:05}")),
            _ => None,
        });
        format!("{}/{name}", table_dir("", t))
    }

    /// A change file's path, relative to the archive root.
    pub fn change_file(
        &self,
        t: &TableId,
        first_commit_us: i64,
        first: &Position,
        last: &Position,
    ) -> String {
        let secs = first_commit_us.div_euclid(1_000_000);
        let (y, m, d) = sluice_core::temporal::days_to_date(secs.div_euclid(86_400) as i32);
        let hour = secs.rem_euclid(86_400) / 3600;
        let name = fill(&self.changes, &|v| match v {
            "first" => Some(position_key(first)),
            "last" => Some(position_key(last)),
            "date" => Some(format!("{y:04}-{m:02}-{d:02}")),
            "hour" => Some(format!("{hour:02}")),
            "year" => Some(format!("{y:04}")),
            "month" => Some(format!("{m:02}")),
            "day" => Some(format!("{d:02}")),
            _ => None,
        });
        format!("{}/{name}", table_dir("", t))
    }
}

/// The template with each `{variable}` replaced.
fn fill(template: &str, value: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        out.push_str(&value(name).unwrap_or_default());
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

fn check(template: &str, key: &str, known: &[&str], required: &[&str]) -> Result<(), String> {
    let mut used = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("`layout.{key}`: `{{` without `}}` in `{template}`"))?;
        let name = &rest[open + 1..open + close];
        if !known.contains(&name) {
            return Err(format!(
                "`layout.{key}`: unknown variable `{{{name}}}`; use {}",
                known
                    .iter()
                    .map(|k| format!("{{{k}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        used.push(name);
        rest = &rest[open + close + 1..];
    }
    if let Some(missing) = required.iter().find(|r| !used.contains(r)) {
        return Err(format!(
            "`layout.{key}` must contain `{{{missing}}}`, which keeps file names unique"
        ));
    }
    if !template.ends_with(".parquet")
        || template.starts_with('/')
        || template.split('/').any(|seg| seg.is_empty() || seg == "..")
    {
        return Err(format!(
            "`layout.{key}` must be a relative path ending in .parquet, without `..` or empty parts: `{template}`"
        ));
    }
    Ok(())
}

/// `{table}/_manifest.json`.
pub fn manifest(prefix: &str, t: &TableId) -> String {
    format!("{}/_manifest.json", table_dir(prefix, t))
}

/// `{prefix}/_sluice/{pipeline}.{sink}.json`: the sink's commit log.
pub fn commit_log(prefix: &str, pipeline: &str, sink: &str) -> String {
    join(
        prefix,
        &format!("_sluice/{}.{}.json", clean(pipeline), clean(sink)),
    )
}

/// `rest` under `prefix` (which may be empty).
pub fn join(prefix: &str, rest: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        rest.to_string()
    } else {
        format!("{p}/{rest}")
    }
}

/// Names become path segments: no slashes, no leading dots.
fn clean(s: &str) -> String {
    s.replace(['/', '\\'], "_")
        .trim_start_matches('.')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_source_order() {
        let p = |f: &str, o| Position {
            file: f.into(),
            offset: o,
            gtid: None,
        };
        assert!(position_key(&p("b.000002", 4)) > position_key(&p("b.000001", 999_999)));
        let t = TableId::new("shop", "orders");
        let layout = Layout::default();
        assert_eq!(
            layout.change_file(&t, 1_714_564_800_000_000, &p("b.000001", 10), &p("b.000001", 99)),
            "shop/orders/changes/date=2024-05-01/hour=12/000001-000000000010_000001-000000000099.parquet"
        );
        assert_eq!(
            layout.snapshot_part(&t, "s1", 3),
            "shop/orders/snapshot/s1/part-00003.parquet"
        );
    }

    #[test]
    fn templates_are_checked_and_filled() {
        let t = TableId::new("shop", "orders");
        let p = |o| Position {
            file: "b.000002".into(),
            offset: o,
            gtid: None,
        };
        let l = Layout::new(
            "full/{snapshot}-{part}.parquet",
            "{year}/{month}/{day}/{first}-{last}.parquet",
        )
        .unwrap();
        assert_eq!(
            l.change_file(&t, 0, &p(4), &p(8)),
            "shop/orders/1970/01/01/000002-000000000004-000002-000000000008.parquet"
        );
        assert_eq!(
            l.snapshot_part(&t, "s", 2),
            "shop/orders/full/s-00002.parquet"
        );
        let bad = |s: &str, c: &str| Layout::new(s, c).unwrap_err();
        assert!(bad(DEFAULT_SNAPSHOT, "changes/{first}.parquet").contains("{last}"));
        assert!(bad(DEFAULT_SNAPSHOT, "c/{first}_{last}_{minute}.parquet").contains("{minute}"));
        assert!(bad("../{snapshot}/{part}.parquet", DEFAULT_CHANGES).contains(".."));
        assert!(bad("{snapshot}/{part}.csv", DEFAULT_CHANGES).contains(".parquet"));
    }
}
