//! The BFF's HTTP client to the workers: hyper's pooled client itself. Every realm call
//! of a fan-out goes through it, so what reqwest adds over hyper per request (a `Url`
//! per call turned into a `Uri`, its header and retry layers) was paid once per realm
//! of every request; here a call is a `Uri` made of the realm's parsed origin and the
//! path, and the pool, keep-alive and TLS are hyper's.

use std::time::Duration;

use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::Uri;
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The pooled client every remote realm backend shares.
pub type WorkerClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client for `http://` and `https://` worker endpoints (the web PKI's roots), with
/// keep-alive connections pooled per worker. With `http2`, it speaks HTTP/2 with prior
/// knowledge (one multiplexed connection per worker; the workers serve it too).
pub fn worker_client(http2: bool) -> WorkerClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(2)));
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    // Idle connections are closed after 90 s, as reqwest's pool did (the pool needs a
    // timer for that).
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(512)
        .http2_only(http2)
        .build(https)
}

/// A worker's origin (scheme and authority) and the path it is served under, parsed
/// once from its registered endpoint.
#[derive(Debug, Clone)]
pub struct Origin {
    scheme: Scheme,
    authority: Authority,
    /// The endpoint's own path without a trailing `/` (usually empty).
    prefix: String,
}

impl Origin {
    /// None when the endpoint is not an absolute `http(s)://host[:port][/path]` URL.
    pub fn parse(endpoint: &str) -> Option<Self> {
        let uri: Uri = endpoint.trim_end_matches('/').parse().ok()?;
        let scheme = uri.scheme()?.clone();
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return None;
        }
        if uri.query().is_some() {
            return None;
        }
        Some(Origin {
            scheme,
            authority: uri.authority()?.clone(),
            prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// The URI of `path_and_query` (which must start with `/`) at this origin. The host
    /// is the origin's whatever the path says (`//other.host/x` is a path here).
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, String> {
        if !path_and_query.starts_with('/') {
            return Err(format!("not a path: {path_and_query:?}"));
        }
        let pq = if self.prefix.is_empty() {
            PathAndQuery::try_from(path_and_query)
        } else {
            PathAndQuery::try_from(format!("{}{path_and_query}", self.prefix))
        }
        .map_err(|e| e.to_string())?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::Origin;

    #[test]
    fn a_call_goes_to_the_origin_under_its_path() {
        let o = Origin::parse("http://kszk-worker.pek.svc:8080/").expect("origin");
        let path = "/api/v1/realms/kszk/groups?q=sz%C3%A1m%20web&limit=20";
        assert_eq!(
            o.uri(path).expect("uri").to_string(),
            format!("http://kszk-worker.pek.svc:8080{path}")
        );
        let o = Origin::parse("https://pek.example/kszk/").expect("origin");
        assert_eq!(
            o.uri("/api/v1/x").expect("uri").to_string(),
            "https://pek.example/kszk/api/v1/x"
        );
    }

    #[test]
    fn a_path_never_changes_the_host() {
        let o = Origin::parse("http://worker:8080").expect("origin");
        for path in ["//evil.example/x", "/\\evil.example/x", "/@evil.example/x"] {
            if let Ok(u) = o.uri(path) {
                assert_eq!(u.host(), Some("worker"), "{path}: {u}");
                assert_eq!(u.port_u16(), Some(8080), "{path}: {u}");
            }
        }
        for path in ["evil.example/x", "", "http://evil.example/x"] {
            assert!(o.uri(path).is_err(), "{path}");
        }
    }

    #[test]
    fn only_http_urls_are_origins() {
        for endpoint in ["ftp://worker/", "worker:8080", "/api", "http://worker/?x=1"] {
            assert!(Origin::parse(endpoint).is_none(), "{endpoint}");
        }
    }
}
