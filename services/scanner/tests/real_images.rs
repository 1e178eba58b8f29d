//! Scans of real images built here from a real Debian rootfs (debootstrap from Debian's
//! mirror), packed by skopeo and umoci, served by Debian's docker-registry and imported into
//! Debian's containerd. Each scan's package list must equal `dpkg-query -W` inside the rootfs.
//!
//! Needs root and: `apt-get install debootstrap skopeo umoci docker-registry apache2-utils containerd`.
//! A missing precondition fails the test with what to install. The rootfs is built once per
//! run of this test binary (about two minutes) into a temporary directory;
//! `PALISADE_SCANNER_ROOTFS=DIR` uses an existing debootstrapped rootfs instead.

// Waits for real processes from synchronous tests: std's clock.
#![allow(clippy::disallowed_types)]

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use palisade_scanner::{
    OsInfo, Package, PackageKind, Progress, ProgressEvent, RegistryCredentials, ScanCache,
    ScanError, ScanOptions, Severity, Vulnerability, VulnerabilityMatcher, build_sbom, match_sbom,
};

const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
const TAG: &str = "base";
/// A package the second layer adds, as an installed Python distribution.
const ADDED_DISTRIBUTION: (&str, &str) = ("requests", "2.31.0");

struct Fixture {
    _workspace: tempfile::TempDir,
    root: PathBuf,
    rootfs: PathBuf,
    expected: BTreeSet<(String, String)>,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn require(tools: &[(&str, &str)]) {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(tool, _)| {
            !std::env::var_os("PATH")
                .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
                .unwrap_or(false)
        })
        .map(|(_, package)| *package)
        .collect();
    assert!(
        missing.is_empty(),
        "missing tools: run `apt-get install {}` (as root)",
        missing.join(" ")
    );
    // SAFETY-free check for root: /proc/self/status Uid line.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid_is_root = status
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"));
    assert!(
        uid_is_root,
        "these tests build a rootfs and start containerd: run them as root"
    );
}

fn run(command: &mut Command) -> String {
    let description = format!("{command:?}");
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot start {description}: {error}"));
    assert!(
        output.status.success(),
        "{description} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn build_fixture() -> Fixture {
    require(&[
        ("debootstrap", "debootstrap"),
        ("skopeo", "skopeo"),
        ("umoci", "umoci"),
        ("chroot", "coreutils"),
    ]);
    // Under cargo's per-target temp dir, replaced on each run: a static fixture is never
    // dropped, so a system temp dir would be left behind by every run.
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("real-images");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("fixture base dir");
    let workspace = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&base)
        .expect("temp dir");
    let root = workspace.path().to_path_buf();
    let rootfs = match std::env::var_os("PALISADE_SCANNER_ROOTFS") {
        Some(existing) => PathBuf::from(existing),
        None => {
            let rootfs = root.join("rootfs");
            let mirror = std::env::var("PALISADE_DEBIAN_MIRROR")
                .unwrap_or_else(|_| DEBIAN_MIRROR.to_string());
            run(Command::new("debootstrap")
                .args(["--variant=minbase", "bookworm"])
                .arg(&rootfs)
                .arg(&mirror));
            rootfs
        }
    };
    let listing = run(Command::new("chroot").arg(&rootfs).args([
        "dpkg-query",
        "-W",
        "-f",
        "${Package}\t${Version}\t${db:Status-Abbrev}\n",
    ]));
    let expected: BTreeSet<(String, String)> = listing
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields.len() == 3 && fields[2].trim() == "ii")
                .then(|| (fields[0].to_string(), fields[1].to_string()))
        })
        .collect();
    assert!(
        expected.len() > 50,
        "dpkg-query listed {} packages",
        expected.len()
    );

    // Two layers: the rootfs, then a layer that deletes documentation (whiteouts) and adds a
    // Python distribution.
    let layout = root.join("oci");
    let image = format!("{}:{TAG}", layout.display());
    let bundle = root.join("bundle");
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    run(Command::new("cp")
        .arg("-a")
        .arg(rootfs.join("."))
        .arg(bundle.join("rootfs")));
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    // A fresh unpack so the next repack records only the differences, as a second layer.
    std::fs::remove_dir_all(&bundle).expect("remove bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    let documentation = bundle.join("rootfs/usr/share/doc");
    std::fs::remove_dir_all(&documentation).expect("remove docs");
    std::fs::create_dir_all(&documentation).expect("recreate docs");
    let dist_info = bundle.join(format!(
        "rootfs/usr/local/lib/python3.11/dist-packages/{}-{}.dist-info",
        ADDED_DISTRIBUTION.0, ADDED_DISTRIBUTION.1
    ));
    std::fs::create_dir_all(&dist_info).expect("dist-info dir");
    std::fs::write(
        dist_info.join("METADATA"),
        format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n\n",
            ADDED_DISTRIBUTION.0, ADDED_DISTRIBUTION.1
        ),
    )
    .expect("METADATA");
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));

    let oci_source = format!("oci:{image}");
    run(Command::new("skopeo").args([
        "copy",
        &oci_source,
        &format!("oci-archive:{}:{TAG}", root.join("image.oci.tar").display()),
    ]));
    run(Command::new("skopeo").args([
        "copy",
        &oci_source,
        &format!(
            "docker-archive:{}:palisade/debian:{TAG}",
            root.join("image.docker.tar").display()
        ),
    ]));
    run(Command::new("skopeo").args([
        "copy",
        "--dest-compress-format",
        "zstd",
        &oci_source,
        &format!("oci:{}:{TAG}", root.join("oci-zstd").display()),
    ]));
    Fixture {
        _workspace: workspace,
        root,
        rootfs,
        expected,
    }
}

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(build_fixture)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[derive(Default)]
struct CountingProgress {
    layers_started: AtomicUsize,
}

