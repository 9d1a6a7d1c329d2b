//! routing layer (being built).
