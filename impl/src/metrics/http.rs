//! The metrics endpoint: a tiny_http server on its own thread, off unless the node is given an
//! address (`raft-node --metrics-addr`). `GET /metrics` is the text exposition of
//! [`NodeMetrics`]; `GET /health` is 200 or 503 by the rule of [`super::health`]; anything
//! else is 404. It reads atomics only, so a scrape never waits for the event loop, and one
//! thread answers the requests in turn (tiny_http reads them on its own threads; the answers
//! are a few kilobytes, written into the socket's buffer).

use super::health;
use super::node_metrics::NodeMetrics;
use super::registry::CONTENT_TYPE;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use tiny_http::{Header, Method, Request, Response, Server};

/// The running endpoint; dropping it stops its thread.
pub struct MetricsEndpoint {
    server: Arc<Server>,
    addr: SocketAddr,
    thread: Option<thread::JoinHandle<()>>,
}

impl MetricsEndpoint {
    /// Binds `addr` (an error names it: the node stops at start) and starts serving.
    pub fn start(
        addr: SocketAddr,
        metrics: Arc<NodeMetrics>,
        max_apply_lag: u64,
    ) -> anyhow::Result<Self> {
        let server = Server::http(addr)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        let bound = server
            .server_addr()
            .to_ip()
            .context("the metrics listener has no IP address")?;
        tracing::info!(addr = %bound, "serving metrics and health over HTTP");
        let server = Arc::new(server);
        let serving = Arc::clone(&server);
        let thread = thread::Builder::new()
            .name("raft-metrics".into())
            .spawn(move || {
                // `recv` fails only once the server is unblocked (dropped) or its listener
                // broke: either way, the end.
                while let Ok(request) = serving.recv() {
                    answer(request, &metrics, max_apply_lag);
                }
            })
            .context("cannot start the metrics thread")?;
        Ok(MetricsEndpoint {
            server,
            addr: bound,
            thread: Some(thread),
        })
    }

    /// The address it listens on (the port chosen, for an address with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Routes one request. A client gone before its answer is not the node's concern.
fn answer(request: Request, metrics: &NodeMetrics, max_apply_lag: u64) {
    let path = request.url().split('?').next().unwrap_or("");
    let get = *request.method() == Method::Get;
    let response = match (get, path) {
        (true, "/metrics") => Response::from_string(metrics.render())
            .with_header(header("Content-Type", CONTENT_TYPE)),
        (true, "/health") => {
            let verdict = health::check(metrics.health_view(), max_apply_lag);
            Response::from_string(format!("{}\n", verdict.body))
                .with_status_code(verdict.status())
                .with_header(header("Content-Type", "application/json"))
        }
        _ => Response::from_string("not found: GET /metrics or GET /health\n")
            .with_status_code(404)
            .with_header(header("Content-Type", "text/plain")),
    };
    if let Err(e) = request.respond(response) {
        tracing::debug!(error = %e, "a metrics client left before its answer");
    }
}

/// A header from constant ASCII (a bug otherwise, caught by the tests).
fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name, value).expect("a constant, valid header")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::node_metrics::Observed;
    use raft_core::Role;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// A bare HTTP/1.0 GET: the status line's code, the headers and the body.
    fn get(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "{method} {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        (code, head.to_string(), body.to_string())
    }

    #[test]
    fn metrics_health_and_everything_else() {
        let metrics = Arc::new(NodeMetrics::new([1]));
        let endpoint =
            MetricsEndpoint::start("127.0.0.1:0".parse().unwrap(), metrics.clone(), 10).unwrap();
        let addr = endpoint.addr();

        let (code, head, body) = get(addr, "GET", "/metrics");
        assert_eq!(code, 200);
        assert!(head.contains("text/plain; version=0.0.4"), "{head}");
        assert!(
            body.contains("# TYPE raft_term gauge\nraft_term 0\n"),
            "{body}"
        );

        let (code, _, body) = get(addr, "GET", "/health");
        assert_eq!(code, 503, "no leader yet");
        assert!(body.contains("no leader known"), "{body}");

        metrics.observe(&Observed {
            term: 2,
            role: Role::Follower,
            leader: Some(1),
            ..Observed::default()
        });
        let (code, _, body) = get(addr, "GET", "/health?verbose");
        assert_eq!(code, 200, "{body}");

        assert_eq!(get(addr, "GET", "/").0, 404);
        assert_eq!(get(addr, "POST", "/metrics").0, 404);
        // Dropping it stops the thread (a hang here would be the bug).
        drop(endpoint);
    }

    #[test]
    fn an_address_in_use_is_a_clear_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let e = MetricsEndpoint::start(addr, Arc::new(NodeMetrics::new([])), 10)
            .err()
            .expect("the port is taken");
        let text = format!("{e:#}");
        assert!(
            text.starts_with(&format!("cannot serve metrics on {addr}: ")),
            "{text}"
        );
    }
}