impl Progress for CountingProgress {
    fn report(&self, event: ProgressEvent) {
        if matches!(event, ProgressEvent::LayerStarted { .. }) {
            self.layers_started.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn deb_packages(packages: &[Package]) -> BTreeSet<(String, String)> {
    packages
        .iter()
        .filter(|p| p.kind == PackageKind::Deb)
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect()
}

/// Scans `target` and checks everything the fixture knows about the image.
fn assert_scan_matches_rootfs(
    options: ScanOptions,
    expected_layers: usize,
) -> palisade_scanner::Sbom {
    let fixture = fixture();
    let sbom = runtime()
        .block_on(build_sbom(&options))
        .unwrap_or_else(|error| panic!("scanning {}: {error}", options.target));
    assert_eq!(
        deb_packages(&sbom.packages),
        fixture.expected,
        "{}",
        options.target
    );
    assert_eq!(
        sbom.os.as_ref().map(OsInfo::display_name).as_deref(),
        Some("debian 12"),
        "{}",
        options.target
    );
    assert_eq!(sbom.layers.len(), expected_layers, "{}", options.target);
    assert!(
        sbom.issues.is_empty(),
        "{}: {:?}",
        options.target,
        sbom.issues
    );
    sbom
}

fn assert_second_layer_content(sbom: &palisade_scanner::Sbom) {
    let python: Vec<&Package> = sbom
        .packages
        .iter()
        .filter(|p| p.kind == PackageKind::Python)
        .collect();
    assert_eq!(python.len(), 1);
    assert_eq!(
        (python[0].name.as_str(), python[0].version.as_str()),
        ADDED_DISTRIBUTION
    );
    assert_eq!(
        python[0].layer, sbom.layers[1].digest,
        "the dist-info came with the second layer"
    );
    let base_files = sbom
        .packages
        .iter()
        .find(|p| p.name == "base-files")
        .expect("base-files");
    assert_eq!(
        base_files.layer, sbom.layers[0].digest,
        "dpkg packages came with the first layer"
    );
}

#[test]
fn oci_layout_scan_equals_dpkg_query_in_the_rootfs() {
    let fixture = fixture();
    let sbom = assert_scan_matches_rootfs(
        ScanOptions::new(format!("oci:{}:{TAG}", fixture.root.join("oci").display())),
        2,
    );
    assert_second_layer_content(&sbom);
    assert!(sbom.image_digest.starts_with("sha256:"));
}

#[test]
fn zstd_oci_layout_scan_equals_dpkg_query_in_the_rootfs() {
    let fixture = fixture();
    let sbom = assert_scan_matches_rootfs(
        ScanOptions::new(format!(
            "oci:{}:{TAG}",
            fixture.root.join("oci-zstd").display()
        )),
        2,
    );
    assert!(
        sbom.layers
            .iter()
            .all(|layer| layer.media_type.contains("zstd")),
        "{:?}",
        sbom.layers
    );
    assert_second_layer_content(&sbom);
}

#[test]
fn oci_archive_scan_equals_dpkg_query_in_the_rootfs() {
    let fixture = fixture();
    let sbom = assert_scan_matches_rootfs(
        ScanOptions::new(format!(
            "oci-archive:{}:{TAG}",
            fixture.root.join("image.oci.tar").display()
        )),
        2,
    );
    assert_second_layer_content(&sbom);
}

#[test]
fn docker_archive_scan_equals_dpkg_query_in_the_rootfs() {
    let fixture = fixture();
    let sbom = assert_scan_matches_rootfs(
        ScanOptions::new(format!(
            "docker-archive:{}",
            fixture.root.join("image.docker.tar").display()
        )),
        2,
    );
    assert_second_layer_content(&sbom);
}

#[test]
fn rootfs_directory_scan_equals_dpkg_query() {
    let fixture = fixture();
    assert_scan_matches_rootfs(
        ScanOptions::new(format!("dir:{}", fixture.rootfs.display())),
        1,
    );
}

#[test]
fn a_tampered_layer_is_refused_by_digest() {
    let fixture = fixture();
    let copy = fixture.root.join("oci-tampered");
    run(Command::new("cp")
        .arg("-a")
        .arg(fixture.root.join("oci"))
        .arg(&copy));
    // Append bytes to every layer-sized blob: their content no longer matches their names.
    let blobs = copy.join("blobs/sha256");
    for entry in std::fs::read_dir(&blobs)
        .expect("blobs")
        .filter_map(|entry| entry.ok())
    {
        if entry.metadata().map(|m| m.len()).unwrap_or(0) > 1024 * 1024 {
            let mut bytes = std::fs::read(entry.path()).expect("blob");
            bytes.extend_from_slice(&[0u8; 512]);
            std::fs::write(entry.path(), bytes).expect("write blob");
        }
    }
    let options = ScanOptions::new(format!("oci:{}:{TAG}", copy.display()));
    match runtime().block_on(build_sbom(&options)) {
        Err(ScanError::DigestMismatch { what, .. }) => assert!(what.contains("layer"), "{what}"),
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
}

/// Kills a child process when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not become ready within {timeout:?}");
}

#[test]
fn registry_with_basic_auth_serves_the_image_to_the_scanner() {
    require(&[
        ("docker-registry", "docker-registry"),
        ("htpasswd", "apache2-utils"),
    ]);
    let fixture = fixture();
    let directory = tempfile::tempdir().expect("registry dir");
    let password = "s3cret-palisade";
    let htpasswd = run(Command::new("htpasswd").args(["-Bbn", "scanner", password]));
    std::fs::write(directory.path().join("htpasswd"), htpasswd).expect("htpasswd");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\nauth:\n  htpasswd:\n    realm: palisade-test\n    path: {}\n",
        directory.path().join("data").display(),
        directory.path().join("htpasswd").display()
    );
    let config_path = directory.path().join("config.yml");
    std::fs::write(&config_path, config).expect("registry config");
    let _registry = ChildGuard(
        Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry"),
    );
    wait_until("docker-registry", Duration::from_secs(20), || {
        std::net::TcpStream::connect(&address).is_ok()
    });
    let destination = format!("docker://{address}/palisade/debian:{TAG}");
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("scanner:{password}"),
        &format!("oci:{}:{TAG}", fixture.root.join("oci").display()),
        &destination,
    ]));

    let credentials = RegistryCredentials {
        registry: address.clone(),
        username: "scanner".to_string(),
        password: password.to_string(),
    };
    let mut options = ScanOptions::new(destination.clone());
    options.insecure_registries = vec![address.clone()];
    options.registry_credentials = vec![credentials.clone()];
    let sbom = assert_scan_matches_rootfs(options.clone(), 2);
    assert_second_layer_content(&sbom);

    // Pinned by digest, the same image.
    let mut pinned = options.clone();
    pinned.target = format!("docker://{address}/palisade/debian@{}", sbom.image_digest);
    assert_eq!(
        assert_scan_matches_rootfs(pinned, 2).image_digest,
        sbom.image_digest
    );

    // Without credentials the registry refuses, and the error says so.
    let mut anonymous = options.clone();
    anonymous.registry_credentials.clear();
    let refused = runtime()
        .block_on(build_sbom(&anonymous))
        .expect_err("anonymous pull must fail");
    assert!(matches!(refused, ScanError::Registry { .. }), "{refused}");

    // Credentials for another host are never sent.
    let mut foreign = options;
    foreign.registry_credentials = vec![RegistryCredentials {
        registry: "registry.example:5000".to_string(),
        ..credentials
    }];
    assert!(runtime().block_on(build_sbom(&foreign)).is_err());
}

