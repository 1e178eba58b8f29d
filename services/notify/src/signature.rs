//! Webhook signatures: HMAC-SHA256 over `"{timestamp}.{body}"`, sent as
//! `X-Palisade-Signature: sha256=<hex>` beside `X-Palisade-Timestamp: <unix seconds>` (the
//! scheme of Stripe's and GitHub's webhooks). Signing the timestamp with the body lets a
//! receiver refuse replays: a captured request cannot be sent again later, once its timestamp
//! is outside the receiver's tolerance, and its timestamp cannot be changed without the key.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::error::{NotifyError, Result};

/// Header carrying `sha256=<hex HMAC-SHA256 of "timestamp.body">`.
pub const SIGNATURE_HEADER: &str = "X-Palisade-Signature";
/// Header carrying the Unix time (seconds) the request was signed at.
pub const TIMESTAMP_HEADER: &str = "X-Palisade-Timestamp";
/// Header carrying the alert's stable id, the same on every retry: receivers deduplicate on it.
pub const ALERT_ID_HEADER: &str = "X-Palisade-Alert-Id";
/// Tolerance receivers should apply to the timestamp, in seconds.
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;
/// Longest signature header accepted by [`verify_signature`].
const MAX_SIGNATURE_HEADER: usize = 1024;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC's own key schedule: a key longer than the block is hashed, then zero-padded to
    // the block. Doing it here makes construction infallible (no error path for a key length).
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut mac = <HmacSha256 as KeyInit>::new(&block.into());
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The value of [`SIGNATURE_HEADER`] for `body` signed at `timestamp` with `key`.
pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(key, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("sha256={}", hex::encode(digest))
}

/// Checks a received webhook the way a receiver should: the timestamp is within
/// `tolerance_seconds` of `now_unix`, and the signature is the HMAC of `"timestamp.body"`
/// (compared in constant time). `signature` may list several `sha256=` values separated by
/// commas (a sender rotating keys); one match is enough.
pub fn verify_signature(
    key: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now_unix: i64,
    tolerance_seconds: u64,
) -> Result<()> {
    let timestamp = timestamp_header.ok_or(NotifyError::SignatureMissing {
        header: TIMESTAMP_HEADER,
    })?;
    let signature = signature_header.ok_or(NotifyError::SignatureMissing {
        header: SIGNATURE_HEADER,
    })?;
    let signed_at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| NotifyError::SignatureMalformed {
            header: TIMESTAMP_HEADER,
            message: "expected Unix seconds".to_string(),
        })?;
    let age_seconds = now_unix.saturating_sub(signed_at);
    if age_seconds.unsigned_abs() > tolerance_seconds {
        return Err(NotifyError::SignatureExpired {
            age_seconds,
            tolerance_seconds,
        });
    }
    if signature.len() > MAX_SIGNATURE_HEADER {
        return Err(NotifyError::SignatureMalformed {
            header: SIGNATURE_HEADER,
            message: format!("longer than {MAX_SIGNATURE_HEADER} bytes"),
        });
    }
    let mut candidates = Vec::new();
    for part in signature.split(',') {
        let Some(hex_digest) = part.trim().strip_prefix("sha256=") else {
            continue;
        };
        let digest = hex::decode(hex_digest).map_err(|error| NotifyError::SignatureMalformed {
            header: SIGNATURE_HEADER,
            message: format!("not hex: {error}"),
        })?;
        candidates.push(digest);
    }
    if candidates.is_empty() {
        return Err(NotifyError::SignatureMalformed {
            header: SIGNATURE_HEADER,
            message: "no sha256=<hex> value".to_string(),
        });
    }
    let matched = candidates.iter().any(|digest| {
        mac(key, timestamp.trim(), body)
            .verify_slice(digest)
            .is_ok()
    });
    if matched {
        Ok(())
    } else {
        Err(NotifyError::SignatureMismatch)
    }
}

