//! One module per subcommand: parse flags, call the libraries, print.

pub mod bench;
pub mod server;
