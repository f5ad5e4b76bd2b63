//! Shared helpers of the end-to-end tests: the harness of `berth-testkit`, plus what needs
//! Berth's own crates.

#![allow(dead_code)]

use std::path::Path;

pub use berth_testkit::*;

/// An HTTPS client with the admin credential of a kubeconfig, and the server URL.
pub fn admin_client(kubeconfig: &Path) -> (reqwest::Client, String) {
    let (tls, url) = berth_apiserver::pki::client_config_from_kubeconfig(kubeconfig)
        .expect("kubeconfig is readable");
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .build()
        .expect("client builds");
    (client, url)
}
