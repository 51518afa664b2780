//! The daemon's options as `ferretd` and `ferret daemon` both take them:
//! one definition of what each means, its default and its checks. The two
//! front ends only read the command line (`ferretd` by hand, to stay free
//! of a parser; `ferret daemon` with the CLI's clap) into [`DaemonOptions`].

use std::path::PathBuf;

use ferret_abi::shm::{RegionLayout, RegionParams};

use crate::{Config, ControlGroup, default_budget};

/// The daemon's options, as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonOptions {
    /// The most sessions that may be RUNNING or STOPPING at once.
    pub session_limit: usize,
    /// Rings in each provider process's region.
    pub rings: u32,
    /// Bytes of each ring, KiB.
    pub ring_kib: u64,
    /// A group whose members may control every session.
    pub control_group: Option<String>,
    /// The most buffer memory all sessions together may reserve.
    pub buffer_memory: Option<String>,
    /// The most buffer memory one user's sessions may reserve.
    pub user_buffer_memory: Option<String>,
}

impl Default for DaemonOptions {
    fn default() -> DaemonOptions {
        DaemonOptions {
            session_limit: ferret_abi::limits::DEFAULT_SESSION_LIMIT,
            rings: RegionParams::default().ring_count,
            ring_kib: RegionParams::default().ring_capacity / 1024,
            control_group: None,
            buffer_memory: None,
            user_buffer_memory: None,
        }
    }
}

/// Each option's flag, value name and help, for both front ends' help.
pub const OPTION_HELP: [(&str, &str, &str); 6] = [
    (
        "--session-limit",
        "N",
        "The most sessions that may be RUNNING or STOPPING at once (1-4096)",
    ),
    (
        "--rings",
        "N",
        "Rings in each provider process's region: the most threads of one process that hold a ring at once (1-4096)",
    ),
    (
        "--ring-kib",
        "KIB",
        "Bytes of each ring, in KiB: a power of two from 4 to 1048576",
    ),
    (
        "--control-group",
        "GROUP",
        "A group whose members may control every session of this daemon, as its owner and root may; the socket and its directory become reachable by the group (0660 and 0750)",
    ),
    (
        "--buffer-memory",
        "SIZE",
        "The most buffer memory all sessions together may reserve (max buffers x buffer size, from start until STOPPED): MiB, or with a K, M, G or T suffix [default: a quarter of physical memory]",
    ),
    (
        "--user-buffer-memory",
        "SIZE",
        "The most buffer memory one user's sessions may reserve; root's are exempt [default: 1G, or --buffer-memory if less]",
    ),
];

impl DaemonOptions {
    /// Sets the option `flag` (as in [`OPTION_HELP`]) from its text.
    /// Returns false for a flag that is not a daemon option.
    pub fn set(&mut self, flag: &str, value: &str) -> Result<bool, String> {
        let number = |what: &str| format!("{flag} needs {what}, not '{value}'");
        match flag {
            "--session-limit" => {
                self.session_limit = value.parse().map_err(|_| number("a number"))?;
            }
            "--rings" => self.rings = value.parse().map_err(|_| number("a number"))?,
            "--ring-kib" => self.ring_kib = value.parse().map_err(|_| number("a number"))?,
            "--control-group" => self.control_group = Some(value.to_string()),
            "--buffer-memory" => self.buffer_memory = Some(value.to_string()),
            "--user-buffer-memory" => self.user_buffer_memory = Some(value.to_string()),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The daemon's configuration for the socket at `socket`, or one line
    /// naming the option that cannot be used.
    pub fn config(&self, socket: PathBuf) -> Result<Config, String> {
        if !(1..=4096).contains(&self.session_limit) {
            return Err(format!(
                "--session-limit {} is out of range; give 1 to 4096",
                self.session_limit
            ));
        }
        let region = RegionParams {
            ring_count: self.rings,
            ring_capacity: self.ring_kib.saturating_mul(1024),
            ..RegionParams::default()
        };
        RegionLayout::new(region)
            .map_err(|e| format!("--rings {} --ring-kib {}: {e}", self.rings, self.ring_kib))?;
        let mut budget = default_budget();
        if let Some(text) = &self.buffer_memory {
            budget.total =
                ferret_session::parse_memory(text).map_err(|e| format!("--buffer-memory: {e}"))?;
        }
        // Without its own cap, a user may reserve the default or, under a
        // smaller total, the total.
        budget.per_user = match &self.user_buffer_memory {
            Some(text) => ferret_session::parse_memory(text)
                .map_err(|e| format!("--user-buffer-memory: {e}"))?,
            None => ferret_session::DEFAULT_USER_BUFFER_MEMORY.min(budget.total),
        };
        let mut config = Config::new(socket);
        config.session_limit = self.session_limit;
        config.region = region;
        config.buffer_budget = budget;
        if let Some(name) = &self.control_group {
            config.control_group =
                Some(ControlGroup::resolve(name).map_err(|e| format!("--control-group: {e}"))?);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_is_set_from_its_text_and_checked_once() {
        let mut o = DaemonOptions::default();
        for (flag, value) in [
            ("--session-limit", "8"),
            ("--rings", "16"),
            ("--ring-kib", "64"),
            ("--buffer-memory", "64M"),
            ("--user-buffer-memory", "16M"),
        ] {
            assert_eq!(o.set(flag, value), Ok(true), "{flag}");
        }
        assert_eq!(o.set("--socket", "x"), Ok(false));
        assert!(o.set("--rings", "many").unwrap_err().contains("--rings"));
        let c = o.config(PathBuf::from("/tmp/s")).unwrap();
        assert_eq!(c.session_limit, 8);
        assert_eq!(c.region.ring_count, 16);
        assert_eq!(c.region.ring_capacity, 64 * 1024);
        assert_eq!(c.buffer_budget.total, 64 << 20);
        assert_eq!(c.buffer_budget.per_user, 16 << 20);
        o.session_limit = 0;
        assert!(
            o.config(PathBuf::new())
                .unwrap_err()
                .contains("--session-limit")
        );
        o.session_limit = 1;
        o.ring_kib = 3;
        assert!(
            o.config(PathBuf::new())
                .unwrap_err()
                .contains("--ring-kib 3")
        );
    }

    #[test]
    fn help_names_every_option_that_set_takes() {
        let mut o = DaemonOptions::default();
        for (flag, _, _) in OPTION_HELP {
            let value = if flag == "--control-group" {
                "root"
            } else {
                "1"
            };
            assert_eq!(o.set(flag, value), Ok(true), "{flag}");
        }
    }
}
