//! A small real image for container tests: Debian's static busybox with its applets, an
//! /etc/passwd and /etc/shadow, packed as an OCI image archive `ctr images import` reads.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn append_file(builder: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, path, data)
        .expect("tar file");
}

fn append_dir(builder: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) {
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Directory);
    builder
        .append_data(&mut header, path, std::io::empty())
        .expect("tar dir");
}

fn append_symlink(builder: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(0o777);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Symlink);
    builder
        .append_link(&mut header, path, target)
        .expect("tar symlink");
}

/// Writes the image archive for `reference` into `directory`; returns its path.
pub fn build_busybox_image(directory: &Path, reference: &str) -> PathBuf {
    let busybox_path = Path::new("/bin/busybox");
    assert!(
        busybox_path.exists(),
        "/bin/busybox is missing: install Debian's busybox-static (apt-get install busybox-static)"
    );
    let busybox = std::fs::read(busybox_path).expect("read busybox");
    let applets = std::process::Command::new(busybox_path)
        .arg("--list")
        .output()
        .expect("busybox --list");
    let mut layer = tar::Builder::new(Vec::new());
    for dir in [
        "bin", "etc", "tmp", "root", "var", "var/log", "proc", "sys", "dev", "host",
    ] {
        append_dir(&mut layer, dir, if dir == "tmp" { 0o1777 } else { 0o755 });
    }
    append_file(&mut layer, "bin/busybox", 0o755, &busybox);
    for applet in String::from_utf8_lossy(&applets.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() && !applet.contains('/') {
            append_symlink(&mut layer, &format!("bin/{applet}"), "busybox");
        }
    }
    append_file(
        &mut layer,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\n",
    );
    append_file(
        &mut layer,
        "etc/group",
        0o644,
        b"root:x:0:\nwww-data:x:33:\n",
    );
    append_file(
        &mut layer,
        "etc/shadow",
        0o640,
        b"root:$6$salt$hash:19000:0:99999:7:::\n",
    );
    append_file(&mut layer, "var/log/app.log", 0o644, b"started\n");
    let layer_bytes = layer.into_inner().expect("layer tar");
    let layer_digest = sha256_hex(&layer_bytes);

    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
    })
    .to_string();
    let config_digest = sha256_hex(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config_digest}"), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{layer_digest}"), "size": layer_bytes.len()}],
    })
    .to_string();
    let manifest_digest = sha256_hex(manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest.len(),
            "annotations": {"io.containerd.image.name": reference, "org.opencontainers.image.ref.name": reference},
        }],
    })
    .to_string();

    let mut archive = tar::Builder::new(Vec::new());
    append_file(
        &mut archive,
        "oci-layout",
        0o644,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    append_file(&mut archive, "index.json", 0o644, index.as_bytes());
    append_dir(&mut archive, "blobs", 0o755);
    append_dir(&mut archive, "blobs/sha256", 0o755);
    append_file(
        &mut archive,
        &format!("blobs/sha256/{layer_digest}"),
        0o644,
        &layer_bytes,
    );
    append_file(
        &mut archive,
        &format!("blobs/sha256/{config_digest}"),
        0o644,
        config.as_bytes(),
    );
    append_file(
        &mut archive,
        &format!("blobs/sha256/{manifest_digest}"),
        0o644,
        manifest.as_bytes(),
    );
    let archive_bytes = archive.into_inner().expect("archive");
    let path = directory.join("testbox.oci.tar");
    std::fs::write(&path, archive_bytes).expect("write archive");
    path
}
