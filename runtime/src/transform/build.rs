//! `sluice plugin build DIR`: a plugin folder (a Rust crate using
//! sluice-sdk) to a WebAssembly component.
//!
//! Uses the `wasm32-wasip2` target, which produces a component directly,
//! adding it with rustup when it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result};

const TARGET: &str = "wasm32-wasip2";

fn ensure_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        })
        .unwrap_or(false);
    if installed {
        return Ok(());
    }
    tracing::info!("adding the {TARGET} target with rustup");
    let ok = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(Error::precondition(
            format!("the Rust target {TARGET} is not installed and rustup could not add it"),
            format!("run `rustup target add {TARGET}`"),
        ))
    }
}

/// The crate name in a plugin folder's Cargo.toml.
fn crate_name(dir: &Path) -> Result<String> {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
        .map_err(|e| Error::Data(format!("reading {}/Cargo.toml: {e}", dir.display())))?;
    manifest
        .lines()
        .map(str::trim)
        .find_map(|l| {
            let rest = l.strip_prefix("name")?.trim_start().strip_prefix('=')?;
            Some(rest.trim().trim_matches('"').to_string())
        })
        .ok_or_else(|| Error::Data(format!("{}/Cargo.toml has no package name", dir.display())))
}

/// Builds the plugin in `dir` and returns the component's path.
pub fn build(dir: &Path) -> Result<PathBuf> {
    ensure_target()?;
    let name = crate_name(dir)?;
    // Plugins side by side in a `plugins` folder share one target folder,
    // so the SDK builds once; any other plugin builds in its own.
    let shared = dir
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == "plugins"));
    let target_dir = shared.unwrap_or(dir).join("target");
    tracing::info!(plugin = %dir.display(), "building plugin");
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--quiet",
            "--target",
            TARGET,
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .map_err(|e| Error::Data(format!("running cargo to build {}: {e}", dir.display())))?;
    if !out.status.success() {
        return Err(Error::precondition(
            format!(
                "building plugin {} failed:\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            ),
            "fix the compile errors above; `sluice plugin build DIR` shows them too",
        ));
    }
    let wasm = target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    if !wasm.is_file() {
        return Err(Error::Data(format!(
            "cargo built {} but {} is missing; is it a `cdylib` crate?",
            dir.display(),
            wasm.display()
        )));
    }
    Ok(wasm)
}
