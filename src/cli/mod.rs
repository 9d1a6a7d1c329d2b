//! The command-line shell around the core: subcommands that touch files and the OS.
//! (The protocol core below `node` never does; this is where randomness and files enter.)

pub mod commands;
pub mod identity;
pub mod panic;
pub mod probe;
pub mod query;
pub mod table;
