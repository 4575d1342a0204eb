//! The scanner: walks the arguments once, splits each flag token (`--flag=value`,
//! `-fvalue`, clusters) and looks it up in the tables, and sorts what it finds into
//! global flags, the command's flags and positionals. It knows no flag by name and
//! types no value: that is [`super::read`]'s job.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use super::table::{find_command, Command, Flag, Tail, Takes, COMMANDS, GLOBAL, VERSION};
use super::{show, ArgError};

/// What the scan found.
#[derive(Debug)]
pub(super) enum Scanned {
    /// Flags and positionals to type.
    Run(Scan),
    /// `--help` or `-h`: the top help (`None`) or a command's.
    Help(Option<&'static Command>),
    /// `boxrun help ARGS...`: the arguments after `help`.
    HelpCommand(Vec<OsString>),
}

/// The command line sorted, still untyped.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Global flags, before or after the command.
    pub(super) global: Given,
    /// The command's own flags.
    pub(super) local: Given,
    /// The command; `None` when none was given.
    pub(super) cmd: Option<&'static Command>,
    /// The positionals (and the tail) of the command, in order.
    pub(super) pos: Vec<OsString>,
}

/// Go's `strconv.ParseBool`, which urfave/cli (and so runc's callers) use.
fn parse_bool(s: &[u8]) -> Option<bool> {
    match s {
        b"1" | b"t" | b"T" | b"true" | b"TRUE" | b"True" => Some(true),
        b"0" | b"f" | b"F" | b"false" | b"FALSE" | b"False" => Some(false),
        _ => None,
    }
}

/// Whether `s` may be taken as the value of the flag before it: anything but a flag.
/// `-` (stdin) and negative numbers (`-1`) are values.
fn is_value(s: &OsStr) -> bool {
    let b = s.as_bytes();
    b.len() < 2 || b[0] != b'-' || b[1].is_ascii_digit()
}

/// Whether `s` is a flag (or a cluster of short flags).
fn is_flag(s: &OsStr) -> bool {
    let b = s.as_bytes();
    b.len() > 1 && b[0] == b'-'
}

/// A flag's value as given.
#[derive(Debug, Clone)]
pub(super) enum Val {
    Bool(bool),
    Str(OsString),
}

