//! Pull/push progress: a bar per blob on a terminal, plain lines otherwise
//! (a line when a blob starts, is already present, and is done).

use std::collections::HashMap;
use std::io::IsTerminal;

use boxctl_core::registry::progress::short_digest;
use boxctl_core::registry::Progress;
use boxctl_core::util::human_bytes;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws [`Progress`] on stderr.
pub struct TransferProgress {
    verb: &'static str,
    bars: Option<(MultiProgress, HashMap<String, ProgressBar>)>,
}

impl TransferProgress {
    /// Bars when stderr is a terminal, plain lines otherwise; `verb` says
    /// what happens to a blob ("pulling", "pushing").
    pub fn new(verb: &'static str) -> TransferProgress {
        let bars = std::io::stderr().is_terminal().then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                HashMap::new(),
            )
        });
        TransferProgress { verb, bars }
    }

    /// Show one step.
    pub fn show(&mut self, p: &Progress) {
        let short = short_digest(p.digest()).to_string();
        let Some((multi, bars)) = self.bars.as_mut() else {
            match p {
                Progress::Start { total, .. } => eprintln!(
                    "{} {short} ({})",
                    self.verb,
                    total.map_or_else(|| "size unknown".to_string(), human_bytes)
                ),
                Progress::Present { .. } => eprintln!("{short}: already present"),
                Progress::Done { size, .. } => eprintln!("{short}: done ({})", human_bytes(*size)),
                Progress::Bytes { .. } => {}
            }
            return;
        };
        match p {
            Progress::Start { digest, total } => {
                let bar = multi.add(ProgressBar::new(total.unwrap_or(0)));
                if let Ok(style) = ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_prefix(format!("{} {short}", self.verb));
                bars.insert(digest.clone(), bar);
            }
            Progress::Bytes { digest, done } => {
                if let Some(b) = bars.get(digest) {
                    b.set_position(*done);
                }
            }
            Progress::Present { .. } => {
                let _ = multi.println(format!("{short}: already present"));
            }
            Progress::Done { digest, size } => {
                if let Some(b) = bars.remove(digest) {
                    b.finish_and_clear();
                }
                let _ = multi.println(format!("{short}: done ({})", human_bytes(*size)));
            }
        }
    }

    /// Clear whatever bars remain.
    pub fn finish(&mut self) {
        if let Some((multi, bars)) = self.bars.as_mut() {
            for (_, b) in bars.drain() {
                b.finish_and_clear();
            }
            let _ = multi.clear();
        }
    }
}
