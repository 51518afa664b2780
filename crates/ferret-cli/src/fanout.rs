//! One command over several targets: `ferret --target a --target b stop
//! web`. Each target gets this program again with that target alone, all
//! at once; their output comes back here as it arrives, each line saying
//! which target it is from. One target that cannot be reached is its own
//! line and a non-zero exit; the others still complete.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use ferret_client::remote::Target;

/// How the verb's output is shaped, which decides how it is merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Lines of text: each prefixed with its target.
    Text,
    /// One JSON document per target: gathered into one array of
    /// `{"target", "result"}` (or `"error"`) objects, in the targets' order.
    Document,
    /// One JSON object per line, as it comes (watch, tail): each gains a
    /// `"target"` member.
    JsonLines,
}

/// The arguments after the program name, without any `--target`.
pub fn args_without_targets() -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--" {
            out.push(a);
            out.extend(args);
            break;
        }
        if a == "--target" {
            args.next();
            continue;
        }
        if a.to_str().is_some_and(|s| s.starts_with("--target=")) {
            continue;
        }
        out.push(a);
    }
    out
}

/// Runs `args` once per target, concurrently, and merges what they print.
pub fn run(targets: &[Target], args: &[OsString], shape: Shape) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find this program to run per target")?;
    let width = targets
        .iter()
        .map(|t| t.to_string().len())
        .max()
        .unwrap_or(0);
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let mut runs = Vec::new();
    for t in targets {
        let label = t.to_string();
        let mut child = Command::new(&exe)
            .arg("--target")
            .arg(&label)
            .args(args)
            // Each child is told its one target; none may fan out again.
            .env_remove(ferret_client::remote::TARGET_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run ferret for target {label}"))?;
        let out = child.stdout.take().context("no pipe")?;
        let err = child.stderr.take().context("no pipe")?;
        let errors = {
            let label = label.clone();
            std::thread::spawn(move || {
                let mut lines = Vec::new();
                for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
                    let line = naming(&label, &line);
                    eprintln!("{line}");
                    lines.push(line);
                }
                lines
            })
        };
        let output = {
            let (label, stdout) = (label.clone(), Arc::clone(&stdout));
            std::thread::spawn(move || relay(out, &label, width, shape, &stdout))
        };
        runs.push((label, child, errors, output));
    }
    let mut failed = false;
    let mut documents = Vec::new();
    for (label, mut child, errors, output) in runs {
        let status = child.wait().context("waiting for a target's command")?;
        let document = output.join().unwrap_or_default();
        let errors = errors.join().unwrap_or_default();
        failed |= !status.success();
        if shape == Shape::Document {
            documents.push(match (status.success(), document) {
                (true, Some(result)) => serde_json::json!({ "target": label, "result": result }),
                _ => serde_json::json!({
                    "target": label,
                    "error": errors.last().cloned().unwrap_or_else(|| format!("ferret: target {label}: failed ({status})")),
                }),
            });
        }
    }
    if shape == Shape::Document {
        let text = serde_json::to_string_pretty(&documents)?;
        let mut out = stdout.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(out, "{text}")?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A line of a target's standard error, made to name it once.
fn naming(label: &str, line: &str) -> String {
    let rest = line.strip_prefix("ferret: ").unwrap_or(line);
    if rest.starts_with(&format!("target {label}")) {
        format!("ferret: {rest}")
    } else {
        format!("ferret: target {label}: {rest}")
    }
}

/// Copies one target's standard output; for a document, gathers and parses
/// it instead and returns it.
fn relay(
    out: impl Read,
    label: &str,
    width: usize,
    shape: Shape,
    stdout: &Mutex<std::io::Stdout>,
) -> Option<serde_json::Value> {
    let mut reader = BufReader::new(out);
    if shape == Shape::Document {
        let mut text = String::new();
        reader.read_to_string(&mut text).ok()?;
        return serde_json::from_str(&text).ok();
    }
    for line in reader.lines().map_while(|l| l.ok()) {
        let merged = match shape {
            Shape::JsonLines => match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(serde_json::Value::Object(mut m)) => {
                    m.insert("target".into(), label.into());
                    serde_json::Value::Object(m).to_string()
                }
                _ => line,
            },
            _ => format!("{label:<width$} | {line}"),
        };
        let mut w = stdout.lock().unwrap_or_else(|p| p.into_inner());
        // A reader that closed our output wants no more; the children end
        // when their own output closes.
        if writeln!(w, "{merged}").and_then(|()| w.flush()).is_err() {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_line_names_its_target_once() {
        let t = "ssh://web-1";
        assert_eq!(
            naming(t, "ferret: target ssh://web-1: the connection closed"),
            "ferret: target ssh://web-1: the connection closed"
        );
        assert_eq!(
            naming(t, "ferret: session 'x' not found"),
            "ferret: target ssh://web-1: session 'x' not found"
        );
        assert_eq!(naming(t, "plain"), "ferret: target ssh://web-1: plain");
    }
}
