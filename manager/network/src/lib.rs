//! Networking for boxctl.
