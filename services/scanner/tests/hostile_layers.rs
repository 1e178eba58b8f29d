//! Hostile layers are refused (or contained) with an error that names the layer and entry:
//! one test per scanner CVE of that kind in the research note, plus each trick of the issue.

use std::io::Write;

use palisade_scanner::{ImageFilesystem, Limits, PackageKind, ScanError};

/// Hand-built tar headers: the tar crate refuses to write most of these tricks.
fn header(name: &[u8], type_flag: u8, size: u64, link: &[u8], mode: u32) -> [u8; 512] {
    let mut block = [0u8; 512];
    block[..name.len()].copy_from_slice(name);
    block[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    block[108..116].copy_from_slice(b"0000000\0");
    block[116..124].copy_from_slice(b"0000000\0");
    block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    block[136..148].copy_from_slice(b"00000000000\0");
    block[156] = type_flag;
    block[157..157 + link.len()].copy_from_slice(link);
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].copy_from_slice(b"        ");
    let checksum: u32 = block.iter().map(|b| u32::from(*b)).sum();
    block[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
    block
}

#[derive(Default)]
struct TarBuilder {
    bytes: Vec<u8>,
}

impl TarBuilder {
    fn raw(mut self, name: &[u8], type_flag: u8, content: &[u8], link: &[u8], mode: u32) -> Self {
        self.bytes
            .extend_from_slice(&header(name, type_flag, content.len() as u64, link, mode));
        self.bytes.extend_from_slice(content);
        let padding = (512 - content.len() % 512) % 512;
        self.bytes.extend(std::iter::repeat_n(0u8, padding));
        self
    }
    fn file(self, name: &str, content: &[u8]) -> Self {
        self.raw(name.as_bytes(), b'0', content, b"", 0o644)
    }
    fn dir(self, name: &str) -> Self {
        self.raw(name.as_bytes(), b'5', b"", b"", 0o755)
    }
    fn symlink(self, name: &str, target: &str) -> Self {
        self.raw(name.as_bytes(), b'2', b"", target.as_bytes(), 0o777)
    }
    fn hardlink(self, name: &str, target: &str) -> Self {
        self.raw(name.as_bytes(), b'1', b"", target.as_bytes(), 0o644)
    }
    fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0u8; 1024]);
        self.bytes
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

const STATUS: &[u8] = b"Package: base-files\nStatus: install ok installed\nVersion: 12.4+deb12u5\nArchitecture: amd64\n\n";

fn apply(layers: &[(&str, Vec<u8>)], limits: Limits) -> Result<ImageFilesystem, ScanError> {
    let mut filesystem = ImageFilesystem::new(limits);
    for (name, blob) in layers {
        let mut reader = blob.as_slice();
        filesystem.apply_layer(name, &mut reader)?;
    }
    Ok(filesystem)
}

