//! Terraform test helpers shared by `tests/terraform.rs` and the deploy workflow's test: the
//! binary and CLI config `scripts/test` provides, a temporary copy of the Terraform tree, and
//! the functions' zips (scripts/package's, or placeholders moto accepts).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The six functions (`functions/<name>`): the dispatch's list.
pub const FUNCTIONS: [&str; 6] = rotor_core::dispatch::FUNCTIONS;

/// The repository (the parent of `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// An environment variable `scripts/test` exports; panics with the fix when it is missing.
pub fn required_env(name: &str, what: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is not set: {what}. Run the tests through `scripts/test` \
             (e.g. `scripts/test -p rotor-tests --test terraform`), which checks for Terraform at \
             /usr/local/bin/terraform and the provider mirror /opt/tf-plugins and exports it."
        ),
    }
}

/// `ROTOR_TERRAFORM`, after checking `TF_CLI_CONFIG_FILE` names a config with a filesystem_mirror.
pub fn terraform_bin() -> PathBuf {
    let bin = PathBuf::from(required_env("ROTOR_TERRAFORM", "the Terraform binary"));
    assert!(
        bin.is_file(),
        "ROTOR_TERRAFORM={} does not exist",
        bin.display()
    );
    let rc = PathBuf::from(required_env(
        "TF_CLI_CONFIG_FILE",
        "the Terraform CLI config with the provider filesystem_mirror",
    ));
    let text = fs::read_to_string(&rc).unwrap_or_else(|e| {
        panic!(
            "TF_CLI_CONFIG_FILE={} cannot be read ({e}): scripts/test writes it",
            rc.display()
        )
    });
    assert!(
        text.contains("filesystem_mirror"),
        "TF_CLI_CONFIG_FILE={} has no filesystem_mirror: Terraform would try the registry",
        rc.display()
    );
    bin
}

/// `from` copied to `to`, without what a developer's own Terraform runs left there.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.expect("dir entry");
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        // Whatever a developer's own `terraform init`/apply left in the tree stays behind.
        if name_text == ".terraform" || name_text.contains(".tfstate") || name_text == "tfplan" {
            continue;
        }
        let path = entry.path();
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            fs::copy(&path, to.join(&name))
                .unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
        }
    }
}

/// A temporary copy of `infrastructure/` and `statemachine/` (the module renders the latter
/// with templatefile, by relative path).
pub fn work_copy() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rotor-terraform-")
        .tempdir()
        .expect("temp dir");
    let root = repo_root();
    copy_tree(
        &root.join("infrastructure"),
        &dir.path().join("infrastructure"),
    );
    copy_tree(&root.join("statemachine"), &dir.path().join("statemachine"));
    dir
}

/// CRC-32 (IEEE), for the placeholder zips.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip (stored, not deflated) holding one executable `bootstrap`.
fn placeholder_zip(path: &Path, function: &str) {
    let body = format!(
        "#!/bin/sh\necho 'placeholder for {function}: build with scripts/package'\nexit 1\n"
    );
    let data = body.as_bytes();
    let crc = crc32(data);
    let name = b"bootstrap";
    let size = u32::try_from(data.len()).expect("small");
    let mut zip = Vec::new();
    // Local file header.
    zip.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    zip.extend_from_slice(&20u16.to_le_bytes()); // version needed
    zip.extend_from_slice(&0u16.to_le_bytes()); // flags
    zip.extend_from_slice(&0u16.to_le_bytes()); // stored
    zip.extend_from_slice(&0u16.to_le_bytes()); // time
    zip.extend_from_slice(&0x21u16.to_le_bytes()); // date 1980-01-01
    zip.extend_from_slice(&crc.to_le_bytes());
    zip.extend_from_slice(&size.to_le_bytes());
    zip.extend_from_slice(&size.to_le_bytes());
    zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip.extend_from_slice(name);
    zip.extend_from_slice(data);
    let central_at = u32::try_from(zip.len()).expect("small");
    // Central directory entry: made by Unix, mode 0755.
    let mut central = Vec::new();
    central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    central.extend_from_slice(&(0x0300u16 | 20).to_le_bytes());
    central.extend_from_slice(&20u16.to_le_bytes());
    central.extend_from_slice(&0u16.to_le_bytes());
    central.extend_from_slice(&0u16.to_le_bytes());
    central.extend_from_slice(&0u16.to_le_bytes());
    central.extend_from_slice(&0x21u16.to_le_bytes());
    central.extend_from_slice(&crc.to_le_bytes());
    central.extend_from_slice(&size.to_le_bytes());
    central.extend_from_slice(&size.to_le_bytes());
    central.extend_from_slice(&(name.len() as u16).to_le_bytes());
    central.extend_from_slice(&0u16.to_le_bytes()); // extra
    central.extend_from_slice(&0u16.to_le_bytes()); // comment
    central.extend_from_slice(&0u16.to_le_bytes()); // disk
    central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    central.extend_from_slice(&((0o100_755u32) << 16).to_le_bytes());
    central.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    central.extend_from_slice(name);
    let central_size = u32::try_from(central.len()).expect("small");
    zip.extend_from_slice(&central);
    // End of central directory.
    zip.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip.extend_from_slice(&1u16.to_le_bytes());
    zip.extend_from_slice(&1u16.to_le_bytes());
    zip.extend_from_slice(&central_size.to_le_bytes());
    zip.extend_from_slice(&central_at.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    fs::write(path, zip).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Six placeholder zips in `dir`.
pub fn placeholder_zips(dir: &Path) {
    fs::create_dir_all(dir).expect("zip dir");
    for f in FUNCTIONS {
        placeholder_zip(&dir.join(format!("{f}.zip")), f);
    }
}

/// The zips to deploy to moto: scripts/package's when it built all six (and the architecture
/// its manifest names), else placeholders in `scratch`.
pub fn zips_for_moto(scratch: &Path) -> (PathBuf, String) {
    let built = repo_root().join("target/lambda-zips");
    let manifest = fs::read_to_string(built.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    if let Some(arch) = manifest
        .as_ref()
        .and_then(|m| m["architecture"].as_str())
        .filter(|_| {
            FUNCTIONS
                .iter()
                .all(|f| built.join(format!("{f}.zip")).is_file())
        })
    {
        eprintln!("moto apply: deploying scripts/package's zips from target/lambda-zips ({arch})");
        return (built, arch.to_string());
    }
    let dir = scratch.join("lambda-zips");
    placeholder_zips(&dir);
    eprintln!("moto apply: target/lambda-zips incomplete, deploying placeholder zips");
    (dir, "arm64".to_string())
}
