//! In-process clients of the API. The scheduler and controllers that run in the server's own
//! process send their requests straight to the request handler, without TCP, TLS or HTTP
//! framing, as kube-apiserver's own loopback client does, each request carrying the client
//! certificate the client was given.
//!
//! Owns the tower service that carries such requests. It must not bypass authentication or
//! authorization: a request is authenticated by that certificate and authorized exactly like
//! one that came over the network with it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use rustls::pki_types::CertificateDer;

use crate::Api;

/// Errors building a loopback client.
#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    /// The PEM given held no certificate.
    #[error("no certificate in the client certificate PEM")]
    NoCertificate,
    /// The PEM given could not be read.
    #[error("reading the client certificate PEM: {0}")]
    Pem(#[from] std::io::Error),
    /// The certificate is not one the server would accept in a TLS handshake.
    #[error("the client certificate is not valid for this cluster: {0}")]
    Invalid(#[from] crate::pki::PkiError),
}

/// A [`tower::Service`] that serves requests in process, authenticated as the holder of a
/// client certificate. Cheap to clone.
#[derive(Clone)]
pub struct Loopback {
    api: Arc<Api>,
    certs: Arc<Vec<CertificateDer<'static>>>,
}

impl Loopback {
    /// A loopback to `api` for the holder of the certificate chain in `client_cert_pem`. The
    /// chain is checked once, here, as a TLS handshake would check it (the private key is not
    /// needed, since no handshake takes place).
    pub fn new(api: Arc<Api>, client_cert_pem: &[u8]) -> Result<Self, LoopbackError> {
        let certs =
            rustls_pemfile::certs(&mut &client_cert_pem[..]).collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            return Err(LoopbackError::NoCertificate);
        }
        api.pki.verify_client_chain(&certs)?;
        Ok(Loopback {
            api,
            certs: Arc::new(certs),
        })
    }
}

impl<B> tower::Service<Request<B>> for Loopback
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let api = Arc::clone(&self.api);
        let certs = Arc::clone(&self.certs);
        let req = crate::server::boxed_request(req);
        Box::pin(async move { Ok(crate::server::handle(api, &certs, req).await) })
    }
}
