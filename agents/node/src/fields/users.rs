//! User and group names as the process sees them: from /etc/passwd and /etc/group inside
//! its mount namespace (through /proc/<pid>/root), cached per namespace.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::event::Process;

/// Most (namespace, id) names cached; the cache is cleared when full.
const CACHE_LIMIT: usize = 65536;

/// Cached uid/gid -> name lookups.
#[derive(Debug, Default)]
pub struct UserNames {
    users: Mutex<HashMap<(u32, u32), String>>,
    groups: Mutex<HashMap<(u32, u32), String>>,
}

fn lookup(pid: u32, file: &str, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/root/etc/{file}"))
        .or_else(|_| std::fs::read_to_string(format!("/etc/{file}")))
        .ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let line_id = fields.next()?.parse::<u32>().ok()?;
        (line_id == id).then(|| name.to_string())
    })
}

fn cached(
    cache: &Mutex<HashMap<(u32, u32), String>>,
    process: &Process,
    file: &str,
    id: u32,
) -> String {
    let key = (process.mntns, id);
    if let Ok(map) = cache.lock()
        && let Some(name) = map.get(&key)
    {
        return name.clone();
    }
    // a name Falco cannot resolve prints as the number; "root" for 0 is certain everywhere
    let name = lookup(process.pid, file, id).unwrap_or_else(|| {
        if id == 0 {
            "root".to_string()
        } else {
            id.to_string()
        }
    });
    if let Ok(mut map) = cache.lock() {
        if map.len() >= CACHE_LIMIT {
            map.clear();
        }
        map.insert(key, name.clone());
    }
    name
}

impl UserNames {
    /// The name of `uid` for `process`.
    pub fn user_name(&self, process: &Process, uid: u32) -> String {
        cached(&self.users, process, "passwd", uid)
    }

    /// The name of `gid` for `process`.
    pub fn group_name(&self, process: &Process, gid: u32) -> String {
        cached(&self.groups, process, "group", gid)
    }
}
