//! Where an archive lives: a `url:` (`file://`, `s3://`, `gs://`, `az://`)
//! and its connection settings, opened as an [`ObjectStore`], and store
//! errors turned into messages that say what to fix.
//!
//! Credentials come from the sink's settings (usually `${VAR}`s) or, when
//! those are absent, from the environment the cloud SDKs read
//! (`AWS_ACCESS_KEY_ID`, `GOOGLE_APPLICATION_CREDENTIALS`, `AZURE_...`).
//! Transient errors are retried by `object_store` with exponential backoff.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use serde::Deserialize;

/// A secret from the pipeline file: never printed.
#[derive(Clone, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Connection settings next to `url:` (see the sink's config for each).
#[derive(Debug, Clone, Default)]
pub struct StoreSettings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub options: BTreeMap<String, Secret>,
    pub retry_timeout_s: u64,
}

/// The kinds of `url:` a sink takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    File,
    S3,
    Gcs,
    Azure,
}

/// A parsed `url:`: the scheme, the bucket (or local folder) and the
/// prefix inside it.
#[derive(Debug, Clone)]
pub struct Location {
    pub scheme: Scheme,
    pub bucket: String,
    pub prefix: String,
}

/// Parses `url:`, or says what a valid one looks like.
pub fn parse(url: &str) -> Result<Location, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not a URL; write file:///folder, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix"))?;
    let scheme = match scheme {
        "file" => Scheme::File,
        "s3" | "s3a" => Scheme::S3,
        "gs" => Scheme::Gcs,
        "az" | "azure" | "abfs" | "abfss" => Scheme::Azure,
        other => {
            return Err(format!(
                "`{url}`: unknown scheme `{other}`; use file://, s3://, gs:// or az://"
            ))
        }
    };
    if scheme == Scheme::File {
        if !rest.starts_with('/') {
            return Err(format!(
                "`{url}`: write a local folder as an absolute path, file:///path/to/archive"
            ));
        }
        return Ok(Location {
            scheme,
            bucket: rest.trim_end_matches('/').to_string(),
            prefix: String::new(),
        });
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!(
            "`{url}` names no bucket; write {}://bucket/prefix",
            url.split("://").next().unwrap_or("s3")
        ));
    }
    Ok(Location {
        scheme,
        bucket: bucket.to_string(),
        prefix: prefix.trim_matches('/').to_string(),
    })
}

impl StoreSettings {
    /// Settings that do not apply to the scheme, or unknown `options:` keys.
    pub fn check(&self, scheme: Scheme) -> Result<(), String> {
        if scheme == Scheme::File {
            let set = [
                ("endpoint", self.endpoint.is_some()),
                ("region", self.region.is_some()),
                ("access_key_id", self.access_key_id.is_some()),
                ("secret_access_key", self.secret_access_key.is_some()),
                ("options", !self.options.is_empty()),
            ];
            if let Some((name, _)) = set.iter().find(|(_, s)| *s) {
                return Err(format!(
                    "`{name}` is for object storage; a file:// archive takes none"
                ));
            }
        }
        if scheme != Scheme::S3 && scheme != Scheme::File {
            if self.endpoint.is_some() || self.region.is_some() {
                return Err(
                    "`endpoint` and `region` are S3 settings; for gs:// and az:// put settings under `options:`"
                        .into(),
                );
            }
            if self.access_key_id.is_some() || self.secret_access_key.is_some() {
                return Err("`access_key_id` and `secret_access_key` are S3 settings; for gs:// and az:// put credentials under `options:` or in the environment".into());
            }
        }
        for key in self.options.keys() {
            let known = match scheme {
                Scheme::File => true,
                Scheme::S3 => AmazonS3ConfigKey::from_str(key).is_ok(),
                Scheme::Gcs => GoogleConfigKey::from_str(key).is_ok(),
                Scheme::Azure => AzureConfigKey::from_str(key).is_ok(),
            };
            if !known {
                return Err(format!(
                    "unknown option `{key}` for this store; see the object_store settings for {scheme:?} in docs/pipeline-yaml.md"
                ));
            }
        }
        if self.retry_timeout_s == 0 {
            return Err("`retry_timeout_s` must be at least 1".into());
        }
        Ok(())
    }

    fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 10,
            retry_timeout: Duration::from_secs(self.retry_timeout_s),
        }
    }
}

