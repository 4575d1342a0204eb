//! OCI runtime conformance suite.
//!
//! Two halves:
//! * [`checker`]: runs *inside* a container (binary `oci-checker`, statically
//!   linked), compares the live environment with the bundle's config.json and
//!   prints TAP.
//! * [`runner`] + [`cases`]: run *outside* (binary `oci-conformance`), drive
//!   any runc-compatible runtime through its CLI, one temporary `--root` and
//!   bundle per case, and report a table.
//!
//! A case is trusted only when a reference runtime (runc, crun) passes it too;
//! see conformance/README.md for the reference results.

pub mod cases;
pub mod checker;
pub mod procfs;
pub mod runner;
pub mod tap;
