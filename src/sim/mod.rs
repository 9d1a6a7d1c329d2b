//! sim layer (being built).
