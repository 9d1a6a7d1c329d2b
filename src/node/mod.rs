//! node layer (being built).
