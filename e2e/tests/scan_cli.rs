//! `palisade scan` on a root filesystem holding a real Alpine 3.4 package database (with one
//! invalid entry), matched against Alpine's real secdb for v3.4 imported by `palisade vulndb`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use palisade_testkit::{corpus_path, palisade_binary};

fn rootfs(directory: &Path) -> PathBuf {
    let root = directory.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    std::fs::create_dir_all(root.join("lib/apk/db")).expect("apk dir");
    std::fs::write(
        root.join("etc/os-release"),
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.4.6\nPRETTY_NAME=\"Alpine Linux v3.4\"\n",
    )
    .expect("os-release");
    std::fs::copy(
        corpus_path("images/alpine-3.4-lib-apk-db-installed-with-invalid-entry"),
        root.join("lib/apk/db/installed"),
    )
    .expect("apk database");
    root
}

fn palisade(args: &[&str]) -> Output {
    Command::new(palisade_binary())
        .args(args)
        .output()
        .expect("palisade runs")
}

#[test]
fn an_alpine_image_is_matched_against_alpines_secdb() {
    let temp = tempfile::tempdir().expect("temp");
    let root = rootfs(temp.path());
    let target = format!("dir:{}", root.display());
    let db = temp.path().join("vulndb");
    let db = db.to_str().expect("utf-8 path");

    let missing = palisade(&["scan", &target, "--db", db, "-q"]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains(db) && stderr.contains("vulndb import"),
        "{stderr}"
    );

    let secdb = corpus_path("vulndb/alpine-secdb/v3.4");
    let import = palisade(&[
        "vulndb",
        "import",
        "--db",
        db,
        secdb.to_str().expect("path"),
    ]);
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );

    let scan = palisade(&["scan", &target, "--db", db, "--format", "json", "-q"]);
    assert!(
        scan.status.success(),
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&scan.stdout).expect("json report");
    let packages = report["packages"].as_array().expect("packages");
    let installed = std::fs::read_to_string(root.join("lib/apk/db/installed")).expect("db");
    let entries_with_version = installed
        .split("\n\n")
        .filter(|entry| entry.lines().any(|line| line.starts_with("V:")))
        .count();
    assert_eq!(packages.len(), entries_with_version);
    let issues = report["issues"].as_array().expect("issues");
    assert!(
        issues.iter().any(|issue| issue["reason"]
            .as_str()
            .unwrap_or("")
            .contains("no version")),
        "the entry without a version is reported: {issues:?}"
    );

    // Every finding is an advisory of Alpine's v3.4 secdb naming the package's fix.
    let secdb_text = ["main.yaml", "community.yaml"]
        .iter()
        .filter_map(|file| std::fs::read_to_string(secdb.join(file)).ok())
        .collect::<String>();
    let findings = report["vulnerabilities"]
        .as_array()
        .expect("vulnerabilities");
    assert!(findings.len() > 20, "{} findings", findings.len());
    for finding in findings {
        let id = finding["id"].as_str().expect("id");
        let fixed = finding["fixed_version"].as_str().expect("fixed version");
        assert!(
            secdb_text.contains(id) && secdb_text.contains(fixed),
            "{id} fixed in {fixed} is not in the secdb"
        );
    }

    let gate = palisade(&["scan", &target, "--db", db, "--fail-on", "unknown", "-q"]);
    assert_eq!(gate.status.code(), Some(1), "findings trip the gate");

    let sbom = palisade(&["scan", &target, "--skip-db", "--format", "cyclonedx", "-q"]);
    assert!(sbom.status.success());
    let bom: serde_json::Value = serde_json::from_slice(&sbom.stdout).expect("cyclonedx json");
    assert_eq!(bom["bomFormat"], "CycloneDX");
    let libraries = bom["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter(|component| component["type"] == "library")
        .count();
    assert_eq!(libraries, packages.len(), "one component per package");

    let bad_format = palisade(&["scan", &target, "--skip-db", "--format", "xml"]);
    assert!(!bad_format.status.success());
    assert!(String::from_utf8_lossy(&bad_format.stderr).contains("--format"));
}

fn run(command: &mut Command) -> String {
    let description = format!("{command:?}");
    let output = command.output().unwrap_or_else(|error| {
        panic!("cannot start {description}: {error} (make test installs it)")
    });
    assert!(
        output.status.success(),
        "{description} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// The same root filesystem as an image in Debian's docker-registry behind basic auth (packed
/// with umoci, pushed with skopeo): `palisade scan docker://...` needs the credentials, takes them
/// from the environment, and finds the same packages as the `dir:` scan.
#[test]
fn a_registry_image_is_scanned_with_credentials_from_the_environment() {
    let temp = tempfile::tempdir().expect("temp");
    let root = rootfs(temp.path());
    let layout = temp.path().join("oci");
    let image = format!("{}:e2e", layout.display());
    let bundle = temp.path().join("bundle");
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", root.display()))
        .arg(bundle.join("rootfs")));
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));

    let password = "e2e-s3cret";
    let htpasswd = run(Command::new("htpasswd").args(["-Bbn", "e2e", password]));
    std::fs::write(temp.path().join("htpasswd"), htpasswd).expect("htpasswd");
    let address = format!("127.0.0.1:{}", free_port());
    let config = temp.path().join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\nauth:\n  htpasswd:\n    realm: e2e\n    path: {}\n",
            temp.path().join("registry").display(),
            temp.path().join("htpasswd").display()
        ),
    )
    .expect("registry config");
    let _registry = palisade_testkit::ChildGuard::new(
        Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry starts (make test installs it)"),
    );
    // Up to 20 s for the registry to listen.
    let listening = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(&address).is_ok()
    });
    assert!(listening, "docker-registry did not listen on {address}");
    let target = format!("docker://{address}/e2e/alpine:3.4");
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &format!("e2e:{password}"),
        &format!("oci:{image}"),
        &target,
    ]));

    let scan = |credentials: bool| {
        let mut command = Command::new(palisade_binary());
        command
            .args(["scan", &target, "--insecure-registry", &address])
            .args(["--skip-db", "--format", "json", "-q"])
            .env_remove("PALISADE_REGISTRY_USERNAME")
            .env_remove("PALISADE_REGISTRY_PASSWORD");
        if credentials {
            command
                .env("PALISADE_REGISTRY_USERNAME", "e2e")
                .env("PALISADE_REGISTRY_PASSWORD", password);
        }
        command.output().expect("palisade runs")
    };
    let refused = scan(false);
    assert!(!refused.status.success(), "an anonymous pull is refused");
    let reason = String::from_utf8_lossy(&refused.stderr);
    assert!(reason.contains(&address), "{reason}");

    let pulled = scan(true);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&pulled.stdout).expect("json");
    let local = palisade(&[
        "scan",
        &format!("dir:{}", root.display()),
        "--skip-db",
        "--format",
        "json",
        "-q",
    ]);
    let local: serde_json::Value = serde_json::from_slice(&local.stdout).expect("json");
    let names = |report: &serde_json::Value| {
        let mut names: Vec<String> = report["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|package| format!("{} {}", package["name"], package["version"]))
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&report), names(&local));
    assert!(!names(&report).is_empty());
}
