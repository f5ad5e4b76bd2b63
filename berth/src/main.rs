//! The `berth` binary: thin subcommands over the library crates.

mod alloc;
mod cmd;

use clap::{Parser, Subcommand};

/// Berth: one binary that turns Linux machines into a Kubernetes-compatible container cluster.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane (API server on the embedded store) and a node agent.
    Server(cmd::server::ServerArgs),
    /// Join this machine to a cluster as a node and run the pods bound to it.
    Agent(cmd::agent::AgentArgs),
    /// Run the scheduler and controllers against a cluster (leader-elected; `berth server` runs
    /// them too).
    Controllers(cmd::controllers::ControllersArgs),
    /// Manage join tokens for new nodes.
    #[command(subcommand)]
    Token(cmd::token::TokenCommand),
    /// Measure a running server (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => cmd::server::run(args).await,
            Command::Agent(args) => cmd::agent::run(args).await,
            Command::Controllers(args) => cmd::controllers::run(args).await,
            Command::Token(t) => cmd::token::run(t).await,
            Command::Bench(b) => cmd::bench::run(b).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
