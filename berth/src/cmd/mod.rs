//! One module per subcommand: parse flags, call the libraries, print.

pub mod agent;
pub mod bench;
pub mod bench_pods;
pub mod bench_scheduler;
pub mod bench_scheduling;
pub mod controllers;
pub mod server;
pub mod token;
