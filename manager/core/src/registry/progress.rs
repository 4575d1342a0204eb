//! What a pull or push reports as it goes, for a front end to draw (bars
//! on a terminal, plain lines otherwise).

/// One step of a transfer; `digest` names the blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A blob transfer starts; `total` is its size when known.
    Start {
        /// The blob.
        digest: String,
        /// Its size in bytes, when known.
        total: Option<u64>,
    },
    /// `done` bytes of the blob have moved so far.
    Bytes {
        /// The blob.
        digest: String,
        /// Bytes so far.
        done: u64,
    },
    /// The blob was already in the content store (or the registry): nothing moved.
    Present {
        /// The blob.
        digest: String,
    },
    /// The blob is complete and verified.
    Done {
        /// The blob.
        digest: String,
        /// Its size in bytes.
        size: u64,
    },
}

impl Progress {
    /// The blob this step is about.
    pub fn digest(&self) -> &str {
        match self {
            Progress::Start { digest, .. }
            | Progress::Bytes { digest, .. }
            | Progress::Present { digest }
            | Progress::Done { digest, .. } => digest,
        }
    }
}

/// `sha256:0123456789ab…` → `0123456789ab`, as progress lines show a blob.
pub fn short_digest(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    &hex[..hex.len().min(12)]
}
