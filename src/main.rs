//! The `veil` command.

fn main() {
    println!("veil {}", env!("CARGO_PKG_VERSION"));
}
