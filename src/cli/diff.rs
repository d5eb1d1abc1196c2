//! `sirqtop diff BEFORE AFTER [--match B=A]... [--json]`: reads the two captures, runs the
//! pure diff (`output::diff`) and prints it.

use std::path::Path;

use anyhow::{anyhow, Context};

use super::DiffArgs;
use crate::output::diff::{diff, parse_match, parse_per, render_table};
use crate::output::json::Capture;

/// A path as shown in messages, kept on one line.
fn shown(p: &Path) -> String {
    p.display().to_string().replace(['\n', '\r'], "?")
}

/// Reads and checks one capture file.
pub fn load(path: &Path) -> anyhow::Result<Capture> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", shown(path)))?;
    Capture::from_json(&text).map_err(|msg| anyhow!("{}: {msg}", shown(path)))
}

pub fn run(args: &DiffArgs) -> anyhow::Result<()> {
    let matches = args
        .matches
        .iter()
        .map(|m| parse_match(m))
        .collect::<Result<Vec<_>, _>>()?;
    let per = args
        .per
        .as_deref()
        .map(parse_per)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let before = load(&args.before)?;
    let after = load(&args.after)?;
    let mut d = diff(&before, &after, &matches, per)?;
    d.before.source = shown(&args.before);
    d.after.source = shown(&args.after);
    let text = if args.json {
        let mut s = serde_json::to_string_pretty(&d).context("cannot write the diff")?;
        s.push('\n');
        s
    } else {
        render_table(&d)
    };
    crate::output::write_stdout(text.as_bytes()).context("cannot write the diff")
}