#[test]
fn containerd_content_store_serves_the_image_to_the_scanner() {
    require(&[("containerd", "containerd"), ("ctr", "containerd")]);
    let fixture = fixture();
    let directory = tempfile::tempdir().expect("containerd dir");
    let socket = directory.path().join("containerd.sock");
    let config = format!(
        "version = 2\nroot = \"{}\"\nstate = \"{}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{}\"\n",
        directory.path().join("root").display(),
        directory.path().join("state").display(),
        socket.display()
    );
    let config_path = directory.path().join("config.toml");
    std::fs::write(&config_path, config).expect("containerd config");
    let log = std::fs::File::create(directory.path().join("containerd.log")).expect("log file");
    let _containerd = ChildGuard(
        Command::new("containerd")
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start containerd"),
    );
    wait_until("containerd", Duration::from_secs(30), || socket.exists());
    let namespace = "palisade-test";
    run(Command::new("ctr")
        .arg("--address")
        .arg(&socket)
        .args(["--namespace", namespace, "images", "import", "--no-unpack"])
        .arg(fixture.root.join("image.docker.tar")));
    let mut options = ScanOptions::new(format!("containerd:docker.io/palisade/debian:{TAG}"));
    options.containerd_socket = socket.clone();
    options.containerd_namespace = namespace.to_string();
    let sbom = assert_scan_matches_rootfs(options.clone(), 2);
    assert_second_layer_content(&sbom);

    let mut missing = options;
    missing.target = "containerd:docker.io/palisade/absent:1".to_string();
    let error = runtime()
        .block_on(build_sbom(&missing))
        .expect_err("absent image");
    assert!(matches!(error, ScanError::Containerd { .. }), "{error}");
    let _ = Path::new(&socket);
}