/// Opens the store. For `file://` the folder is created; the returned
/// prefix is where the archive starts inside the store.
pub fn open(url: &str, settings: &StoreSettings) -> Result<(Arc<dyn ObjectStore>, String), String> {
    // The HTTP client's TLS uses ring (no C library to build); a provider
    // installed before (by a test, or another component) is kept.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let loc = parse(url)?;
    settings.check(loc.scheme)?;
    let client = ClientOptions::new().with_connect_timeout(Duration::from_secs(10));
    let built: Result<Arc<dyn ObjectStore>, object_store::Error> = match loc.scheme {
        Scheme::File => {
            let path = &loc.bucket;
            std::fs::create_dir_all(path)
                .map_err(|e| format!("cannot create the archive folder {path}: {e}"))?;
            let store = object_store::local::LocalFileSystem::new_with_prefix(path)
                .map_err(|e| format!("cannot use the archive folder {path}: {e}"))?;
            return Ok((Arc::new(store), String::new()));
        }
        Scheme::S3 => {
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(&loc.bucket)
                .with_retry(settings.retry());
            let mut client = client;
            if let Some(endpoint) = &settings.endpoint {
                b = b.with_endpoint(endpoint);
                if endpoint.starts_with("http://") {
                    client = client.with_allow_http(true);
                }
            }
            b = b.with_client_options(client);
            if let Some(r) = &settings.region {
                b = b.with_region(r);
            }
            if let Some(k) = &settings.access_key_id {
                b = b.with_access_key_id(k);
            }
            if let Some(s) = &settings.secret_access_key {
                b = b.with_secret_access_key(&s.0);
            }
            for (k, v) in &settings.options {
                if let Ok(key) = AmazonS3ConfigKey::from_str(k) {
                    b = b.with_config(key, &v.0);
                }
            }
            b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        Scheme::Gcs => {
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(&loc.bucket)
                .with_retry(settings.retry())
                .with_client_options(client);
            for (k, v) in &settings.options {
                if let Ok(key) = GoogleConfigKey::from_str(k) {
                    b = b.with_config(key, &v.0);
                }
            }
            b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        Scheme::Azure => {
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_container_name(&loc.bucket)
                .with_retry(settings.retry())
                .with_client_options(client);
            for (k, v) in &settings.options {
                if let Ok(key) = AzureConfigKey::from_str(k) {
                    b = b.with_config(key, &v.0);
                }
            }
            b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
    };
    let store = built.map_err(|e| format!("cannot open `{url}`: {e}"))?;
    Ok((store, loc.prefix))
}

/// What to do about a store error, as a hint for the user.
pub fn hint(url: &str, e: &object_store::Error) -> String {
    let bucket = parse(url).map(|l| l.bucket).unwrap_or_default();
    let text = e.to_string();
    match e {
        object_store::Error::NotFound { .. } => format!(
            "the bucket `{bucket}` does not exist or is not visible at this endpoint; create it or fix `url:`/`endpoint:`"
        ),
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            "the store refused the credentials: check `access_key_id`/`secret_access_key` (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and that they may write to the bucket".into()
        }
        _ if text.contains("NoSuchBucket") => format!(
            "the bucket `{bucket}` does not exist; create it or fix `url:`"
        ),
        _ if text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch")
            || text.contains("AccessDenied")
            || text.contains("403 Forbidden")
            || text.contains("401 Unauthorized") =>
        {
            "the store refused the credentials: check `access_key_id`/`secret_access_key` (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)".into()
        }
        _ if text.contains("error sending request") || text.contains("connect") => {
            "the store is unreachable: check `endpoint:` and that the server is up".into()
        }
        _ => "make the location writable for the user running sluice, or point `url:` elsewhere".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_scheme_bucket_and_prefix() {
        let l = parse("s3://archive/prod/shop/").unwrap();
        assert_eq!(
            (l.scheme, l.bucket.as_str(), l.prefix.as_str()),
            (Scheme::S3, "archive", "prod/shop")
        );
        let l = parse("file:///var/lib/a/").unwrap();
        assert_eq!((l.scheme, l.bucket.as_str()), (Scheme::File, "/var/lib/a"));
        assert!(parse("file://relative").unwrap_err().contains("absolute"));
        assert!(parse("ftp://x/y").unwrap_err().contains("unknown scheme"));
        assert!(parse("s3:///x").unwrap_err().contains("no bucket"));
    }

    #[test]
    fn settings_are_checked_against_the_scheme() {
        let mut s = StoreSettings {
            retry_timeout_s: 1,
            ..Default::default()
        };
        s.options
            .insert("virtual_hosted_style_request".into(), Secret("true".into()));
        assert!(s.check(Scheme::S3).is_ok());
        s.options.insert("no_such_thing".into(), Secret("1".into()));
        assert!(s.check(Scheme::S3).unwrap_err().contains("no_such_thing"));
        let s = StoreSettings {
            endpoint: Some("http://x".into()),
            retry_timeout_s: 1,
            ..Default::default()
        };
        assert!(s.check(Scheme::File).unwrap_err().contains("endpoint"));
        assert!(format!("{:?}", Secret("hunter2".into())) == "\"***\"");
    }
}
