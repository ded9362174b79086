//! Every source and sink this binary offers: one line each.

sluice_core::connectors! {
    sources {
        Mysql(sluice_mysql::MysqlSourceConfig),
    }
    sinks {
        Mysql(sluice_mysql::MysqlSinkConfig),
        Parquet(sluice_parquet::ParquetSinkConfig),
        Jsonl(sluice_jsonl::JsonlSinkConfig),
        Postgres(sluice_postgres::PostgresSinkConfig),
        Nats(sluice_nats::NatsSinkConfig),
    }
}
