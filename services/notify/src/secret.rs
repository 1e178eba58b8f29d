//! Secrets (HMAC keys, HEC tokens) read from their file at every send, so a rotated secret
//! takes effect without a restart.

use std::path::Path;

use crate::retry::Failure;

/// Largest secret file read; a bigger one is a mistake (a wrong path), not a key.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// The secret in `path`, surrounding whitespace removed. A missing, empty or oversized file is
/// a transient failure: the operator may be writing it right now.
pub async fn read_secret(path: &Path) -> Result<Vec<u8>, Failure> {
    let metadata = tokio::fs::metadata(path).await.map_err(|error| {
        Failure::transient(format!(
            "cannot read secret_file {}: {error}",
            path.display()
        ))
    })?;
    if metadata.len() > MAX_SECRET_BYTES {
        return Err(Failure::transient(format!(
            "secret_file {} is {} bytes; a secret is at most {MAX_SECRET_BYTES}",
            path.display(),
            metadata.len()
        )));
    }
    let bytes = tokio::fs::read(path).await.map_err(|error| {
        Failure::transient(format!(
            "cannot read secret_file {}: {error}",
            path.display()
        ))
    })?;
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
        assert!(big.message.contains("70000 bytes"), "{}", big.message);
    }
}
