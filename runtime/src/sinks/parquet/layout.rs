//! Where files go: object paths for snapshot parts and change files, named
//! by source positions so that names sort in source order.

use crate::event::{Position, TableId};

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

/// `{table}/snapshot/{snapshot}/part-NNNNN.parquet`.
pub fn snapshot_part(prefix: &str, t: &TableId, snapshot: &str, part: u32) -> String {
    format!(
        "{}/snapshot/{snapshot}/part-{part:05}.parquet",
        table_dir(prefix, t)
    )
}

/// `{table}/changes/date=YYYY-MM-DD/hour=HH/{first}-{last}.parquet`, the
/// date and hour of the first change's commit (UTC).
pub fn change_file(
    prefix: &str,
    t: &TableId,
    first_commit_us: i64,
    first: &Position,
    last: &Position,
) -> String {
    let secs = first_commit_us.div_euclid(1_000_000);
    let (y, m, d) = crate::mysql::temporal::days_to_date(secs.div_euclid(86_400) as i32);
    let hour = secs.rem_euclid(86_400) / 3600;
    format!(
        "{}/changes/date={y:04}-{m:02}-{d:02}/hour={hour:02}/{}_{}.parquet",
        table_dir(prefix, t),
        position_key(first),
        position_key(last)
    )
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

fn join(prefix: &str, rest: &str) -> String {
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
        assert_eq!(
            change_file("arch", &t, 1_714_564_800_000_000, &p("b.000001", 10), &p("b.000001", 99)),
            "arch/shop/orders/changes/date=2024-05-01/hour=12/000001-000000000010_000001-000000000099.parquet"
        );
        assert_eq!(
            snapshot_part("", &t, "s1", 3),
            "shop/orders/snapshot/s1/part-00003.parquet"
        );
    }
}
