//! Executables: Go build information from real Debian-built Go binaries (checked against the
//! Go toolchain version dpkg records in `Built-Using`), and cargo-auditable data in a real ELF
//! executable (a copy of /bin/true given a `.dep-v0` section the way cargo-auditable writes it).
//! Needs `apt-get install skopeo binutils`.

use std::io::Write;
use std::process::Command;

use palisade_scanner::{Limits, PackageKind, catalog_binary_at};

fn require(path: &str, package: &str) {
    assert!(
        std::path::Path::new(path).is_file(),
        "{path} is missing: run `apt-get install {package}`"
    );
}

#[test]
fn go_binary_reports_the_toolchain_dpkg_says_it_was_built_with() {
    require("/usr/bin/skopeo", "skopeo");
    let built_using = Command::new("dpkg-query")
        .args(["-W", "-f", "${Built-Using}", "skopeo"])
        .output()
        .expect("dpkg-query");
    let built_using = String::from_utf8_lossy(&built_using.stdout).into_owned();
    // "golang-1.19 (= 1.19.8-2)" -> 1.19.8
    let toolchain = built_using
        .split(',')
        .find_map(|entry| {
            entry
                .trim()
                .strip_prefix("golang-1.")
                .map(|rest| rest.to_string())
        })
        .and_then(|rest| {
            rest.split("(= ")
                .nth(1)
                .map(|v| v.split('-').next().unwrap_or(v).to_string())
        })
        .expect("skopeo's Built-Using names its golang");
    let content = std::fs::read("/usr/bin/skopeo").expect("read skopeo");
    let catalog = catalog_binary_at("usr/bin/skopeo", &content, &Limits::default());
    assert!(catalog.issues.is_empty(), "{:?}", catalog.issues);
    let stdlib = catalog
        .packages
        .iter()
        .find(|p| p.name == "stdlib")
        .expect("stdlib package");
    assert_eq!(stdlib.kind, PackageKind::Go);
    assert_eq!(stdlib.version, format!("v{toolchain}"));
    assert_eq!(stdlib.location, "/usr/bin/skopeo");
}

#[test]
fn non_go_elf_and_non_elf_files_give_nothing() {
    let catalog = catalog_binary_at(
        "bin/true",
        &std::fs::read("/bin/true").expect("/bin/true"),
        &Limits::default(),
    );
    assert!(
        catalog.packages.is_empty() && catalog.issues.is_empty(),
        "{catalog:?}"
    );
    let script = catalog_binary_at(
        "usr/bin/script",
        b"#!/bin/sh\necho hi\n",
        &Limits::default(),
    );
    assert!(script.packages.is_empty() && script.issues.is_empty());
}

#[test]
fn cargo_auditable_section_yields_crates_io_dependencies() {
    require("/usr/bin/objcopy", "binutils");
    let directory = tempfile::tempdir().expect("temp dir");
    let json = br#"{"packages":[{"name":"hello","version":"0.1.0","source":"local","root":true,"dependencies":[1,2]},{"name":"serde","version":"1.0.219","source":"crates.io","kind":"runtime"},{"name":"smallvec","version":"1.13.2","source":"crates.io"}]}"#;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(json).expect("zlib");
    let section = directory.path().join("dep-v0.zlib");
    std::fs::write(&section, encoder.finish().expect("zlib")).expect("section");
    let binary = directory.path().join("hello");
    let status = Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".dep-v0={}", section.display()))
        .arg("/bin/true")
        .arg(&binary)
        .status()
        .expect("objcopy");
    assert!(status.success());
    let catalog = catalog_binary_at(
        "usr/local/bin/hello",
        &std::fs::read(&binary).expect("binary"),
        &Limits::default(),
    );
    assert!(catalog.issues.is_empty(), "{:?}", catalog.issues);
    let mut crates: Vec<(String, String, String)> = catalog
        .packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone(), p.purl.clone()))
        .collect();
    crates.sort();
    assert_eq!(
        crates,
        vec![
            (
                "serde".into(),
                "1.0.219".into(),
                "pkg:cargo/serde@1.0.219".into()
            ),
            (
                "smallvec".into(),
                "1.13.2".into(),
                "pkg:cargo/smallvec@1.13.2".into()
            ),
        ],
        "the local root crate is not a published crate"
    );
}
