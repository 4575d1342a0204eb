//! boxctl: a daemonless container manager. Every command is a short-lived
//! process; each running instance has a small monitor (`boxctl __monitor`).

mod cli;
mod commands;
mod output;
mod ps_format;
mod transfer_progress;

use std::path::PathBuf;

use clap::Parser as _;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad command line");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("boxctl: error: {first} (see `boxctl --help`)");
            std::process::exit(125);
        }
    };
    let root = cli
        .root
        .clone()
        .or_else(|| std::env::var_os("BOXCTL_ROOT").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/lib/boxctl"));
    if cli.command.only_prints() {
        // SAFETY: signal() with a constant disposition, before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match commands::dispatch(&root, cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("boxctl: error: {e:#}");
            std::process::exit(125);
        }
    }
}
