//! `sluice plugin build DIR`: a plugin folder (a Rust crate using
//! sluice-sdk) to a WebAssembly component.
//!
//! Uses the `wasm32-wasip2` target, which produces a component directly,
//! adding it with rustup when it is missing. When rustup cannot (no network,
//! no rustup), it falls back to Debian's offline toolchain: `wasm32-wasip1`
//! built with `-Zbuild-std` and `wasm-ld` from lld-16, then turned into a
//! component in-process by `wit-component` with the preview1 adapter of the
//! wasmtime version sluice runs plugins with. `SLUICE_PLUGIN_TOOLCHAIN=debian`
//! picks the fallback on purpose.

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

/// Debian's packages for the offline build.
const DEBIAN_PACKAGES: &str = "rustc-web cargo-web rust-web-src lld-16 wasi-libc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const WASM_LD: &str = "/usr/lib/llvm-16/bin/wasm-ld";
const WASI_LIBS: &str = "/usr/lib/wasm32-wasi";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Toolchain {
    Rustup,
    Debian,
}

fn debian_available() -> bool {
    [DEBIAN_CARGO, DEBIAN_RUSTC, WASM_LD, WASI_LIBS]
        .iter()
        .all(|p| Path::new(p).exists())
}

fn choose_toolchain() -> Result<Toolchain> {
    let forced = std::env::var("SLUICE_PLUGIN_TOOLCHAIN").unwrap_or_default();
    if forced == "debian" {
        if debian_available() {
            return Ok(Toolchain::Debian);
        }
        return Err(Error::precondition(
            "SLUICE_PLUGIN_TOOLCHAIN=debian but Debian's WebAssembly toolchain is not installed",
            format!("apt-get install -y {DEBIAN_PACKAGES}"),
        ));
    }
    match ensure_target() {
        Ok(()) => Ok(Toolchain::Rustup),
        Err(_) if debian_available() => {
            tracing::warn!(
                "rustup cannot provide {TARGET}: building with Debian's offline toolchain"
            );
            Ok(Toolchain::Debian)
        }
        Err(e) => Err(Error::precondition(
            format!("{e}; Debian's offline toolchain is not installed either"),
            format!("run `rustup target add {TARGET}`, or `apt-get install -y {DEBIAN_PACKAGES}`"),
        )),
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

/// A plugin copied out of sluice's repository (a bundled one, say) names
/// the SDK by a path that no longer exists: the SDK this sluice carries is
/// written beside it, as `sluice plugin new` does, and the manifest pointed
/// at it.
fn provide_sdk(dir: &Path) -> Result<()> {
    let manifest_path = dir.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .map_err(|e| Error::Data(format!("reading {}: {e}", manifest_path.display())))?;
    let Some(line) = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("sluice-sdk") && l.contains("path"))
    else {
        return Ok(());
    };
    let Some(path) = line
        .split("path")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
    else {
        return Ok(());
    };
    if dir.join(path).join("Cargo.toml").is_file() {
        return Ok(());
    }
    super::scaffold::write_sdk(&dir.join("sluice-sdk"))?;
    let fixed = manifest.replace(line, "sluice-sdk = { path = \"sluice-sdk\" }");
    std::fs::write(&manifest_path, fixed)
        .map_err(|e| Error::Data(format!("writing {}: {e}", manifest_path.display())))?;
    tracing::warn!(plugin = %dir.display(), missing = %path, "the plugin's sluice-sdk path does not exist: wrote this sluice's SDK into sluice-sdk/ and pointed Cargo.toml at it");
    Ok(())
}

/// Builds the plugin in `dir` and returns the component's path.
pub fn build(dir: &Path) -> Result<PathBuf> {
    let toolchain = choose_toolchain()?;
    let name = crate_name(dir)?;
    provide_sdk(dir)?;
    // Plugins side by side in a `plugins` folder share one target folder,
    // so the SDK builds once; any other plugin builds in its own.
    let shared = dir
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == "plugins"));
    let target_dir = shared.unwrap_or(dir).join("target");
    tracing::info!(plugin = %dir.display(), "building plugin");
    if toolchain == Toolchain::Debian {
        return build_debian(dir, &name, &target_dir.join("debian"));
    }
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
    check_built(dir, &out)?;
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

fn check_built(dir: &Path, out: &std::process::Output) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    Err(Error::precondition(
        format!(
            "building plugin {} failed:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        "fix the compile errors above; `sluice plugin build DIR` shows them too",
    ))
}

/// The offline build: a preview1 core module, then a component.
fn build_debian(dir: &Path, name: &str, target_dir: &Path) -> Result<PathBuf> {
    let out = Command::new(DEBIAN_CARGO)
        .args([
            "build",
            "--release",
            "--quiet",
            "--target",
            "wasm32-wasip1",
            "-Zbuild-std=std,panic_abort",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        // Debian's cargo with Debian's rustc, not the rustup proxies on PATH.
        .env("RUSTC", DEBIAN_RUSTC)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_WASM32_WASIP1_LINKER", WASM_LD)
        .env("RUSTFLAGS", format!("-L {WASI_LIBS}"))
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .map_err(|e| {
            Error::Data(format!(
                "running {DEBIAN_CARGO} to build {}: {e}",
                dir.display()
            ))
        })?;
    check_built(dir, &out)?;
    let file = name.replace('-', "_");
    let module = target_dir
        .join("wasm32-wasip1")
        .join("release")
        .join(format!("{file}.wasm"));
    let bytes = std::fs::read(&module).map_err(|e| {
        Error::Data(format!(
            "cargo built {} but {} cannot be read ({e}); is it a `cdylib` crate?",
            dir.display(),
            module.display()
        ))
    })?;
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|e| {
            e.adapter(
                "wasi_snapshot_preview1",
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| {
            Error::Data(format!(
                "turning {} into a component: {e:#}",
                module.display()
            ))
        })?;
    let wasm = target_dir.join(format!("{file}.wasm"));
    std::fs::write(&wasm, component)
        .map_err(|e| Error::Data(format!("writing {}: {e}", wasm.display())))?;
    Ok(wasm)
}
