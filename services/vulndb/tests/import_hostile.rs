//! Bad and hostile feeds: every bad record is reported with its file and entry and skipped,
//! the rest imports; sizes are bounded (zip bombs, huge records, entry counts).

use std::io::Write;
use std::path::Path;

use palisade_vulndb::import::{CollectingSink, ImportLimits, discover_sources, import_unit};
use palisade_vulndb::{VulnDb, VulnDbError};

const GOOD_OSV: &str = r#"{"id":"GHSA-test-good","affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.3.0"}]}]}]}"#;

fn write_zip(path: &Path, entries: &[(&str, Vec<u8>)]) {
    let file = std::fs::File::create(path).expect("create zip");
    let mut writer = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        writer.start_file(*name, options).expect("start entry");
        writer.write_all(bytes).expect("write entry");
    }
    writer.finish().expect("finish zip");
}

fn import_all(root: &Path, limits: &ImportLimits) -> Result<CollectingSink, VulnDbError> {
    let mut sink = CollectingSink::default();
    for unit in discover_sources(&[root.to_path_buf()])? {
        import_unit(&unit, limits, &mut sink)?;
    }
    Ok(sink)
}

fn small_limits() -> ImportLimits {
    ImportLimits { max_record_bytes: 64 * 1024, max_document_bytes: 1024 * 1024, max_zip_entries: 100, max_zip_total_bytes: 4 * 1024 * 1024 }
}

#[test]
fn zip_bomb_entry_is_refused_and_the_rest_of_the_archive_imports() {
    let directory = tempfile::tempdir().expect("temp dir");
    let archive = directory.path().join("all.zip");
    // 8 MiB of spaces inflates from a few kilobytes: far past the 64 KiB record limit.
    let mut bomb = b"{\"id\":\"BOMB\",\"details\":\"".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 8 * 1024 * 1024));
    bomb.extend_from_slice(b"\"}");
    write_zip(&archive, &[("BOMB.json", bomb), ("GOOD.json", GOOD_OSV.as_bytes().to_vec())]);
    assert!(std::fs::metadata(&archive).expect("zip exists").len() < 64 * 1024, "the bomb must be small on disk");
    let sink = import_all(directory.path(), &small_limits()).expect("import continues");
    assert_eq!(sink.advisories.len(), 1);
    assert_eq!(sink.advisories[0].id, "GHSA-test-good");
    assert_eq!(sink.issues.len(), 1);
    assert_eq!(sink.issues[0].entry.as_deref(), Some("BOMB.json"));
    assert!(sink.issues[0].file.ends_with("all.zip"));
    assert!(sink.issues[0].message.contains("limit"), "{}", sink.issues[0].message);
}

#[test]
fn total_decompressed_size_of_an_archive_is_bounded() {
    let directory = tempfile::tempdir().expect("temp dir");
    let entry = {
        let mut bytes = GOOD_OSV.as_bytes().to_vec();
        bytes.extend(std::iter::repeat_n(b' ', 60 * 1024));
        bytes
    };
    let entries: Vec<(String, Vec<u8>)> = (0..80).map(|index| (format!("E{index}.json"), entry.clone())).collect();
    let borrowed: Vec<(&str, Vec<u8>)> = entries.iter().map(|(name, bytes)| (name.as_str(), bytes.clone())).collect();
    write_zip(&directory.path().join("all.zip"), &borrowed);
    let error = import_all(directory.path(), &small_limits()).expect_err("4 MiB total limit is exceeded");
    assert_eq!(error.code(), "VULNDB_TOO_LARGE");
    assert!(error.to_string().contains("all.zip"), "{error}");
}

#[test]
fn archives_with_too_many_entries_are_refused() {
    let directory = tempfile::tempdir().expect("temp dir");
    let entries: Vec<(String, Vec<u8>)> = (0..101).map(|index| (format!("E{index}.json"), b"{}".to_vec())).collect();
    let borrowed: Vec<(&str, Vec<u8>)> = entries.iter().map(|(name, bytes)| (name.as_str(), bytes.clone())).collect();
    write_zip(&directory.path().join("all.zip"), &borrowed);
    let error = import_all(directory.path(), &small_limits()).expect_err("entry count limit");
    assert!(error.to_string().contains("zip entry count"), "{error}");
}

