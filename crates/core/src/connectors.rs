//! How sources and sinks join sluice. A component's settings type (next to
//! its code, in its own crate) implements [`SourceSpec`] or [`SinkSpec`];
//! the binary names every component once, in [`connectors!`], which makes
//! the `source:` and `sinks:` keys of a pipeline file. The core knows no
//! component: it builds and runs them through these traits.

use std::fmt::Debug;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::config::{Settings, TransformConfig};
use crate::error::ConfigError;
use crate::stage::{Sink, Source, Transform};
use crate::Result;

/// What building a component may know of its pipeline.
pub struct Build<'a> {
    /// The pipeline's name (sinks key their checkpoints by it).
    pub pipeline: &'a str,
    pub settings: &'a Settings,
}

/// A source's settings (`source: { KIND: {...} }`).
pub trait SourceSpec: Debug + Clone + DeserializeOwned + Send + Sync + 'static {
    /// Checks that need no network, each error located in `file`.
    fn check(&self, file: &str) -> Result<(), ConfigError>;

    /// The source, not connected yet.
    fn build(&self, ctx: &Build<'_>) -> Result<Box<dyn Source>>;
}

/// A sink's settings (`sinks: - KIND: {...}`).
pub trait SinkSpec: Debug + Clone + DeserializeOwned + Send + Sync + 'static {
    /// The sink's name (`name:`), unique in a pipeline.
    fn name(&self) -> &str;

    /// Checks that need no network, each error located in `file`.
    fn check(&self, file: &str) -> Result<(), ConfigError>;

    /// The sink, not connected yet.
    fn build(&self, ctx: &Build<'_>) -> Result<Arc<dyn Sink>>;
}

/// Where transforms come from (the WebAssembly plugin host).
pub trait Plugins: Sync {
    /// `workers` chains of the pipeline's transforms over the same compiled
    /// plugins, each initialized with its config; a table a plugin declares
    /// in one of `reserved` (the servers' own schemas, sluice's) is refused.
    fn chains(
        &self,
        configs: &[TransformConfig],
        workers: usize,
        reserved: &[&str],
    ) -> Result<Vec<Box<dyn Transform>>>;
}

/// Names every source and sink kind a binary offers, once: it defines the
/// `SourceConfig` and `SinkConfig` enums (keyed by the kind's name in
/// snake_case) and their [`SourceSpec`] and [`SinkSpec`], so adding a sink
/// is one line here. The calling crate depends on `serde`.
///
/// ```ignore
/// sluice_core::connectors! {
///     sources { Mysql(sluice_mysql::MysqlSourceConfig) }
///     sinks { Mysql(sluice_mysql::MysqlSinkConfig), Parquet(sluice_parquet::ParquetSinkConfig) }
/// }
/// ```
#[macro_export]
macro_rules! connectors {
    (
        sources { $($source:ident($source_config:ty)),+ $(,)? }
        sinks { $($sink:ident($sink_config:ty)),+ $(,)? }
    ) => {
        /// The one source of a pipeline, keyed by its kind.
        #[derive(Debug, Clone, serde::Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "snake_case")]
        pub enum SourceConfig {
            $($source($source_config)),+
        }

        impl $crate::connectors::SourceSpec for SourceConfig {
            fn check(&self, file: &str) -> ::std::result::Result<(), $crate::error::ConfigError> {
                match self {
                    $(SourceConfig::$source(c) => $crate::connectors::SourceSpec::check(c, file)),+
                }
            }

            fn build(
                &self,
                ctx: &$crate::connectors::Build<'_>,
            ) -> $crate::Result<Box<dyn $crate::stage::Source>> {
                match self {
                    $(SourceConfig::$source(c) => $crate::connectors::SourceSpec::build(c, ctx)),+
                }
            }
        }

        /// One sink, keyed by its kind.
        #[derive(Debug, Clone, serde::Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "snake_case")]
        pub enum SinkConfig {
            $($sink($sink_config)),+
        }

        impl $crate::connectors::SinkSpec for SinkConfig {
            fn name(&self) -> &str {
                match self {
                    $(SinkConfig::$sink(c) => $crate::connectors::SinkSpec::name(c)),+
                }
            }

            fn check(&self, file: &str) -> ::std::result::Result<(), $crate::error::ConfigError> {
                match self {
                    $(SinkConfig::$sink(c) => $crate::connectors::SinkSpec::check(c, file)),+
                }
            }

            fn build(
                &self,
                ctx: &$crate::connectors::Build<'_>,
            ) -> $crate::Result<::std::sync::Arc<dyn $crate::stage::Sink>> {
                match self {
                    $(SinkConfig::$sink(c) => $crate::connectors::SinkSpec::build(c, ctx)),+
                }
            }
        }

        /// A pipeline file with these sources and sinks.
        pub type Pipeline = $crate::config::PipelineConfig<SourceConfig, SinkConfig>;
    };
}
