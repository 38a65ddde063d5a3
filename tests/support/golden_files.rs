//! Test support: the golden scenarios, each an intent document (`tests/golden/<name>.input.yaml`)
//! and the manifests it renders to (`tests/golden/<name>.expected.yaml`).
//!
//! Include it from a test crate with `#[path = "support/golden_files.rs"] mod golden_files;`.

use std::path::PathBuf;

/// `tests/golden`
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The names of every scenario with an input file, sorted.
pub fn scenarios() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".input.yaml")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// The file `<name>.<suffix>`, e.g. `read("no-clients", "input.yaml")`.
pub fn read(name: &str, suffix: &str) -> String {
    let path = dir().join(format!("{name}.{suffix}"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
