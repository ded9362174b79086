//! Runs every example pipeline in pipelines/ against private servers.

mod support;

use support::*;

/// Loads the sample shop database the examples and the quickstart use.
fn seed_shop(src: &MariaDb) {
    let sql = std::fs::read_to_string(root().join("scripts/sample-shop.sql"))
        .expect("reading sample-shop.sql");
    src.exec(&sql);
}

#[test]
fn every_example_pipeline_runs() {
    let (src, dst) = pair();
    seed_shop(src);
    let mut ran = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(root().join("pipelines"))
        .expect("pipelines/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let archive =
        std::env::temp_dir().join(format!("sluice-pipelines-archive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&archive);
    let archive_dir = archive.to_string_lossy().into_owned();
    let s3 = S3Server::shared();
    let bucket = s3.bucket("pipelines");
    let pg = support::postgres::Postgres::start("pipelines");
    let nats = support::nats::NatsServer::start("pipelines");
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let env = [
            ("SOURCE_URL", src.url()),
            ("TARGET_URL", dst.url()),
            ("ARCHIVE_DIR", archive_dir.clone()),
            ("S3_ENDPOINT", s3.endpoint()),
            ("S3_BUCKET", bucket.clone()),
            ("S3_ACCESS_KEY", S3_KEY.to_string()),
            ("S3_SECRET_KEY", S3_SECRET.to_string()),
            ("POSTGRES_URL", pg.url()),
            ("NATS_URL", nats.url()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sluice(&["validate", path.to_str().unwrap()], &env).assert_ok();
        // Pipelines that follow changes return once caught up.
        let run = sluice(
            &[
                "run",
                "--progress",
                "log",
                "--until-caught-up",
                path.to_str().unwrap(),
            ],
            &env,
        );
        run.assert_ok();
        ran.push(name);
    }
    // Each example's effect, checked against the source.
    assert!(ran.contains(&"mysql-migrate".to_string()), "{ran:?}");
    for t in ["customers", "orders", "order_items", "products"] {
        assert_same_table(
            src,
            &format!("shop.{t}"),
            dst,
            &format!("shop_copy.{t}"),
            "id",
        );
        assert_eq!(
            src.show_create(&format!("shop.{t}")),
            dst.show_create(&format!("shop_copy.{t}")),
        );
    }
    assert!(ran.contains(&"mysql-dr-sync".to_string()), "{ran:?}");
    assert!(ran.contains(&"mysql-migrate-online".to_string()), "{ran:?}");
    for (db, pipeline) in [
        ("shop_dr", "shop-dr"),
        ("shop_online", "shop-migrate-online"),
    ] {
        for t in ["customers", "orders", "order_items", "products"] {
            assert_same_table(src, &format!("shop.{t}"), dst, &format!("{db}.{t}"), "id");
        }
        let cdc: u64 = dst.scalar(&format!(
            "SELECT COUNT(*) FROM sluice.checkpoints WHERE pipeline = '{pipeline}' AND phase = 'cdc'"
        ));
        assert!(cdc >= 1, "{pipeline} has a change-stream checkpoint");
    }
    assert!(
        ran.contains(&"mysql-masked-analytics".to_string()),
        "{ran:?}"
    );
    let expected: Vec<(u32, String, String)> = src.query(
        "SELECT id, SHA2(CONCAT('change-me', email), 256), '***' FROM shop.customers ORDER BY id",
    );
    let got: Vec<(u32, String, String)> =
        dst.query("SELECT id, email, full_name FROM shop_analytics.customers ORDER BY id");
    assert_eq!(expected, got);
    assert!(!dst
        .show_create("shop_analytics.customers")
        .contains("`phone`"));
    let expected: Vec<(u64, String)> = src.query(
        "SELECT id, CAST(total AS CHAR) FROM shop.orders WHERE status <> 'cancelled' ORDER BY id",
    );
    let got: Vec<(u64, String)> =
        dst.query("SELECT id, CAST(total AS CHAR) FROM shop_analytics.orders ORDER BY id");
    assert!(!expected.is_empty());
    assert_eq!(expected, got);
    assert_same_table(src, "shop.products", dst, "shop_analytics.products", "id");
    // PostgreSQL: every row, emails hashed as on the MySQL analytics copy.
    assert!(ran.contains(&"mysql-to-postgres".to_string()), "{ran:?}");
    let expected: Vec<(u32, String)> = src
        .query("SELECT id, SHA2(CONCAT('change-me', email), 256) FROM shop.customers ORDER BY id");
    let expected: String = expected
        .iter()
        .map(|(id, e)| format!("{id}|{e}\n"))
        .collect();
    assert_eq!(
        pg.psql("SELECT id, email FROM shop_pg.customers ORDER BY id"),
        expected
    );
    // ...and only the order lines the filter keeps.
    let kept: u64 = src.scalar("SELECT COUNT(*) FROM shop.order_items WHERE qty < 5");
    let all: u64 = src.scalar("SELECT COUNT(*) FROM shop.order_items");
    assert!(kept > 0 && kept < all, "{kept} of {all}");
    assert_eq!(
        pg.psql("SELECT count(*), count(*) FILTER (WHERE qty < 5) FROM shop_pg.order_items")
            .trim(),
        format!("{kept}|{kept}")
    );
    for t in ["orders", "products"] {
        let n: u64 = src.scalar(&format!("SELECT COUNT(*) FROM shop.{t}"));
        assert_eq!(
            pg.psql(&format!("SELECT count(*) FROM shop_pg.{t}")).trim(),
            n.to_string(),
            "shop_pg.{t}"
        );
    }
    assert!(ran.contains(&"mysql-archive".to_string()), "{ran:?}");
    assert!(ran.contains(&"mysql-archive-s3".to_string()), "{ran:?}");
    let expected: Vec<(u32, String)> = src
        .query("SELECT id, SHA2(CONCAT('change-me', email), 256) FROM shop.customers ORDER BY id");
    let expected: String = expected
        .iter()
        .map(|(id, e)| format!("{id}\t{e}\n"))
        .collect();
    for (archive_root, env) in [
        (archive_dir.clone(), vec![]),
        (format!("s3://{bucket}/shop-lake"), s3.reader_env()),
    ] {
        let state = std::process::Command::new("python3")
            .arg(root().join("tests/support/parquet_state.py"))
            .args([&archive_root, "shop", "customers", "id", "id", "email"])
            .envs(env)
            .output()
            .expect("python3 with pyarrow");
        assert!(
            state.status.success(),
            "{}",
            String::from_utf8_lossy(&state.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&state.stdout),
            expected,
            "{archive_root}"
        );
    }
    assert!(ran.contains(&"quickstart".to_string()), "{ran:?}");
    for t in ["orders", "order_items", "products"] {
        assert_same_table(
            src,
            &format!("shop.{t}"),
            dst,
            &format!("shop_replica.{t}"),
            "id",
        );
    }
    let masked: u64 = dst.scalar(
        "SELECT COUNT(*) FROM shop_replica.customers WHERE email REGEXP '^[0-9a-f]{64}$' AND (phone IS NULL OR phone LIKE '+*-***-____')",
    );
    let all: u64 = dst.scalar("SELECT COUNT(*) FROM shop_replica.customers");
    assert_eq!(
        (masked, all),
        (2000, 2000),
        "every email hashed, every phone masked"
    );
    // The quickstart's replica and archive equal the source through the mask.
    let env = [
        ("SOURCE_URL", src.url()),
        ("TARGET_URL", dst.url()),
        ("ARCHIVE_DIR", archive_dir.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let quickstart = root().join("pipelines/quickstart.yaml");
    let verified = sluice(&["verify", quickstart.to_str().unwrap()], &env);
    verified.assert_ok();
    assert!(
        verified.stdout.contains("sink `archive`"),
        "{}",
        verified.stdout
    );
    // The stream holds every row of the shop once, as Debezium reads it.
    assert!(ran.contains(&"mysql-to-nats".to_string()), "{ran:?}");
    let messages = nats.messages("SLUICE_SHOP");
    for t in ["customers", "orders", "order_items", "products"] {
        let n: usize = src.scalar(&format!("SELECT COUNT(*) FROM shop.{t}"));
        let subject = format!("shop.shop.{t}");
        let rows: Vec<u64> = messages
            .iter()
            .filter(|(_, s, v)| *s == subject && v["op"] == "r")
            .filter_map(|(_, _, v)| v["after"]["id"].as_u64())
            .collect();
        let ids: std::collections::BTreeSet<&u64> = rows.iter().collect();
        assert_eq!((rows.len(), ids.len()), (n, n), "{subject}");
    }
    // The PostgreSQL copy equals the source through the mask and the
    // filter; a row changed on PostgreSQL is found, and --repair rewrites
    // it through them too (its email hashed again).
    let env = [("SOURCE_URL", src.url()), ("POSTGRES_URL", pg.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let to_pg = root().join("pipelines/mysql-to-postgres.yaml");
    let to_pg = to_pg.to_str().unwrap();
    let verified = sluice(&["verify", to_pg], &env);
    verified.assert_ok();
    pg.psql("UPDATE shop_pg.customers SET email = 'plain@example.com' WHERE id = 7");
    let found = sluice(&["verify", "--recheck-timeout-s", "1", to_pg], &env);
    assert_eq!(found.status.code(), Some(3), "{}", found.stdout);
    assert!(found.stdout.contains("shop.customers"), "{}", found.stdout);
    let repaired = sluice(
        &["verify", "--repair", "--recheck-timeout-s", "1", to_pg],
        &env,
    );
    repaired.assert_ok();
    assert!(
        repaired.stdout.contains("1 repaired"),
        "{}",
        repaired.stdout
    );
    let hashed: String =
        src.scalar("SELECT SHA2(CONCAT('change-me', email), 256) FROM shop.customers WHERE id = 7");
    assert_eq!(
        pg.psql("SELECT email FROM shop_pg.customers WHERE id = 7")
            .trim(),
        hashed
    );
    let _ = std::fs::remove_dir_all(&archive);
}