/// Fuzz entry point: splits `data` into a timestamp header, a signature header and a body and
/// verifies them; must never panic, and a signature made by [`sign`] must always verify.
pub fn fuzz_verify(data: &[u8]) {
    let mut parts = data.splitn(3, |byte| *byte == b'\n');
    let timestamp = parts.next().and_then(|part| std::str::from_utf8(part).ok());
    let signature = parts.next().and_then(|part| std::str::from_utf8(part).ok());
    let body = parts.next().unwrap_or_default();
    let _ = verify_signature(b"fuzz-key", timestamp, signature, body, 1_700_000_000, 300);
    let signed = sign(b"fuzz-key", 1_700_000_000, body);
    let verified = verify_signature(
        b"fuzz-key",
        Some("1700000000"),
        Some(&signed),
        body,
        1_700_000_000,
        300,
    );
    assert!(verified.is_ok(), "a fresh signature must verify");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_an_independent_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let digest = <HmacSha256 as Mac>::new_from_slice(b"Jefe")
            .expect("key")
            .chain_update(b"what do ya want for nothing?")
            .finalize()
            .into_bytes();
        assert_eq!(hex::encode(digest), expected);
        // "timestamp.body" split so that the signed text is the RFC's data.
        assert_eq!(
            sign(b"Jefe", 0, b"what do ya want for nothing?"),
            format!(
                "sha256={}",
                hex::encode(
                    <HmacSha256 as Mac>::new_from_slice(b"Jefe")
                        .expect("key")
                        .chain_update(b"0.what do ya want for nothing?")
                        .finalize()
                        .into_bytes()
                )
            )
        );
    }

    #[test]
    fn keys_of_any_length_sign_like_the_hmac_crate() {
        for key in [b"".as_slice(), b"k", &[7u8; 64], &[9u8; 65], &[1u8; 300]] {
            let expected = <HmacSha256 as Mac>::new_from_slice(key)
                .expect("key")
                .chain_update(b"42.body")
                .finalize()
                .into_bytes();
            assert_eq!(
                sign(key, 42, b"body"),
                format!("sha256={}", hex::encode(expected)),
                "key of {} bytes",
                key.len()
            );
        }
    }

    #[test]
    fn verification_accepts_fresh_signatures_and_refuses_the_rest() {
        let body = br#"{"rule":"Terminal shell in container"}"#;
        let signature = sign(b"key-1", 1_000, body);
        let check = |key: &[u8], timestamp: Option<&str>, signature: Option<&str>, now: i64| {
            verify_signature(key, timestamp, signature, body, now, 300)
                .map_err(|error| error.code())
        };
        assert_eq!(
            check(b"key-1", Some("1000"), Some(&signature), 1_100),
            Ok(())
        );
        assert_eq!(
            check(b"key-2", Some("1000"), Some(&signature), 1_100),
            Err("NOTIFY_SIGNATURE_MISMATCH")
        );
        assert_eq!(
            check(b"key-1", Some("1001"), Some(&signature), 1_100),
            Err("NOTIFY_SIGNATURE_MISMATCH"),
            "a changed timestamp breaks the signature"
        );
        assert_eq!(
            check(b"key-1", Some("1000"), Some(&signature), 1_301),
            Err("NOTIFY_SIGNATURE_EXPIRED"),
            "a replay after the tolerance is refused"
        );
        assert_eq!(
            check(b"key-1", None, Some(&signature), 1_000),
            Err("NOTIFY_SIGNATURE_MISSING")
        );
        assert_eq!(
            check(b"key-1", Some("soon"), Some(&signature), 1_000),
            Err("NOTIFY_SIGNATURE_MALFORMED")
        );
        assert_eq!(
            check(b"key-1", Some("1000"), Some("sha256=zz"), 1_000),
            Err("NOTIFY_SIGNATURE_MALFORMED")
        );
        let rotating = format!("{}, {signature}", sign(b"key-0", 1_000, body));
        assert_eq!(
            check(b"key-1", Some("1000"), Some(&rotating), 1_000),
            Ok(())
        );
    }

    #[test]
    fn fuzz_logic_survives_odd_input() {
        for input in [
            b"".as_slice(),
            b"\n\n",
            b"99999999999999999999999\nsha256=00\nbody",
            b"1700000000\nsha256=,sha256=\xff\n",
            b"-9223372036854775808\nsha256=ab\n{}",
        ] {
            fuzz_verify(input);
        }
    }
}
