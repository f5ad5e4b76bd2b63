//! `GET /containerLogs/{namespace}/{pod}/{container}`: a container's output as `text/plain`,
//! streamed chunk by chunk (`follow` keeps it open until the container exits or the client
//! goes away).
//!
//! Owns the kubelet's log options (`follow`, `previous`, `tailLines`, `sinceSeconds`,
//! `sinceTime`, `timestamps`, `limitBytes`) and the timestamp prefix format. Must not buffer a
//! whole log: every chunk is passed on as it comes.

use bytes::BytesMut;
use futures::StreamExt;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use jiff::{SignedDuration, Timestamp};

use super::{Body, Params, PodRef, StreamError, container_instances};
use crate::runtime::{ContainerRuntime, LogOptions};

/// `2006-01-02T15:04:05.000000000Z`: RFC 3339 in UTC with nine fractional digits, as the
/// kubelet prefixes lines with `timestamps=true`.
pub(super) fn rfc3339_nano(ts: Timestamp) -> String {
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond()
    )
}

/// The validated options of a log request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LogRequest {
    pub(super) runtime: LogOptions,
    pub(super) previous: bool,
    pub(super) limit_bytes: Option<u64>,
}

pub(super) fn parse_options(params: &Params, now: Timestamp) -> Result<LogRequest, StreamError> {
    let follow = params.flag("follow")?;
    let previous = params.flag("previous")?;
    let timestamps = params.flag("timestamps")?;
    let tail = match params.integer("tailLines")? {
        Some(n) if n < 0 => {
            return Err(StreamError::bad_request(
                "tailLines must be greater than or equal to 0",
            ));
        }
        Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        None => None,
    };
    let since_seconds = params.integer("sinceSeconds")?;
    let since_time = params.get("sinceTime").filter(|s| !s.is_empty());
    let since = match (since_seconds, since_time) {
        (Some(_), Some(_)) => {
            return Err(StreamError::bad_request(
                "at most one of sinceTime or sinceSeconds may be specified",
            ));
        }
        (Some(s), None) => {
            if s < 1 {
                return Err(StreamError::bad_request(
                    "sinceSeconds must be greater than 0",
                ));
            }
            Some(
                now.checked_sub(SignedDuration::from_secs(s))
                    .unwrap_or(Timestamp::MIN),
            )
        }
        (None, Some(t)) => Some(t.parse::<Timestamp>().map_err(|e| {
            StreamError::bad_request(format!("sinceTime {t:?} is not an RFC 3339 time: {e}"))
        })?),
        (None, None) => None,
    };
    let limit_bytes = match params.integer("limitBytes")? {
        Some(n) if n < 1 => {
            return Err(StreamError::bad_request(
                "limitBytes must be greater than 0",
            ));
        }
        Some(n) => Some(n as u64),
        None => None,
    };
    Ok(LogRequest {
        runtime: LogOptions {
            follow,
            tail,
            since,
            timestamps,
        },
        previous,
        limit_bytes,
    })
}

pub(super) async fn logs(
    runtime: &dyn ContainerRuntime,
    namespace: &str,
    pod: &str,
    container: &str,
    params: &Params,
) -> Result<Response<Body>, StreamError> {
    let request = parse_options(params, Timestamp::now())?;
    let target = PodRef {
        namespace: namespace.to_owned(),
        name: pod.to_owned(),
        uid: None,
    };
    let instances = container_instances(runtime, &target, container).await?;
    let chosen = if request.previous {
        instances.get(1).ok_or_else(|| {
            StreamError::bad_request(format!(
                "previous terminated container {container:?} in pod {pod:?} not found"
            ))
        })?
    } else {
        instances.first().ok_or_else(|| {
            StreamError::bad_request(format!(
                "container {container:?} in pod {pod:?} is not available"
            ))
        })?
    };
    let stream = runtime.logs(&chosen.id, &request.runtime).await?;
    let id = chosen.id.clone();
    let body = futures::stream::unfold((stream, request.limit_bytes), move |(mut stream, left)| {
        let id = id.clone();
        async move {
            if left == Some(0) {
                return None;
            }
            match stream.next().await {
                None => None,
                Some(Err(e)) => {
                    tracing::debug!(container = %id, error = %e, "log stream ended with an error");
                    None
                }
                Some(Ok(chunk)) => {
                    let mut data = match chunk.timestamp {
                        Some(ts) => {
                            let prefix = rfc3339_nano(ts);
                            let mut b =
                                BytesMut::with_capacity(prefix.len() + 1 + chunk.data.len());
                            b.extend_from_slice(prefix.as_bytes());
                            b.extend_from_slice(b" ");
                            b.extend_from_slice(&chunk.data);
                            b.freeze()
                        }
                        None => chunk.data,
                    };
                    let left = left.map(|n| {
                        let keep = (data.len() as u64).min(n);
                        data.truncate(keep as usize);
                        n - keep
                    });
                    Some((Ok::<_, std::io::Error>(Frame::data(data)), (stream, left)))
                }
            }
        }
    });
    let mut response = Response::new(StreamBody::new(body).boxed_unsync());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    Ok(response)
}
