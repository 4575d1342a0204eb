//! stub
use crate::runner::Case;
/// Cases.
pub const CASES: &[Case] = &[];