/// A token server as distribution's token auth expects: Basic credentials in, an RS256 JWT
/// (signed by `openssl dgst`, certificate chain in `x5c`) out, for the requested scope.
fn start_token_server(key: PathBuf, certificate_der: Vec<u8>, password: &'static str) -> String {
    use base64::Engine;
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("token listener");
    let address = listener.local_addr().expect("address").to_string();
    std::thread::spawn(move || {
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let standard = base64::engine::general_purpose::STANDARD;
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut authorized = false;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some(value) = header
                    .trim()
                    .strip_prefix("Authorization: Basic ")
                    .or_else(|| header.trim().strip_prefix("authorization: Basic "))
                {
                    authorized = standard.decode(value).ok().as_deref()
                        == Some(format!("scanner:{password}").as_bytes());
                }
            }
            if !authorized {
                let _ = stream.write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            let scope = request_line
                .split(['?', '&', ' '])
                .find_map(|part| part.strip_prefix("scope="))
                .unwrap_or_default()
                .replace("%3A", ":")
                .replace("%2C", ",")
                .replace("%2F", "/");
            let access: Vec<serde_json::Value> = scope
                .split(' ')
                .filter_map(|item| {
                    let mut parts = item.splitn(3, ':');
                    let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                    Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                })
                .collect();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [standard.encode(&certificate_der)]});
            let claims = serde_json::json!({
                "iss": "palisade-test-issuer", "sub": "scanner", "aud": "palisade-registry",
                "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", access.len()), "access": access,
            });
            let signing_input = format!(
                "{}.{}",
                url_safe.encode(header.to_string()),
                url_safe.encode(claims.to_string())
            );
            let input_path = key.with_extension(format!("input-{now}-{}", std::process::id()));
            std::fs::write(&input_path, &signing_input).expect("signing input");
            let signature = Command::new("openssl")
                .args(["dgst", "-sha256", "-sign"])
                .arg(&key)
                .arg(&input_path)
                .output()
                .expect("openssl dgst");
            let token = format!("{signing_input}.{}", url_safe.encode(&signature.stdout));
            let body =
                serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
                    .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    address
}

