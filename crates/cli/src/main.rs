//! The `sluice` command: a thin layer over the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
mod connectors;

use connectors::Pipeline;
use sluice_core::progress::{self, ProgressMode};
use sluice_wasm::WasmPlugins;

/// Change apply allocates small Arrow arrays for every row change; glibc's
/// malloc spent a quarter of its CPU consolidating and locking. Built
/// without transparent huge pages (Cargo.toml): zeroing fresh 2 MiB pages
/// was a fifth of a plugin run's CPU, and peak memory a third higher.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Move data out of MySQL and MariaDB: migrate, sync, archive",
    after_help = "Examples:\n  sluice validate pipelines/mysql-migrate.yaml\n  SRC_PASSWORD=... sluice run pipelines/mysql-migrate.yaml\n\nDocs: docs/pipeline-yaml.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter, e.g. `debug` or `sluice=debug,info` (overrides RUST_LOG).
    #[arg(long, global = true)]
    log_level: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Check a pipeline file without connecting anywhere.
    #[command(
        after_help = "Examples:\n  sluice validate pipelines/mysql-migrate.yaml\n  DB_PASSWORD=x sluice validate my.yaml && echo ok\n\nReports the file, line and column of the first problem: YAML syntax, unknown keys\n(with the nearest valid key), wrong types, missing keys and unset ${VARS}."
    )]
    Validate {
        /// The pipeline YAML file.
        file: PathBuf,
    },
    /// Check every precondition of a pipeline and print pass / warn / fail
    /// with the fix for each; writes nothing.
    #[command(
        after_help = "Example:\n  sluice check pipelines/mysql-dr-sync.yaml\n\nChecks the source (version, privileges, log_bin, binlog_format, binlog_row_image,\nbinlog_row_metadata, binlog retention, server id, table keys, column types), each\nsink (reachable, privileges, existing tables, character sets, a probe object on\nobject storage) and each plugin (loads, accepts its config). `sluice run` runs the\nsame checks and refuses to start on a failure. Exit code 0 when nothing failed\n(warnings allowed), 1 on a failure, 2 on an invalid pipeline file."
    )]
    Check {
        /// The pipeline YAML file.
        file: PathBuf,
    },
    /// Run a pipeline: check every precondition, then copy and follow changes.
    #[command(
        after_help = "Examples:\n  sluice run pipelines/mysql-migrate.yaml\n  sluice run pipelines/mysql-dr-sync.yaml            # runs until SIGTERM\n  sluice run --until-caught-up pipelines/mysql-migrate-online.yaml   # cutover\n  sluice run --progress log --log-format json pipeline.yaml\n\nNothing is written to any sink unless every precondition passes (tables exist\nunder `existing_tables: fail`, privileges, connectivity). A pipeline that follows\nchanges resumes from its sinks' checkpoints; SIGTERM or Ctrl-C commits what was\napplied and exits 0. Exit code 0 on success, 1 on a runtime failure, 2 on an\ninvalid pipeline file."
    )]
    Run {
        /// The pipeline YAML file.
        file: PathBuf,
        /// Progress display: bars on a terminal, log lines otherwise.
        #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
        progress: ProgressArg,
        /// Exit 0 once every sink's lag has stayed under --caught-up-lag-ms for 2 s (for cutover).
        #[arg(long)]
        until_caught_up: bool,
        /// The lag, in milliseconds, that counts as caught up.
        #[arg(long, default_value_t = 1000)]
        caught_up_lag_ms: u64,
    },
    /// Show where each sink of a pipeline is: its checkpoint, how far behind
    /// the source's binlog, and how old the checkpoint is.
    #[command(
        after_help = "Example:\n  sluice status pipelines/mysql-dr-sync.yaml\n\nReads the sinks' checkpoints (the target's sluice.checkpoints, an archive's commit\nlog) and the source's binlog position; writes nothing, and works whether or not\nthe pipeline is running. Exit code 0, 1 when a server cannot be read, 2 on an\ninvalid pipeline file."
    )]
    Status {
        /// The pipeline YAML file.
        file: PathBuf,
    },
    /// Prove that each sink (MySQL target or Parquet archive) holds what the
    /// source holds, after the pipeline's transforms; optionally repair.
    #[command(
        after_help = "Examples:\n  sluice verify pipelines/mysql-dr-sync.yaml\n  sluice verify --sample 10% --report diff.json pipeline.yaml\n  sluice verify --repair pipeline.yaml\n\nCompares key range by key range, in parallel: server-side checksums for tables no\ntransform touches, row by row (through the same plugins) for the others and for\nranges whose checksums differ; archives by replaying their committed files,\nPostgreSQL targets by reading their rows back.\nWhile the pipeline follows changes, differing ranges are compared again once the\nsink has caught up. Never writes to the source.\nExit code 0 when equal (or repaired), 3 when rows differ, 1 when a server cannot be\nread, 2 on an invalid pipeline file."
    )]
    Verify {
        /// The pipeline YAML file.
        file: PathBuf,
        /// Only this sink (by name).
        #[arg(long)]
        sink: Option<String>,
        /// Compare only this share of the key ranges, chosen at random, e.g. `10%`.
        #[arg(long, default_value = "100%")]
        sample: String,
        /// Rows per key range.
        #[arg(long, default_value_t = 10_000)]
        chunk_rows: u64,
        /// Ranges compared at once (default: the pipeline's settings.parallelism).
        #[arg(long)]
        parallelism: Option<usize>,
        /// Rewrite the differing rows on MySQL and PostgreSQL targets, then compare them again.
        #[arg(long)]
        repair: bool,
        /// Write every difference to this JSON file.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Seconds to wait for a sink that follows changes to catch up before comparing differing ranges again.
        #[arg(long, default_value_t = 30)]
        recheck_timeout_s: u64,
        /// How the servers checksum key ranges: crc32 (a sum of CRC32s, fast) or md5.
        #[arg(long, value_enum, default_value_t = ChecksumArg::Crc32)]
        checksum: ChecksumArg,
    },
    /// Print a NATS stream's messages as JSON lines as they arrive (for
    /// debugging a subscription); acknowledges nothing.
    #[command(
        after_help = "Examples:\n  sluice tail nats://127.0.0.1:4222 --stream SLUICE_SHOP\n  sluice tail nats://127.0.0.1:4222 --stream SLUICE_SHOP --subject 'shop.shop.orders' --new\n\nEach line is {\"seq\", \"subject\", \"id\" (Nats-Msg-Id), \"key\", \"value\"}. Runs until\nCtrl-C, or with --until-idle until every message there is was printed.\nExit code 0, 1 when the server or stream cannot be read."
    )]
    Tail {
        /// The server: nats://[user:password@]host:4222.
        url: String,
        /// The stream (a nats sink's `stream:`).
        #[arg(long, default_value = "SLUICE")]
        stream: String,
        /// Only these subjects (wildcards allowed).
        #[arg(long)]
        subject: Option<String>,
        /// Only messages published from now on.
        #[arg(long)]
        new: bool,
        /// Stop once every message there is has been printed.
        #[arg(long)]
        until_idle: bool,
    },
    /// Create and build transform plugins (docs/plugins.md).
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Create a plugin project that builds and passes its own test.
    #[command(
        after_help = "Example:\n  sluice plugin new redact && cd redact && cargo test && sluice plugin build ."
    )]
    New {
        /// Folder (and crate) name of the new plugin.
        name: PathBuf,
    },
    /// Build a plugin folder into a WebAssembly component (wasm32-wasip2).
    #[command(
        after_help = "Example:\n  sluice plugin build plugins/noop\n\nPrints the component's path. Pipelines can also name the folder directly\n(`plugin: plugins/noop`); sluice then builds it before starting."
    )]
    Build {
        /// The plugin's folder (with its Cargo.toml).
        dir: PathBuf,
    },
    /// Run a plugin over sample events and print what it makes of them.
    #[command(
        after_help = "Examples:\n  sluice plugin test plugins/mask --events plugins/mask/sample.yaml\n\nThe events file (YAML or JSON) holds `table:` (database, name, columns with\nname, type, key), `events:` (op, before, after by column name) and optionally\n`config:`. Prints one JSON line for the plugin's schema answer, then one per event."
    )]
    Test {
        /// A plugin folder, a .wasm component, or a bundled plugin's name.
        plugin: String,
        /// The sample events file.
        #[arg(long)]
        events: PathBuf,
        /// The plugin's config as JSON (overrides the file's `config:`).
        #[arg(long)]
        config: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ChecksumArg {
    Crc32,
    Md5,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProgressArg {
    Auto,
    Bars,
    Log,
    Off,
}

/// Logs go to stderr; with progress bars, through them so lines print above the bars.
fn init_logging(format: LogFormat, level: Option<&str>, bars: Option<&indicatif::MultiProgress>) {
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => EnvFilter::new(l),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let writer = match bars {
        Some(m) => BoxMakeWriter::new(progress::BarsWriter(m.clone())),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mode = match &cli.command {
        Command::Run { progress, .. } => match progress {
            ProgressArg::Auto if std::io::stderr().is_terminal() => {
                ProgressMode::Bars(progress::bars())
            }
            ProgressArg::Bars => ProgressMode::Bars(progress::bars()),
            ProgressArg::Auto | ProgressArg::Log => ProgressMode::Log,
            ProgressArg::Off => ProgressMode::Off,
        },
        Command::Validate { .. }
        | Command::Plugin(_)
        | Command::Status { .. }
        | Command::Check { .. }
        | Command::Verify { .. }
        | Command::Tail { .. } => ProgressMode::Off,
    };
    let bars = match &mode {
        ProgressMode::Bars(m) => Some(m),
        _ => None,
    };
    init_logging(cli.log_format, cli.log_level.as_deref(), bars);
    match cli.command {
        Command::Plugin(PluginCommand::New { name }) => {
            match sluice_wasm::scaffold::new_plugin(&name) {
                Ok(()) => {
                    println!(
                    "created {0}: `cd {0} && cargo test` runs its test, `sluice plugin build {0}` builds it",
                    name.display()
                );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Plugin(PluginCommand::Build { dir }) => match sluice_wasm::build::build(&dir) {
            Ok(wasm) => {
                println!("{}", wasm.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Plugin(PluginCommand::Test {
            plugin,
            events,
            config,
        }) => match sluice_wasm::sample::run(&plugin, &events, config.as_deref()) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Validate { file } => match Pipeline::load(&file) {
            Ok(cfg) => {
                println!(
                    "{}: ok (pipeline `{}`, {} sink(s), {} transform(s))",
                    file.display(),
                    cfg.name.value,
                    cfg.sinks.value.len(),
                    cfg.transforms.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Tail {
            url,
            stream,
            subject,
            new,
            until_idle,
        } => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: starting the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let options = sluice_nats::tail::TailOptions {
                url,
                stream,
                subject,
                new_only: new,
                until_idle,
            };
            let mut out = std::io::stdout();
            match runtime.block_on(sluice_nats::tail::tail(&options, &mut out)) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Status { file } => {
            let (cfg, runtime) = match load(&file) {
                Ok(loaded) => loaded,
                Err(code) => return code,
            };
            match runtime.block_on(sluice_core::status::read(&cfg)) {
                Ok(status) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_micros() as i64);
                    print!("{}", sluice_core::status::render(&status, now));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { file } => {
            let (cfg, runtime) = match load(&file) {
                Ok(loaded) => loaded,
                Err(code) => return code,
            };
            match runtime.block_on(sluice_core::precheck::run(&cfg, &WasmPlugins)) {
                Ok(findings) => {
                    print!("{}", sluice_core::precheck::render(&findings));
                    if findings
                        .iter()
                        .any(|f| f.level == sluice_core::precheck::Level::Fail)
                    {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Verify {
            file,
            sink,
            sample,
            chunk_rows,
            parallelism,
            repair,
            report,
            recheck_timeout_s,
            checksum,
        } => {
            let Some(sample_percent) = sample
                .trim_end_matches('%')
                .parse::<f64>()
                .ok()
                .filter(|p| *p > 0.0 && *p <= 100.0)
            else {
                eprintln!("error: --sample {sample}: expected a percentage above 0 and at most 100, e.g. 10%");
                return ExitCode::from(2);
            };
            if chunk_rows == 0 || parallelism == Some(0) {
                eprintln!("error: --chunk-rows and --parallelism must be at least 1");
                return ExitCode::from(2);
            }
            let (cfg, runtime) = match load(&file) {
                Ok(loaded) => loaded,
                Err(code) => return code,
            };
            let options = sluice_core::verify::VerifyOptions {
                sink,
                sample_percent,
                chunk_rows,
                parallelism,
                repair,
                recheck_timeout: std::time::Duration::from_secs(recheck_timeout_s),
                checksum: match checksum {
                    ChecksumArg::Crc32 => sluice_core::verify::Checksum::Crc32,
                    ChecksumArg::Md5 => sluice_core::verify::Checksum::Md5,
                },
            };
            match runtime.block_on(sluice_core::verify::run(&cfg, &WasmPlugins, &options)) {
                Ok(result) => {
                    print!("{}", sluice_core::verify::render(&result));
                    if let Some(path) = report {
                        let written = serde_json::to_vec_pretty(&result)
                            .map_err(|e| e.to_string())
                            .and_then(|json| {
                                std::fs::write(&path, json).map_err(|e| e.to_string())
                            });
                        if let Err(e) = written {
                            eprintln!("error: writing the report {}: {e}", path.display());
                            return ExitCode::FAILURE;
                        }
                        println!("report: {}", path.display());
                    }
                    if result.differences == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(3)
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run {
            file,
            until_caught_up,
            caught_up_lag_ms,
            ..
        } => {
            let (cfg, runtime) = match load(&file) {
                Ok(loaded) => loaded,
                Err(code) => return code,
            };
            let options = sluice_core::engine::RunOptions {
                progress: mode,
                until_caught_up: until_caught_up
                    .then(|| std::time::Duration::from_millis(caught_up_lag_ms)),
            };
            match runtime.block_on(sluice_core::engine::run(&cfg, &WasmPlugins, options)) {
                Ok(summary) => {
                    let secs = summary.elapsed.as_secs_f64();
                    println!(
                        "pipeline `{}`: copied {} rows in {} tables in {:.2} s ({:.0} rows/s)",
                        cfg.name.value,
                        summary.total_rows(),
                        summary.rows.len(),
                        secs,
                        summary.total_rows() as f64 / secs.max(1e-9)
                    );
                    if let Some(p) = summary.snapshot_position {
                        println!("snapshot position: {p}");
                    }
                    if summary.plan.follows_changes() {
                        println!("applied {} row changes", summary.changes);
                    }
                    if let Some(why) = summary.stopped_because {
                        println!("stopped: {why}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The pipeline file and an async runtime to run it on, or the exit code
/// (2 for an invalid file).
fn load(file: &std::path::Path) -> Result<(Pipeline, tokio::runtime::Runtime), ExitCode> {
    let cfg = Pipeline::load(file).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.settings.threads())
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })?;
    Ok((cfg, runtime))
}
