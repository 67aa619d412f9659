//! The node's metrics and health endpoint (impl/README.md, "Metrics and health"): a small
//! registry of atomics ([`registry`]), the node's metrics in it ([`node_metrics`]), the health
//! rule ([`health`]) and the HTTP server that serves them ([`http`]).

pub mod health;
pub mod http;
pub mod node_metrics;
pub mod registry;

pub use health::DEFAULT_MAX_APPLY_LAG;
pub use http::MetricsEndpoint;
pub use node_metrics::NodeMetrics;
