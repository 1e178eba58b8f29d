//! Console sessions: a signed-in browser holds a random session id in an HttpOnly cookie; the
//! server keeps, in memory, the API key it signed in with and the session's CSRF token.
//! Sessions end at sign-out, after an idle timeout, or when the platform restarts (the user
//! signs in again). The key itself is checked again on every request by the gRPC API the
//! console calls, so a revoked key ends its sessions at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::RngCore;
use tokio::time::Instant;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "palisade_session";
/// Name of the cookie holding the sign-in form's CSRF token (before there is a session).
pub const SIGNIN_COOKIE: &str = "palisade_signin";

/// A signed-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// The API key it signed in with.
    pub api_key: String,
    /// The token every form of the session must carry.
    pub csrf: String,
    /// The key's tenant, shown in the header.
    pub tenant: String,
    last_seen: Instant,
}

/// The live sessions.
#[derive(Debug)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    idle_timeout: Duration,
    max_sessions: usize,
}

/// A random token of 32 bytes, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares two tokens in time independent of where they differ.
pub fn tokens_equal(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

impl Sessions {
    /// No sessions yet; a session unused for `idle_timeout` ends; at most `max_sessions` live
    /// at once (the least recently used goes first).
    pub fn new(idle_timeout: Duration, max_sessions: usize) -> Sessions {
        Sessions {
            sessions: Mutex::new(HashMap::new()),
            idle_timeout,
            max_sessions: max_sessions.max(1),
        }
    }

    /// Starts a session; returns its id.
    pub fn start(&self, api_key: String, tenant: String) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, session| now.duration_since(session.last_seen) < self.idle_timeout);
        while sessions.len() >= self.max_sessions {
            let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, session)| session.last_seen)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            sessions.remove(&oldest);
        }
        sessions.insert(
            id.clone(),
            Session {
                api_key,
                csrf: random_token(),
                tenant,
                last_seen: now,
            },
        );
        id
    }

    /// The session with this id, if it has not timed out; marks it used.
    pub fn touch(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let session = sessions.get_mut(id)?;
        if now.duration_since(session.last_seen) >= self.idle_timeout {
            sessions.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The value of a cookie in a `Cookie` header.
pub fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path /console, Secure over TLS;
/// `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> String {
    let mut cookie = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_idle_session_ends_and_a_used_one_stays() {
        let sessions = Sessions::new(Duration::from_secs(60), 10);
        let idle = sessions.start("k1".into(), "t".into());
        let used = sessions.start("k2".into(), "t".into());
        tokio::time::advance(Duration::from_secs(40)).await;
        assert!(sessions.touch(&used).is_some());
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(sessions.touch(&idle).is_none(), "idle for 70 s");
        assert!(sessions.touch(&used).is_some(), "used 30 s ago");
        sessions.end(&used);
        assert!(sessions.touch(&used).is_none(), "signed out");
    }

    #[tokio::test(start_paused = true)]
    async fn the_least_recently_used_session_goes_when_full() {
        let sessions = Sessions::new(Duration::from_secs(600), 2);
        let first = sessions.start("k1".into(), "t".into());
        tokio::time::advance(Duration::from_secs(1)).await;
        let second = sessions.start("k2".into(), "t".into());
        tokio::time::advance(Duration::from_secs(1)).await;
        let third = sessions.start("k3".into(), "t".into());
        assert!(sessions.touch(&first).is_none());
        assert!(sessions.touch(&second).is_some());
        assert!(sessions.touch(&third).is_some());
    }

    #[test]
    fn cookies_and_tokens() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            "a=1; palisade_session=abc; b=2".parse().expect("header"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        assert!(tokens_equal("abcd", "abcd"));
        assert!(!tokens_equal("abcd", "abce"));
        assert!(!tokens_equal("abcd", "abc"));
        assert!(set_cookie("n", "v", true, Some(0)).contains("; Secure; Max-Age=0"));
    }
}
