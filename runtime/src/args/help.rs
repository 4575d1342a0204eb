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

/// The left column of a flag's help line, runc's way: `--long VALUE, -s`.
fn flag_left(f: &Flag) -> String {
    let value = match f.takes {
        Takes::Nothing => String::new(),
        Takes::Value => format!(" {}", f.meta),
        Takes::Optional => format!("[={}]", f.meta),
    };
    let short = match f.short {
        Some(c) => format!(", -{}", c as char),
        None => String::new(),
    };
    format!("--{}{value}{short}", f.long)
}

/// Appends `rows` as an aligned two-column list, indented as runc's (urfave/cli).
fn table(out: &mut String, rows: &[(String, String)]) {
    let w = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (l, r) in rows {
        out.push_str(format!("   {l:<w$}  {r}").trim_end());
        out.push('\n');
    }
}

fn flag_rows<'a>(flags: impl Iterator<Item = &'a Flag>) -> Vec<(String, String)> {
    flags
        .filter(|f| !f.hidden)
        .map(|f| {
            let right = match f.default {
                Some(d) if d.starts_with('"') => format!("{} (default: {d})", f.help),
                Some(d) => format!("{} (default: \"{d}\")", f.help),
                None => f.help.to_owned(),
            };
            (flag_left(f), right)
        })
        .collect()
}

/// The `--version` text: runc's lines with boxrun's own name and version.
pub fn version() -> String {
    let v = env!("CARGO_PKG_VERSION");
    let commit = option_env!("BOXRUN_COMMIT").unwrap_or(v);
    format!("boxrun version {v}\ncommit: {commit}\nspec: 1.2.0\n")
}

/// `boxrun --help`, in runc's layout (NAME, USAGE, VERSION, COMMANDS, GLOBAL OPTIONS).
pub(super) fn top() -> String {
    let mut s = String::from(
        "NAME:\n   boxrun - a fast, runc-compatible OCI runtime\n\n\
         USAGE:\n   boxrun [global options] command [command options] [arguments...]\n\n\
         VERSION:\n   ",
    );
    s.push_str(version().trim_start_matches("boxrun version "));
    s.push_str("\nCOMMANDS:\n");
    let mut rows: Vec<(String, String)> = COMMANDS
        .iter()
        .map(|c| {
            let name = match c.alias {
                Some(a) => format!("{}, {a}", c.name),
                None => c.name.to_owned(),
            };
            (name, c.about.to_owned())
        })
        .collect();
    rows.push((
        "help".into(),
        "Shows a list of commands or help for one command".into(),
    ));
    table(&mut s, &rows);
    s.push_str("\nGLOBAL OPTIONS (all but --version also work after the command):\n");
    let mut rows = flag_rows(GLOBAL.iter());
    rows.push(("--help, -h".into(), "show help".into()));
    rows.extend(flag_rows([&VERSION].into_iter()));
    table(&mut s, &rows);
    s
}

/// `boxrun COMMAND --help`, in runc's layout (NAME, USAGE, OPTIONS).
pub(super) fn command(c: &Command) -> String {
    let args = c.usage.trim_start_matches("[OPTIONS]").trim_start();
    let mut s = format!(
        "NAME:\n   boxrun {} - {}\n\nUSAGE:\n   {}\n",
        c.name,
        c.about,
        format!("boxrun {} [command options] {args}", c.name).trim_end()
    );
    if let Some(a) = c.alias {
        s.push_str(&format!("\nALIAS:\n   {a}\n"));
    }
    s.push_str("\nOPTIONS:\n");
    let mut rows = flag_rows(c.flags.iter());
    rows.push(("--help, -h".into(), "show help".into()));
    table(&mut s, &rows);
    s.push_str(
        "\nGlobal options (--root, --log, --log-format, --debug, --systemd-cgroup, --rootless,\n\
         --criu) go before or after the command: see boxrun --help.\n",
    );
    s
}
