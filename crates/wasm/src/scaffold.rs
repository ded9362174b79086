//! `sluice plugin new NAME`: a plugin project that builds and passes its
//! own test out of the box. The SDK is written next to it (it is not
//! published to a registry), so the project needs nothing else.

use std::path::Path;

use crate::{Error, Result};

const SDK_MANIFEST: &str = include_str!("../../../sdk/Cargo.toml");
const SDK_LIB: &str = include_str!("../../../sdk/src/lib.rs");
const SDK_ROWS: &str = include_str!("../../../sdk/src/rows.rs");
const SDK_WIT: &str = include_str!("../../../sdk/wit/sluice.wit");

/// Writes the SDK this sluice was built with into `dir` (a `sluice-sdk`
/// folder beside a plugin's sources).
pub fn write_sdk(dir: &Path) -> Result<()> {
    for (rel, text) in [
        ("Cargo.toml", SDK_MANIFEST),
        ("src/lib.rs", SDK_LIB),
        ("src/rows.rs", SDK_ROWS),
        ("wit/sluice.wit", SDK_WIT),
    ] {
        write_file(&dir.join(rel), text)?;
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::Data(format!("creating {}: {e}", parent.display())))?;
    }
    std::fs::write(path, text).map_err(|e| Error::Data(format!("writing {}: {e}", path.display())))
}

fn manifest(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
sluice-sdk = {{ path = "sluice-sdk" }}

[profile.release]
opt-level = "s"
lto = true
panic = "abort"

[workspace]
"#
    )
}

const LIB: &str = r#"//! A sluice transform plugin: upper-cases the column named in its config.
//!
//! Build: `sluice plugin build .`   Use in a pipeline:
//!   transforms:
//!     - plugin: path/to/this/folder
//!       config: { column: name }

use sluice_sdk::{export_plugin, Config, Event, Outcome, Plugin, Value};

#[derive(Default)]
pub struct Upper {
    column: String,
}

impl Plugin for Upper {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.column = config.string("column").ok_or("config needs `column: NAME`")?;
        Ok(())
    }

    fn process(&mut self, event: &mut Event) -> Outcome {
        if let Some(Value::Text(s)) = event.get(&self.column).cloned() {
            event.set(&self.column, Value::Text(s.to_uppercase()));
        }
        Outcome::Keep
    }
}

export_plugin!(Upper);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::{Column, Op, Table};

    #[test]
    fn upper_cases_the_column() {
        let table = Table {
            database: "shop".into(),
            name: "customers".into(),
            columns: vec![Column::new("name", "varchar(50)")],
        };
        let mut plugin = Upper { column: "name".into() };
        let mut event = Event::new(Op::Insert, table, None, Some(vec![Value::Text("ada".into())]));
        assert!(matches!(plugin.process(&mut event), Outcome::Keep));
        assert_eq!(event.get("name"), Some(&Value::Text("ADA".into())));
    }
}
"#;

/// Creates the project in `dir` (which must not exist).
pub fn new_plugin(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Err(Error::precondition(
            format!("{} already exists", dir.display()),
            "choose a new name, or delete the folder",
        ));
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| {
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .ok_or_else(|| {
            Error::precondition(
                format!("`{}` is not a valid plugin name", dir.display()),
                "use letters, digits, - and _",
            )
        })?;
    write_file(&dir.join("Cargo.toml"), &manifest(&name))?;
    write_file(&dir.join("src/lib.rs"), LIB)?;
    write_file(&dir.join(".gitignore"), "/target\n")?;
    write_sdk(&dir.join("sluice-sdk"))
}
