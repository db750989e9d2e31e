//! Signing keys (being built).
