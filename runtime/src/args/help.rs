//! The `--help` text, built from the flag tables.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use super::table::{find_command, Command, Flag, Takes, COMMANDS, GLOBAL, VERSION};
use super::{show, ArgError};

/// `boxrun help [COMMAND]`: the help text to print.
pub(super) fn help_command(rest: &[OsString]) -> Result<String, ArgError> {
    match rest {
        [] => Ok(top()),
        [name] => find_command(name.as_bytes()).map(command).ok_or_else(|| {
            ArgError(format!(
                "help: unknown command {} (see boxrun --help for the list)",
                show(name)
            ))
        }),
        [_, extra, ..] => Err(ArgError(format!(
            "help: unexpected argument {} (usage: boxrun help [COMMAND])",
            show(extra)
        ))),
    }
}

/// The left column of a flag's help line.
fn flag_left(f: &Flag) -> String {
    let short = match f.short {
        Some(c) => format!("-{}, ", c as char),
        None => "    ".into(),
    };
    let value = match f.takes {
        Takes::Nothing => String::new(),
        Takes::Value => format!(" {}", f.meta),
        Takes::Optional => format!("[={}]", f.meta),
    };
    format!("{short}--{}{value}", f.long)
}

/// Appends `rows` as an aligned two-column list.
fn table(out: &mut String, rows: &[(String, String)]) {
    let w = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (l, r) in rows {
        out.push_str(format!("  {l:<w$}  {r}").trim_end());
        out.push('\n');
    }
}

fn flag_rows<'a>(flags: impl Iterator<Item = &'a Flag>) -> Vec<(String, String)> {
    flags
        .filter(|f| !f.hidden)
        .map(|f| {
            let right = match f.default {
                Some(d) => format!("{} [default: {d}]", f.help),
                None => f.help.to_owned(),
            };
            (flag_left(f), right)
        })
        .collect()
}

/// `boxrun --help`.
pub(super) fn top() -> String {
    let mut s = String::from(
        "boxrun: a fast, runc-compatible OCI runtime\n\n\
         Usage: boxrun [OPTIONS] COMMAND [ARGS]...\n\nCommands:\n",
    );
    let mut rows: Vec<(String, String)> = COMMANDS
        .iter()
        .map(|c| {
            let about = match c.alias {
                Some(a) => format!("{} (alias: {a})", c.about),
                None => c.about.to_owned(),
            };
            (c.name.to_owned(), about)
        })
        .collect();
    rows.push((
        "help".into(),
        "Print this message or the help of the given command".into(),
    ));
    table(&mut s, &rows);
    s.push_str("\nOptions (all but --version also work after the command):\n");
    let mut rows = flag_rows(GLOBAL.iter().chain([&VERSION]));
    rows.push(("-h, --help".into(), "Print help".into()));
    table(&mut s, &rows);
    s.push_str("\nRun 'boxrun COMMAND --help' for the flags of a command.\n");
    s
}

/// `boxrun COMMAND --help`.
pub(super) fn command(c: &Command) -> String {
    let mut s = format!("{}\n\nUsage: boxrun {} {}\n", c.about, c.name, c.usage);
    if let Some(a) = c.alias {
        s.push_str(&format!("Alias: {a}\n"));
    }
    s.push_str("\nOptions:\n");
    let mut rows = flag_rows(c.flags.iter());
    rows.push(("-h, --help".into(), "Print help".into()));
    table(&mut s, &rows);
    s.push_str(
        "\nGlobal options (--root, --log, --log-format, --debug, --systemd-cgroup, --rootless,\n\
         --criu) go before or after the command: see boxrun --help.\n",
    );
    s
}
