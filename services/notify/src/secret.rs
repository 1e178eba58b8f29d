//! Secrets (HMAC keys, HEC tokens) read from their file at every send, so a rotated secret
//! takes effect without a restart.

use std::io::Read;
use std::path::Path;

use crate::retry::Failure;

/// Largest secret file read; a bigger one is a mistake (a wrong path), not a key.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// The secret in `path`, surrounding whitespace removed. A missing, empty or oversized file is
/// a transient failure: the operator may be writing it right now.
pub async fn read_secret(path: &Path) -> Result<Vec<u8>, Failure> {
    // Read in place: a secret is a small file (usually on tmpfs, a mounted Kubernetes secret)
    // read in microseconds, within the async budget; a hop to the blocking pool per send
    // halved webhook throughput in benches/deliveries.rs.
    read_secret_blocking(path)
}

fn read_secret_blocking(path: &Path) -> Result<Vec<u8>, Failure> {
    let cannot_read = |error: std::io::Error| {
        Failure::transient(format!(
            "cannot read secret_file {}: {error}",
            path.display()
        ))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_SECRET_BYTES + 1).read_to_end(&mut bytes))
        .map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(Failure::transient(format!(
            "secret_file {} is larger than {MAX_SECRET_BYTES} bytes; it cannot be a secret",
            path.display()
        )));
    }
    let trimmed = bytes.trim_ascii();
    if trimmed.is_empty() {
        return Err(Failure::transient(format!(
            "secret_file {} is empty",
            path.display()
        )));
    }
    Ok(trimmed.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn secrets_are_trimmed_and_bad_files_are_named() {
        let temp = tempfile::tempdir().expect("temp dir");
        let path = temp.path().join("key");
        std::fs::write(&path, " s3cret\n").expect("write");
        assert_eq!(read_secret(&path).await.expect("secret"), b"s3cret");
        std::fs::write(&path, "\n").expect("write");
        let empty = read_secret(&path).await.expect_err("empty");
        assert!(empty.message.contains("is empty") && !empty.permanent);
        let missing = read_secret(&temp.path().join("absent"))
            .await
            .expect_err("missing");
        assert!(missing.message.contains("absent"), "{}", missing.message);
        std::fs::write(&path, vec![b'k'; 70_000]).expect("write");
        let big = read_secret(&path).await.expect_err("too big");
        assert!(
            big.message.contains("larger than 65536 bytes"),
            "{}",
            big.message
        );
    }
}
