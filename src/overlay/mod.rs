//! overlay layer (being built).