#[test]
fn bad_records_are_reported_with_file_and_entry_and_skipped() {
    let directory = tempfile::tempdir().expect("temp dir");
    write_zip(
        &directory.path().join("all.zip"),
        &[
            ("TRUNCATED.json", b"{\"id\": \"X\", \"affected\": [".to_vec()),
            ("BADEVENT.json", br#"{"id":"GHSA-bad","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0","fixed":"1"}]}]}]}"#.to_vec()),
            ("GOOD.json", GOOD_OSV.as_bytes().to_vec()),
        ],
    );
    std::fs::write(
        directory.path().join("main.yaml"),
        "distroversion: v3.11\nreponame: main\npackages:\n  - pkg:\n      name: musl\n      secfixes:\n        1.1.23-r2:\n          - CVE-2019-14697\n  - pkg: [not, a, map]\n",
    )
    .expect("write secdb");
    std::fs::write(directory.path().join("DSA.list"), "[01 Apr 2023] DSA-9999-1 foo - security update\n\t{CVE-2023-0001}\n\t[hamm] - foo 1.0-1\n\t[bullseye] - foo 1.0-2\n")
        .expect("write list");
    let rustsec = directory.path().join("crates");
    std::fs::create_dir(&rustsec).expect("mkdir");
    std::fs::write(rustsec.join("RUSTSEC-2099-0001.md"), "```toml\n[advisory]\nid = \"RUSTSEC-2099-0001\"\npackage = \"x\"\n\n[versions]\npatched = [\"not a requirement\"]\n```\n# x\n").expect("write advisory");
    let sink = import_all(directory.path(), &small_limits()).expect("import continues");
    let described: Vec<String> = sink.issues.iter().map(ToString::to_string).collect();
    let has = |file_end: &str, entry: &str| sink.issues.iter().any(|issue| issue.file.ends_with(file_end) && issue.entry.as_deref().unwrap_or("").contains(entry));
    assert!(has("all.zip", "TRUNCATED.json"), "{described:#?}");
    assert!(has("all.zip", "BADEVENT.json"), "{described:#?}");
    assert!(has("main.yaml", "packages[1]"), "{described:#?}");
    assert!(has("DSA.list", "line 3"), "{described:#?}");
    assert!(has("RUSTSEC-2099-0001.md", ""), "{described:#?}");
    assert_eq!(sink.issues.len(), 5, "{described:#?}");
    let imported: Vec<&str> = sink.advisories.iter().map(|advisory| advisory.id.as_str()).collect();
    assert!(imported.contains(&"GHSA-test-good"));
    assert!(imported.contains(&"CVE-2019-14697"));
    let dsa = sink.advisories.iter().find(|advisory| advisory.id == "DSA-9999-1").expect("DSA kept");
    assert_eq!(dsa.affected.len(), 1, "the bullseye line survives the bad one");
}

#[test]
fn oversized_loose_records_are_reported_not_loaded() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut huge = GOOD_OSV.as_bytes().to_vec();
    huge.extend(std::iter::repeat_n(b' ', 128 * 1024));
    std::fs::write(directory.path().join("HUGE.json"), huge).expect("write");
    let mut sink = CollectingSink::default();
    let units = discover_sources(&[directory.path().to_path_buf()]).expect("discover");
    let limits = ImportLimits { max_document_bytes: 64 * 1024, ..small_limits() };
    let result = import_unit(&units[0], &limits, &mut sink);
    assert!(sink.advisories.is_empty());
    assert!(result.is_ok(), "a directory of records reports the huge one and goes on: {result:?}");
    assert_eq!(sink.issues.len(), 1);
    assert!(sink.issues[0].file.ends_with("HUGE.json"));
}

#[cfg(unix)]
#[test]
fn symlink_loops_in_a_feed_directory_do_not_hang_the_import() {
    let directory = tempfile::tempdir().expect("temp dir");
    std::fs::write(directory.path().join("GOOD.json"), GOOD_OSV).expect("write");
    std::os::unix::fs::symlink(directory.path(), directory.path().join("loop")).expect("symlink");
    let sink = import_all(directory.path(), &small_limits()).expect("import");
    assert_eq!(sink.advisories.len(), 1);
}

#[test]
fn a_path_without_vulnerability_data_is_an_error_naming_it() {
    let directory = tempfile::tempdir().expect("temp dir");
    std::fs::write(directory.path().join("notes.txt"), "hello").expect("write");
    let db = VulnDb::open(directory.path().join("db")).expect("opens");
    let error = db.import_paths(&[directory.path().join("notes.txt")], &ImportLimits::default()).expect_err("nothing recognised");
    assert_eq!(error.code(), "VULNDB_UNRECOGNISED");
    assert!(error.to_string().contains("notes.txt"));
}

#[test]
fn feed_fuzz_entry_point_survives_every_corpus_shape_truncated() {
    // The fuzz logic is a plain function: run it on prefixes of real records of each format.
    let samples = [
        GOOD_OSV.to_owned(),
        "distroversion: v3.11\npackages:\n  - pkg:\n      name: musl\n      secfixes:\n        1.1.23-r2:\n          - CVE-2019-14697\n".to_owned(),
        "```toml\n[advisory]\nid = \"RUSTSEC-2099-0001\"\npackage = \"x\"\n\n[versions]\npatched = [\">= 1.0.0\"]\n```\n".to_owned(),
        "[01 Apr 2023] DSA-9999-1 foo - security update\n\t{CVE-2023-0001}\n\t[bullseye] - foo 1.0-2\n".to_owned(),
        r#"{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"CVE-1"},"products":[{"@id":"pkg:npm/x@1"}],"status":"not_affected"}]}"#.to_owned(),
    ];
    for sample in &samples {
        for end in 0..=sample.len() {
            if sample.is_char_boundary(end) {
                palisade_vulndb::import::fuzz_parse_feeds(&sample.as_bytes()[..end]);
            }
        }
    }
}