#[test]
fn registry_with_token_auth_serves_the_image_to_the_scanner() {
    require(&[
        ("docker-registry", "docker-registry"),
        ("openssl", "openssl"),
    ]);
    let fixture = fixture();
    let directory = tempfile::tempdir().expect("registry dir");
    let key = directory.path().join("token.key");
    let certificate = directory.path().join("token.crt");
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=palisade-test-token",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&certificate));
    let der_path = directory.path().join("token.der");
    run(Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&certificate)
        .arg("-out")
        .arg(&der_path));
    let password = "t0ken-palisade";
    let token_address = start_token_server(key, std::fs::read(&der_path).expect("der"), password);
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\nauth:\n  token:\n    realm: http://{token_address}/token\n    service: palisade-registry\n    issuer: palisade-test-issuer\n    rootcertbundle: {}\n",
        directory.path().join("data").display(),
        certificate.display()
    );
    let config_path = directory.path().join("config.yml");
    std::fs::write(&config_path, config).expect("registry config");
    let _registry = ChildGuard(
        Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry"),
    );
    wait_until("docker-registry", Duration::from_secs(20), || {
        std::net::TcpStream::connect(&address).is_ok()
    });
    let destination = format!("docker://{address}/palisade/debian:{TAG}");
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("scanner:{password}"),
        &format!("oci:{}:{TAG}", fixture.root.join("oci").display()),
        &destination,
    ]));
    let mut options = ScanOptions::new(destination);
    options.insecure_registries = vec![address.clone()];
    options.registry_credentials = vec![RegistryCredentials {
        registry: address.clone(),
        username: "scanner".to_string(),
        password: password.to_string(),
    }];
    let sbom = assert_scan_matches_rootfs(options.clone(), 2);
    assert_second_layer_content(&sbom);
    let mut wrong = options;
    wrong.registry_credentials[0].password = "wrong".to_string();
    let refused = runtime()
        .block_on(build_sbom(&wrong))
        .expect_err("a wrong password must fail");
    assert!(matches!(refused, ScanError::Registry { .. }), "{refused}");
}

/// A matcher over a fixed list of (package, fixed version) findings, standing in for the
/// vulnerability database to check the re-matching seam.
struct ListMatcher(Vec<(&'static str, &'static str, &'static str)>);

impl VulnerabilityMatcher for ListMatcher {
    fn describe(&self) -> String {
        format!("{} test advisories", self.0.len())
    }

    fn match_packages(
        &self,
        os: Option<&OsInfo>,
        packages: &[Package],
    ) -> Result<Vec<Vulnerability>, String> {
        let ecosystem = os.and_then(OsInfo::osv_ecosystem).unwrap_or_default();
        Ok(packages
            .iter()
            .flat_map(|package| {
                self.0
                    .iter()
                    .filter(|(name, _, _)| *name == package.advisory_name())
                    .map(|(_, id, fixed)| {
                        let mut finding =
                            Vulnerability::for_package(package, ecosystem.clone(), *id);
                        finding.fixed_version = Some((*fixed).to_string());
                        finding.severity = Severity::High;
                        finding
                    })
            })
            .collect())
    }
}

#[test]
fn a_cached_sbom_is_rematched_without_reading_layers() {
    let fixture = fixture();
    let cache_directory = tempfile::tempdir().expect("cache dir");
    let cache = ScanCache::open(cache_directory.path()).expect("cache");
    let progress = Arc::new(CountingProgress::default());
    let mut options = ScanOptions::new(format!("oci:{}:{TAG}", fixture.root.join("oci").display()));
    options.cache = Some(cache.clone());
    options.progress = progress.clone();
    let first = runtime()
        .block_on(build_sbom(&options))
        .expect("first scan");
    assert_eq!(progress.layers_started.load(Ordering::SeqCst), 2);
    assert_eq!(
        cache.image_digests().expect("list"),
        vec![first.image_digest.clone()]
    );

    let second = runtime()
        .block_on(build_sbom(&options))
        .expect("cached scan");
    assert_eq!(
        progress.layers_started.load(Ordering::SeqCst),
        2,
        "no layer was read again"
    );
    assert_eq!(second, first);

    let cached = cache
        .get(&first.image_digest)
        .expect("read")
        .expect("present");
    let before = match_sbom(cached.clone(), Some(&ListMatcher(vec![]))).expect("match");
    assert!(before.vulnerabilities.is_empty());
    let after = match_sbom(
        cached,
        Some(&ListMatcher(vec![(
            "glibc",
            "CVE-2025-4802",
            "2.36-9+deb12u11",
        )])),
    )
    .expect("rematch");
    let libc = after
        .vulnerabilities
        .iter()
        .find(|v| v.package == "libc6")
        .expect("libc6 matched through its source glibc");
    assert_eq!(libc.ecosystem, "Debian:12");
    assert_eq!(libc.layer, first.layers[0].digest);
    assert_eq!(progress.layers_started.load(Ordering::SeqCst), 2);
}
