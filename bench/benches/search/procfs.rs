//! Counters of this process and thread from /proc.

use anyhow::Context as _;

/// The fields of a /proc stat file (`/proc/self/stat`, `/proc/thread-self/stat`) after the
/// command name, which may hold spaces: the first is the state, field 3 in proc(5).
pub struct StatFields {
    path: &'static str,
    fields: Vec<String>,
}

impl StatFields {
    pub fn read(path: &'static str) -> anyhow::Result<StatFields> {
        let stat = std::fs::read_to_string(path)?;
        let after_name = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .with_context(|| format!("{path} has no command name"))?;
        Ok(StatFields {
            path,
            fields: after_name.split_whitespace().map(str::to_string).collect(),
        })
    }

    /// Field `number` of proc(5) (3 or more) as a number.
    pub fn number(&self, number: usize) -> anyhow::Result<u64> {
        let path = self.path;
        self.fields
            .get(
                number
                    .checked_sub(3)
                    .context("fields before 3 precede the name")?,
            )
            .with_context(|| format!("{path} is short"))?
            .parse()
            .with_context(|| format!("{path} field {number} is not a number"))
    }
}