/// The flags given in one scope (global or the command's), in order.
#[derive(Debug, Default)]
pub(super) struct Given {
    /// `(long name, value)` in the order given.
    pub(super) list: Vec<(&'static str, Val)>,
}

/// What one flag token turned out to be.
enum FlagOutcome {
    Done,
    Help,
    Unknown,
}

/// Which scope a flag was found in.
enum Scope {
    Global,
    Local,
}

/// Walks the arguments.
struct Scanner {
    args: Vec<OsString>,
    i: usize,
    /// The command being parsed; `None` before it.
    cmd: Option<&'static Command>,
}

impl Scanner {
    fn ctx(&self) -> String {
        self.cmd
            .map(|c| format!("{}: ", c.name))
            .unwrap_or_default()
    }
    fn see(&self) -> String {
        match self.cmd {
            Some(c) => format!("boxrun {} --help", c.name),
            None => "boxrun --help".into(),
        }
    }
    fn lookup(&self, mut hit: impl FnMut(&Flag) -> bool) -> Option<(Scope, &'static Flag)> {
        if let Some(c) = self.cmd {
            if let Some(f) = c.flags.iter().find(|f| hit(f)) {
                return Some((Scope::Local, f));
            }
        } else if hit(&VERSION) {
            return Some((Scope::Global, &VERSION));
        }
        GLOBAL.iter().find(|f| hit(f)).map(|f| (Scope::Global, f))
    }
    /// Moves the next argument out (each is read once, so no copy), if `want` takes it.
    fn take_if(&mut self, want: impl FnOnce(&OsStr) -> bool) -> Option<OsString> {
        let a = self.args.get_mut(self.i).filter(|a| want(a))?;
        self.i += 1;
        Some(std::mem::take(a))
    }
    /// Moves the next argument out.
    fn next_arg(&mut self) -> Option<OsString> {
        self.take_if(|_| true)
    }
    /// The value of `f` from the next argument.
    fn next_value(&mut self, f: &Flag) -> Result<OsString, ArgError> {
        match self.take_if(is_value) {
            Some(s) => Ok(s),
            None => Err(ArgError(format!(
                "{}missing value for --{} (use --{} <{}>; see {})",
                self.ctx(),
                f.long,
                f.long,
                f.meta.to_lowercase(),
                self.see()
            ))),
        }
    }
    fn bool_value(&self, f: &Flag, s: &[u8]) -> Result<bool, ArgError> {
        parse_bool(s).ok_or_else(|| {
            ArgError(format!(
                "{}bad value {} for --{}: use --{}, --{}=true or --{}=false",
                self.ctx(),
                show(OsStr::from_bytes(s)),
                f.long,
                f.long,
                f.long,
                f.long
            ))
        })
    }
    fn unknown(&self, tok: &OsStr) -> ArgError {
        let name = tok
            .as_bytes()
            .split(|&c| c == b'=')
            .next()
            .unwrap_or_default();
        let name = OsStr::from_bytes(name);
        let hint = match self.cmd {
            None if COMMANDS.iter().any(|c| {
                c.flags
                    .iter()
                    .any(|f| name.as_bytes() == format!("--{}", f.long).as_bytes())
            }) =>
            {
                "; command flags go after the command"
            }
            _ => "",
        };
        ArgError(format!(
            "{}unknown flag {} (see {}{hint})",
            self.ctx(),
            show(name),
            self.see()
        ))
    }
    /// Parses the flag token `tok` (already consumed), and its value if it takes one.
    fn flag(
        &mut self,
        tok: &OsStr,
        global: &mut Given,
        local: &mut Given,
    ) -> Result<FlagOutcome, ArgError> {
        let b = tok.as_bytes();
        let mut found = Vec::new();
        if let Some(body) = b.strip_prefix(b"--") {
            let (name, inline) = match body.iter().position(|&c| c == b'=') {
                Some(p) => (&body[..p], Some(&body[p + 1..])),
                None => (body, None),
            };
            if name == b"help" {
                return Ok(FlagOutcome::Help);
            }
            let Some((scope, f)) = self.lookup(|f| f.long.as_bytes() == name) else {
                return Ok(FlagOutcome::Unknown);
            };
            let val = match (f.takes, inline) {
                (Takes::Nothing, None) => Val::Bool(true),
                (Takes::Nothing, Some(s)) => Val::Bool(self.bool_value(f, s)?),
                (_, Some(s)) => Val::Str(OsStr::from_bytes(s).to_owned()),
                (Takes::Value, None) => Val::Str(self.next_value(f)?),
                (Takes::Optional, None) => {
                    let given =
                        self.take_if(|s| matches!(s.as_bytes(), b"true" | b"false" | b"auto"));
                    Val::Str(given.unwrap_or_else(|| "auto".into()))
                }
            };
            found.push((scope, f.long, val));
        } else {
            let body = &b[1..];
            let mut k = 0;
            while k < body.len() {
                let c = body[k];
                k += 1;
                if c == b'h' {
                    return Ok(FlagOutcome::Help);
                }
                let Some((scope, f)) = self.lookup(|f| f.short == Some(c)) else {
                    if k == 1 {
                        return Ok(FlagOutcome::Unknown);
                    }
                    let one = [b'-', c];
                    return Err(ArgError(format!(
                        "{}unknown flag {} in {} (see {})",
                        self.ctx(),
                        show(OsStr::from_bytes(&one)),
                        show(tok),
                        self.see()
                    )));
                };
                let val = if f.takes == Takes::Nothing {
                    if body.get(k) == Some(&b'=') {
                        let v = self.bool_value(f, &body[k + 1..])?;
                        k = body.len();
                        Val::Bool(v)
                    } else {
                        Val::Bool(true)
                    }
                } else {
                    let rest = &body[k..];
                    let rest = rest.strip_prefix(b"=").unwrap_or(rest);
                    k = body.len();
                    if rest.is_empty() {
                        Val::Str(self.next_value(f)?)
                    } else {
                        Val::Str(OsStr::from_bytes(rest).to_owned())
                    }
                };
                found.push((scope, f.long, val));
            }
        }
        for (scope, long, val) in found {
            match scope {
                Scope::Global => global.list.push((long, val)),
                Scope::Local => local.list.push((long, val)),
            }
        }
        Ok(FlagOutcome::Done)
    }
}

/// Sorts the arguments after the program name into global flags, the command, its
/// flags and its positionals.
pub(super) fn scan(args: Vec<OsString>) -> Result<Scanned, ArgError> {
    let mut sc = Scanner {
        args,
        i: 0,
        cmd: None,
    };
    let mut global = Given::default();
    let mut local = Given::default();

    // Global flags, then the command name.
    let mut name = None;
    while let Some(a) = sc.next_arg() {
        if a == "--" {
            name = sc.next_arg();
            break;
        }
        if is_flag(&a) {
            match sc.flag(&a, &mut global, &mut local)? {
                FlagOutcome::Done => continue,
                FlagOutcome::Help => return Ok(Scanned::Help(None)),
                FlagOutcome::Unknown => return Err(sc.unknown(&a)),
            }
        }
        name = Some(a);
        break;
    }
    let cmd = match &name {
        None => None,
        Some(n) if n == "help" => return Ok(Scanned::HelpCommand(sc.args.split_off(sc.i))),
        Some(n) => Some(find_command(n.as_bytes()).ok_or_else(|| {
            ArgError(format!(
                "unknown command {} (see boxrun --help for the list)",
                show(n)
            ))
        })?),
    };

    // The command's flags (and global ones) and positionals.
    let mut pos = Vec::new();
    if let Some(c) = cmd {
        sc.cmd = Some(c);
        let mut dashdash = false;
        let mut tail = false;
        let mut skip_dashdash = false;
        while let Some(a) = sc.next_arg() {
            if tail {
                // `exec ID -- CMD`: the `--` right after the id only separates.
                if std::mem::take(&mut skip_dashdash) && a == "--" {
                    continue;
                }
                pos.push(a);
                continue;
            }
            if !dashdash && a == "--" {
                dashdash = true;
                continue;
            }
            if !dashdash && is_flag(&a) {
                match sc.flag(&a, &mut global, &mut local)? {
                    FlagOutcome::Done => continue,
                    FlagOutcome::Help => return Ok(Scanned::Help(Some(c))),
                    FlagOutcome::Unknown => return Err(sc.unknown(&a)),
                }
            }
            pos.push(a);
            match c.tail {
                Tail::None => {}
                Tail::AfterId => {
                    tail = true;
                    skip_dashdash = !dashdash;
                }
            }
        }
    }

    Ok(Scanned::Run(Scan {
        global,
        local,
        cmd,
        pos,
    }))
}