fn expect_refusal(
    layers: &[(&str, Vec<u8>)],
    limits: Limits,
    layer: &str,
    entry_part: &str,
    reason_part: &str,
) {
    match apply(layers, limits) {
        Err(error @ (ScanError::HostileEntry { .. } | ScanError::LimitExceeded { .. })) => {
            let text = error.to_string();
            assert!(text.contains(&format!("layer {layer}")), "{text}");
            assert!(text.contains(entry_part), "{text}");
            assert!(text.contains(reason_part), "{text}");
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("the layer was accepted"),
    }
}

#[test]
fn cve_2024_24579_parent_traversal_in_an_oci_layer_is_refused() {
    // stereoscope wrote "../" members outside its temp dir; here nothing is extracted and the
    // member is refused by name.
    let layer = TarBuilder::default()
        .file("etc/ok", b"x")
        .file("../../../../tmp/pwned", b"evil")
        .finish();
    expect_refusal(
        &[("sha256:l1", gzip(&layer))],
        Limits::default(),
        "sha256:l1",
        "../../../../tmp/pwned",
        "escapes the image root",
    );
}

#[test]
fn cve_2021_3762_traversal_inside_an_rpm_database_path_is_refused() {
    // claircore followed "../" in members of an RPM layer.
    let layer = TarBuilder::default()
        .dir("var/lib/rpm")
        .file(
            "var/lib/rpm/../../../../../etc/cron.d/evil",
            b"* * * * * root sh",
        )
        .finish();
    expect_refusal(
        &[("sha256:rpm", layer)],
        Limits::default(),
        "sha256:rpm",
        "etc/cron.d/evil",
        "escapes the image root",
    );
}

#[test]
fn cve_2025_5981_absolute_members_are_refused_and_escaping_symlinks_stay_inside() {
    let absolute = TarBuilder::default()
        .file("/etc/passwd", b"root::0:0")
        .finish();
    expect_refusal(
        &[("sha256:abs", absolute)],
        Limits::default(),
        "sha256:abs",
        "/etc/passwd",
        "absolute path",
    );
    // A symlink pointing above the root, then a write through it: resolved inside the image
    // as a container runtime would (chroot semantics), so the file lands at /tmp/evil in the
    // image model and the host is never touched.
    let through_symlink = TarBuilder::default()
        .symlink("escape", "../../../../../../tmp")
        .file("escape/evil", b"x")
        .symlink("var", "/../../host-var")
        .dir("var/lib/dpkg")
        .file("var/lib/dpkg/status", STATUS)
        .finish();
    let filesystem = apply(&[("sha256:sym", through_symlink)], Limits::default())
        .expect("contained, not refused");
    assert!(filesystem.contains("tmp/evil"));
    assert!(filesystem.contains("host-var/lib/dpkg/status"));
    let (_, packages, _) = filesystem.finish();
    assert!(
        packages.is_empty(),
        "a status file outside /var/lib/dpkg is not the dpkg database"
    );
}

#[test]
fn cve_2026_54448_decompression_bomb_is_stopped_at_the_layer_bound() {
    let zeros = vec![0u8; 12 * 1024 * 1024];
    let bomb = TarBuilder::default().file("bomb", &zeros).finish();
    let compressed = gzip(&bomb);
    assert!(compressed.len() < 1024 * 1024, "the bomb compresses well");
    let limits = Limits {
        max_layer_bytes: 4 * 1024 * 1024,
        ..Limits::default()
    };
    expect_refusal(
        &[("sha256:bomb", compressed)],
        limits,
        "sha256:bomb",
        "bomb",
        "decompression bomb",
    );
}

#[test]
fn oversized_database_files_are_reported_not_read() {
    let big_status = vec![b'#'; 3 * 1024 * 1024];
    let layer = TarBuilder::default()
        .file("var/lib/dpkg/status", &big_status)
        .finish();
    let limits = Limits {
        max_catalog_file_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let (_, packages, issues) = apply(&[("sha256:big", layer)], limits)
        .expect("applies")
        .finish();
    assert!(packages.is_empty());
    assert_eq!(issues.len(), 1);
    assert!(issues[0].reason.contains("larger than"), "{:?}", issues[0]);
}

#[test]
fn symlink_cycles_are_reported_not_silently_swallowed() {
    // stereoscope#206: a loop stopped enumeration and packages went missing silently. Here the
    // loop does not hide other files, and a write through it is refused by name.
    let layer = TarBuilder::default()
        .symlink("a", "b")
        .symlink("b", "a")
        .symlink("etc/os-release", "../a")
        .dir("var/lib/dpkg")
        .file("var/lib/dpkg/status", STATUS)
        .finish();
    let filesystem = apply(&[("sha256:loop", layer.clone())], Limits::default())
        .expect("a loop alone is not hostile");
    assert!(
        filesystem
            .resolve("etc/os-release")
            .is_err_and(|reason| reason.contains("loop"))
    );
    let (_, packages, _) = filesystem.finish();
    assert_eq!(packages.len(), 1);
    let through_loop = TarBuilder::default()
        .symlink("a", "b")
        .symlink("b", "a")
        .file("a/x", b"y")
        .finish();
    expect_refusal(
        &[("sha256:loop2", through_loop)],
        Limits::default(),
        "sha256:loop2",
        "a/x",
        "symlink loop",
    );
}

#[test]
fn hardlink_tricks_are_refused() {
    let outside = TarBuilder::default()
        .hardlink("etc/shadow-copy", "../../etc/shadow")
        .finish();
    expect_refusal(
        &[("sha256:h1", outside)],
        Limits::default(),
        "sha256:h1",
        "etc/shadow-copy",
        "hardlink target refused",
    );
    let missing = TarBuilder::default()
        .hardlink("x", "does/not/exist")
        .finish();
    expect_refusal(
        &[("sha256:h2", missing)],
        Limits::default(),
        "sha256:h2",
        "x",
        "does not exist",
    );
    let to_directory = TarBuilder::default()
        .dir("etc")
        .hardlink("x", "etc")
        .finish();
    expect_refusal(
        &[("sha256:h3", to_directory)],
        Limits::default(),
        "sha256:h3",
        "x",
        "hardlink to directory",
    );
    // A legitimate hardlink to a database keeps its packages at the link's path.
    let legitimate = TarBuilder::default()
        .dir("var/lib/dpkg")
        .file("var/lib/dpkg/status", STATUS)
        .hardlink("var/lib/dpkg/status.d/base", "var/lib/dpkg/status")
        .finish();
    let (_, packages, _) = apply(&[("sha256:h4", legitimate)], Limits::default())
        .expect("applies")
        .finish();
    let locations: Vec<&str> = packages.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(
        locations,
        ["/var/lib/dpkg/status", "/var/lib/dpkg/status.d/base"]
    );
}

#[test]
fn device_files_carrying_data_are_refused() {
    let with_data = TarBuilder::default()
        .raw(b"dev/sda", b'4', b"data", b"", 0o600)
        .finish();
    expect_refusal(
        &[("sha256:dev", with_data)],
        Limits::default(),
        "sha256:dev",
        "dev/sda",
        "device or FIFO",
    );
    let plain = TarBuilder::default()
        .raw(b"dev/null", b'3', b"", b"", 0o666)
        .raw(b"var/lib/dpkg/status", b'6', b"", b"", 0o644)
        .finish();
    let (_, packages, _) = apply(&[("sha256:dev2", plain)], Limits::default())
        .expect("empty device nodes are recorded")
        .finish();
    assert!(
        packages.is_empty(),
        "a FIFO at the database path is never opened or read"
    );
}

#[test]
fn huge_extension_headers_are_refused_before_allocation() {
    let long_name = vec![b'a'; 200 * 1024];
    let layer = TarBuilder::default()
        .raw(b"././@LongLink", b'L', &long_name, b"", 0o644)
        .file("x", b"y")
        .finish();
    expect_refusal(
        &[("sha256:longname", layer)],
        Limits::default(),
        "sha256:longname",
        "@LongLink",
        "extension header",
    );
    let pax_value = format!("{} path={}\n", 200 * 1024 + 20, "p".repeat(200 * 1024));
    let pax = TarBuilder::default()
        .raw(b"PaxHeaders/x", b'x', pax_value.as_bytes(), b"", 0o644)
        .file("x", b"y")
        .finish();
    expect_refusal(
        &[("sha256:pax", pax)],
        Limits::default(),
        "sha256:pax",
        "PaxHeaders/x",
        "extension header",
    );
}

#[test]
fn deeply_nested_and_overlong_paths_are_bounded() {
    let deep = "d/".repeat(300) + "file";
    let layer = TarBuilder::default();
    // A PAX path carries the long name, as real tools write it.
    let record_body = format!("path={deep}\n");
    let mut length = record_body.len() + 4;
    while format!("{length} {record_body}").len() != length {
        length += 1;
    }
    let record = format!("{length} {record_body}");
    let layer = layer
        .raw(b"PaxHeaders/deep", b'x', record.as_bytes(), b"", 0o644)
        .file("placeholder", b"y")
        .finish();
    expect_refusal(
        &[("sha256:deep", layer)],
        Limits::default(),
        "sha256:deep",
        "d/d/d/",
        "nested deeper",
    );
}

#[test]
fn whiteouts_and_opaque_directories_give_the_final_filesystem() {
    let base = TarBuilder::default()
        .dir("var/lib/dpkg")
        .file("var/lib/dpkg/status", STATUS)
        .dir("app")
        .file("app/Cargo.lock", b"version = 3\n[[package]]\nname = \"smallvec\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n")
        .dir("srv/node_modules/left-pad")
        .file("srv/node_modules/left-pad/package.json", br#"{"name":"left-pad","version":"1.3.0"}"#)
        .finish();
    let upper = TarBuilder::default()
        .file("var/lib/dpkg/.wh.status", b"")
        .file("app/.wh..wh..opq", b"")
        .file("app/new.txt", b"new")
        .finish();
    let (_, packages, _) = apply(
        &[("sha256:base", gzip(&base)), ("sha256:upper", upper)],
        Limits::default(),
    )
    .expect("applies")
    .finish();
    let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["left-pad"],
        "the whited-out status and the opaque /app are gone"
    );
}

#[test]
fn zstd_and_uncompressed_layers_are_read_and_packages_get_the_layer_that_installed_them() {
    let first = TarBuilder::default()
        .dir("var/lib/dpkg")
        .file("var/lib/dpkg/status", STATUS)
        .finish();
    let mut both = STATUS.to_vec();
    both.extend_from_slice(b"Package: curl\nStatus: install ok installed\nVersion: 7.88.1-10+deb12u5\nArchitecture: amd64\n\n");
    let second = TarBuilder::default()
        .file("var/lib/dpkg/status", &both)
        .finish();
    let zstd_second = zstd::encode_all(second.as_slice(), 3).expect("zstd in memory");
    let (_, packages, _) = apply(
        &[("sha256:first", first), ("sha256:second", zstd_second)],
        Limits::default(),
    )
    .expect("applies")
    .finish();
    let layer_of = |name: &str| {
        packages
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.layer.clone())
    };
    assert_eq!(layer_of("base-files").as_deref(), Some("sha256:first"));
    assert_eq!(layer_of("curl").as_deref(), Some("sha256:second"));
    assert!(packages.iter().all(|p| p.kind == PackageKind::Deb));
}

#[test]
fn a_truncated_gzip_layer_names_the_layer() {
    let layer = gzip(&TarBuilder::default().file("etc/hostname", b"x").finish());
    let truncated = layer[..layer.len() / 2].to_vec();
    match apply(&[("sha256:cut", truncated)], Limits::default()) {
        Err(error) => assert!(error.to_string().contains("sha256:cut"), "{error}"),
        Ok(_) => panic!("a truncated layer was accepted"),
    }
}

#[test]
fn arbitrary_tar_and_gzip_input_never_panics() {
    let seeds = [
        gzip(
            &TarBuilder::default()
                .file("var/lib/dpkg/status", STATUS)
                .finish(),
        ),
        TarBuilder::default()
            .symlink("a", "a")
            .file("x", b"y")
            .finish(),
    ];
    for seed in seeds {
        for cut in (0..seed.len()).step_by(97) {
            palisade_scanner::fuzzing::fuzz_layer(&seed[..cut]);
            let mut flipped = seed.clone();
            flipped[cut] ^= 0x5a;
            palisade_scanner::fuzzing::fuzz_layer(&flipped);
        }
    }
}
