//! Berth's Kubernetes API server.
//!
//! Layout:
//! - [`server`]: the HTTPS listener, authentication and authorization of every request, and
//!   the routing of non-resource paths (health, version, discovery, OpenAPI).
//! - [`request`]: parsing resource paths into verb, group, version, resource, namespace, name.
//! - [`rest`]: the resource endpoints; [`subresources`]: scale, binding, eviction; [`proxy`]:
//!   `pods/log`, `pods/exec` and `pods/portforward`, proxied to the node agents.
//! - [`objects`]: the object write pipeline (metadata, defaulting, validation, admission,
//!   managed fields, compare-and-swap); [`admission`]: LimitRange and ResourceQuota admission.
//! - [`cache`]: the watch cache that serves lists and watches.
//! - [`alloc`]: ClusterIP and NodePort allocation.
//! - [`bootstrap`]: objects every cluster has (namespaces, the `kubernetes` Service) and the
//!   compaction loop.
//! - [`pki`], [`authn`], [`authz`]: certificates, who is asking, and whether they may.
//! - [`join`]: join tokens and node credentials; [`serviceaccount`]: service-account tokens.
//! - [`body`], [`query`], [`convert`], [`clock`]: content types, query parameters, version
//!   conversion, time.

pub mod admission;
pub mod alloc;
pub mod authn;
pub mod authz;
pub mod body;
pub mod bootstrap;
pub mod cache;
pub use berth_api::clock;
pub mod controllers;
pub mod convert;
pub mod fuzzing;
pub mod join;
pub mod loopback;
pub mod objects;
pub mod pki;
pub mod proxy;
pub mod query;
pub mod request;
pub mod rest;
pub mod server;
pub mod serviceaccount;
pub mod subresources;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use tokio::sync::mpsc;

pub use server::{Config, RunningServer, start};

/// The API server's shared state.
pub struct Api {
    /// The state store.
    pub store: Arc<dyn berth_store::Store>,
    /// The watch cache.
    pub cache: Arc<cache::WatchCache>,
    /// The object pipeline.
    pub objects: objects::Objects,
    /// Who is asking.
    pub authn: Box<dyn authn::Authenticator>,
    /// Whether they may.
    pub authz: Box<dyn authz::Authorizer>,
    /// The cluster's certificates (node credentials are signed with its CA).
    pub pki: Arc<pki::ClusterPki>,
    /// Signs service-account tokens.
    pub tokens: Arc<serviceaccount::TokenSigner>,
}

/// A response before it is turned into HTTP.
pub struct Reply {
    /// The status code.
    pub status: StatusCode,
    /// The content type.
    pub content_type: &'static str,
    /// The body.
    pub body: Body,
    /// `Warning` headers.
    pub warnings: Vec<String>,
}

impl Reply {
    /// A JSON reply from bytes.
    pub fn json(status: StatusCode, bytes: Bytes) -> Self {
        Reply {
            status,
            content_type: "application/json",
            body: Body::from(bytes),
            warnings: Vec::new(),
        }
    }

    /// A JSON reply from a value.
    pub fn json_value(status: StatusCode, value: &serde_json::Value) -> Self {
        Self::json(
            status,
            Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
        )
    }

    /// A streaming JSON reply (watches), one event per chunk.
    pub fn stream(rx: mpsc::Receiver<Result<Bytes, Infallible>>) -> Self {
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        Reply {
            status: StatusCode::OK,
            content_type: "application/json",
            body: Body::from_stream(stream),
            warnings: Vec::new(),
        }
    }

    /// A plain-text reply.
    pub fn text(status: StatusCode, text: &'static str) -> Self {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Body::from(text),
            warnings: Vec::new(),
        }
    }

    /// The error as a `Status` reply.
    pub fn error(e: &berth_api::ApiError) -> Self {
        let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::json_value(status, &e.to_status())
    }

    /// The HTTP response.
    pub fn into_response(self) -> Response<Body> {
        let mut r = Response::new(self.body);
        *r.status_mut() = self.status;
        let h = r.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        h.insert(
            "cache-control",
            HeaderValue::from_static("no-cache, private"),
        );
        for w in self.warnings {
            let value = format!("299 - {}", serde_json::Value::String(w));
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.append("warning", v);
            }
        }
        r
    }
}
