//! `berth token create`: a join token for new nodes, stored through the API of the running
//! server (which holds the store) as a bootstrap-token Secret, printed alone on the last line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use berth_apiserver::join::{BOOTSTRAP_TOKEN_NAMESPACE, CACERTS_PATH, JoinToken};
use clap::{Args, Subcommand};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::cmd::server::{default_data_dir, parse_duration};

/// `berth token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a join token (printed alone on the last line) for `berth agent --token`.
    Create(CreateArgs),
}

/// Flags of `berth token create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// How long the token stays valid, e.g. 30m, 24h (0: forever).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub ttl: Duration,
    /// The server's data directory; its admin.kubeconfig is used
    /// [default: as for `berth server`]
    #[arg(long, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A kubeconfig with the right to create Secrets in kube-system (instead of
    /// DATA_DIR/admin.kubeconfig).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// A note stored with the token.
    #[arg(long, default_value = "created by berth token create")]
    pub description: String,
}

/// Runs a `token` subcommand.
pub async fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create(args) => create(args).await,
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let kubeconfig = match args.kubeconfig {
        Some(k) => k,
        None => args
            .data_dir
            .unwrap_or_else(default_data_dir)
            .join("admin.kubeconfig"),
    };
    let (tls, server) = berth_apiserver::pki::client_config_from_kubeconfig(&kubeconfig)
        .with_context(|| {
            format!(
                "reading {} (is `berth server` running with this data directory?)",
                kubeconfig.display()
            )
        })?;
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;

    // The CA as the server serves it to joining nodes, over a connection trusting the
    // kubeconfig's CA.
    let resp = http
        .get(format!("{server}{CACERTS_PATH}"))
        .send()
        .await
        .with_context(|| format!("reaching the API server at {server}"))?;
    if !resp.status().is_success() {
        bail!("{server}{CACERTS_PATH} answered {}", resp.status());
    }
    let ca_pem = resp.text().await.context("reading the cluster CA")?;
    let ca_der = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
        .next()
        .context("the server's CA answer holds no certificate")?
        .context("the server's CA answer is not PEM")?;

    let token = JoinToken::generate(ca_der.as_ref());
    let expiration = if args.ttl.is_zero() {
        None
    } else {
        let ttl = jiff::SignedDuration::try_from(args.ttl).context("the TTL is too long")?;
        Some(
            jiff::Timestamp::now()
                .checked_add(ttl)
                .context("the TTL is too long")?,
        )
    };
    let secret = token.secret_object(expiration, &args.description);
    let resp = http
        .post(format!(
            "{server}/api/v1/namespaces/{BOOTSTRAP_TOKEN_NAMESPACE}/secrets"
        ))
        .json(&secret)
        .send()
        .await
        .context("storing the token")?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        bail!("storing the token failed ({status}): {body}");
    }
    match expiration {
        Some(t) => eprintln!(
            "Join token {} valid until {}",
            token.id,
            berth_api::meta::format_time(t)
        ),
        None => eprintln!("Join token {} valid until deleted", token.id),
    }
    println!("{token}");
    Ok(())
}
