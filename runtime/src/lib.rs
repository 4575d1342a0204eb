//! boxrun library.
