//! The Python servers (`servers/python/`) under the same suite, as commands.
//!
//! A Python server is `python3 SCRIPT [options] --addr 127.0.0.1:0`: the
//! scripts take the Rust models' `--addr` as well as `--host`/`--port`. A
//! machine may lack `python3`, or a server's third-party package (greenlet,
//! gevent, uvloop), in which case the server says so in one line and exits
//! with `echo_core::process::EXIT_UNSUPPORTED` before its ready line. Such a
//! check is skipped with that line, not failed, unless `CI` is set: `.ci/run`
//! installs `servers/python/requirements.txt` into `target/python`, where
//! the scripts find it themselves.

use crate::Model;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The interpreter every Python server runs under, found on `PATH`.
pub const INTERPRETER: &str = "python3";

/// The exit status of a server this machine cannot run
/// (`echo_core::process::EXIT_UNSUPPORTED`, also `EXIT_UNSUPPORTED` in
/// `servers/python/contract.py`).
const EXIT_UNSUPPORTED: i32 = 3;

/// Whether this machine can run `model` (a Python server). When it cannot,
/// prints `skipped: REASON` and returns false, or panics with the reason when
/// the `CI` environment variable is set. Asked once per script.
pub fn runs(model: &Model) -> bool {
    script_runs(model.args.first().copied().unwrap_or_default())
}

/// Whether this machine can run the Python server `script` (a path), as
/// [`runs`] says it.
pub fn script_runs(script: &str) -> bool {
    static ANSWERS: OnceLock<Mutex<HashMap<String, Option<String>>>> = OnceLock::new();
    let answers = ANSWERS.get_or_init(Default::default);
    let missing = answers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(script.to_owned())
        .or_insert_with(|| missing(INTERPRETER, script))
        .clone();
    let Some(reason) = missing else {
        return true;
    };
    assert!(std::env::var_os("CI").is_none(), "{script}: {reason}");
    eprintln!("skipped: {reason}");
    false
}

/// Why `python3 SCRIPT --help` cannot run here, if it cannot.
fn missing(interpreter: &str, script: &str) -> Option<String> {
    let output = match Command::new(interpreter)
        .args([script, "--help"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            return Some(format!(
                "{interpreter} cannot be started ({error}); install Python 3"
            ));
        }
    };
    if output.status.code() != Some(EXIT_UNSUPPORTED) {
        return None;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Some(
        stderr
            .lines()
            .next()
            .unwrap_or("unsupported on this machine")
            .to_owned(),
    )
}
