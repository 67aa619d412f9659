//! The metric types and the Prometheus text exposition (format 0.0.4) they are written in.
//!
//! Hand-written rather than the `prometheus` crate: that crate brings protobuf, a process-wide
//! default registry and dynamic registration by name, none of which a node needs. Its metrics
//! are a fixed set known when it starts (`node_metrics.rs`), each an atomic that the thread doing
//! the work updates without a lock and the HTTP thread reads when scraped; what remains is this
//! file: three metric types and a writer for the text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// A value that only goes up (`_total` metrics).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Follows a total kept elsewhere (a count that itself only goes up): the counter becomes
    /// `total` unless it is already higher, so it never goes down.
    pub fn follow(&self, total: u64) {
        self.0.fetch_max(total, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Sets the gauge to an index or a term: they fit an `i64` for any log a node can hold
    /// (saturates instead of wrapping).
    pub fn set_u64(&self, v: u64) {
        self.set(i64::try_from(v).unwrap_or(i64::MAX));
    }

    /// Sets the value and returns the previous one.
    pub fn swap(&self, v: i64) -> i64 {
        self.0.swap(v, Ordering::Relaxed)
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A distribution of durations over fixed buckets (upper bounds in seconds). Each observation
/// increments one bucket; the exposition writes them cumulative, as the format requires.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// `buckets[i]`: observations in `(bounds[i-1], bounds[i]]`; the last one: above every
    /// bound (the `+Inf` bucket's own share).
    buckets: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// A histogram over `bounds`, which must be strictly increasing (a constant of the code:
    /// anything else is a bug, and fails here, at start).
    pub fn new(bounds: &'static [f64]) -> Self {
        assert!(
            bounds.windows(2).all(|w| w[0] < w[1]) && bounds.iter().all(|b| b.is_finite()),
            "histogram bounds must be finite and strictly increasing: {bounds:?}"
        );
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.partition_point(|&b| b < secs);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// `(upper bound, observations at or below it)` for every finite bound, then the total
    /// as the `+Inf` bucket: cumulative counts, read once each (a scrape racing an
    /// observation may miss it, never count it twice).
    pub fn cumulative(&self) -> (Vec<(f64, u64)>, u64) {
        let mut running = 0;
        let mut out = Vec::with_capacity(self.bounds.len());
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            running += bucket.load(Ordering::Relaxed);
            out.push((*bound, running));
        }
        let total = running + self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        (out, total)
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// The `# TYPE` of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// The content type of the text exposition format this writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Writes metric families in the text exposition format: a family's `# HELP` and `# TYPE`
/// lines ([`Exposition::family`]), then its samples.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family. Its name is a constant of the code: an invalid one is a bug.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        assert!(valid_name(name), "invalid metric name {name:?}");
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.name());
    }

    /// One integer sample of the current family (every counter and gauge of the node counts
    /// something; a histogram's samples are written by [`Exposition::histogram`]).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<i128>) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", value.into());
    }

    /// A family holding one integer sample: its header, then the sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: i64) {
        self.family(name, kind, help);
        self.out.push_str(name);
        let _ = writeln!(self.out, " {value}");
    }

    /// A histogram family: header, cumulative `_bucket` lines (the last `le="+Inf"`), `_sum`,
    /// `_count`.
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.family(name, Kind::Histogram, help);
        let (buckets, total) = h.cumulative();
        let bucket = format!("{name}_bucket");
        for (bound, count) in buckets {
            self.out.push_str(&bucket);
            self.labels(&[], Some(&format_value(bound)));
            let _ = writeln!(self.out, " {count}");
        }
        self.out.push_str(&bucket);
        self.labels(&[], Some("+Inf"));
        let _ = writeln!(self.out, " {total}");
        let _ = writeln!(self.out, "{name}_sum {}", format_value(h.sum_seconds()));
        let _ = writeln!(self.out, "{name}_count {total}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let le = le.map(|v| ("le", v));
        for (i, (k, v)) in labels.iter().copied().chain(le).enumerate() {
            assert!(valid_label_name(k), "invalid label name {k:?}");
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{k}=\"{}\"", escape_label_value(v));
        }
        self.out.push('}');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, the format's metric names.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, the format's label names.
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// In `# HELP` text, backslash and line feed are escaped.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// In a label value, backslash, double quote and line feed are escaped.
fn escape_label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value as the format spells it (`+Inf`, `-Inf`, `NaN`; Rust's shortest round-trip
/// decimal otherwise).
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[f64] = &[0.001, 0.01, 0.1];

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_the_total() {
        let h = Histogram::new(BOUNDS);
        for ms in [0.5, 1.0, 5.0, 5.0, 50.0, 2000.0] {
            h.observe(Duration::from_secs_f64(ms / 1000.0));
        }
        let (buckets, total) = h.cumulative();
        // 1 ms falls in the 0.001 bucket: a bound is inclusive (`le`).
        assert_eq!(buckets, vec![(0.001, 2), (0.01, 4), (0.1, 5)]);
        assert_eq!(total, 6);
        assert_eq!(h.count(), 6);
        assert!(
            (h.sum_seconds() - 2.0615).abs() < 1e-9,
            "{}",
            h.sum_seconds()
        );
    }

    #[test]
    fn a_histogram_is_written_with_le_labels_sum_and_count() {
        let h = Histogram::new(BOUNDS);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(500));
        let mut e = Exposition::new();
        e.histogram("x_seconds", "Some time.", &h);
        let text = e.finish();
        let expected = "# HELP x_seconds Some time.\n# TYPE x_seconds histogram\n\
            x_seconds_bucket{le=\"0.001\"} 0\nx_seconds_bucket{le=\"0.01\"} 1\n\
            x_seconds_bucket{le=\"0.1\"} 1\nx_seconds_bucket{le=\"+Inf\"} 2\n\
            x_seconds_sum 0.505\nx_seconds_count 2\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut e = Exposition::new();
        e.family("x_total", Kind::Counter, "a \\ b\nc");
        e.sample("x_total", &[("peer", "a\"b\\c\nd"), ("k", "v")], 3u32);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\n\
             x_total{peer=\"a\\\"b\\\\c\\nd\",k=\"v\"} 3\n"
        );
    }

    #[test]
    fn special_values_are_spelled_as_the_format_wants() {
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(3.0), "3");
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("raft_term"));
        assert!(valid_name("a:b_c9"));
        assert!(!valid_name("9a"));
        assert!(!valid_name("a-b"));
        assert!(!valid_name(""));
        assert!(valid_label_name("outcome"));
        assert!(!valid_label_name("a:b"));
    }

    #[test]
    #[should_panic(expected = "strictly increasing")]
    fn unordered_bounds_fail_at_once() {
        Histogram::new(&[0.1, 0.01]);
    }

    #[test]
    fn a_counter_following_a_total_never_goes_down() {
        let c = Counter::default();
        c.follow(5);
        c.follow(3);
        assert_eq!(c.get(), 5);
        c.inc();
        assert_eq!(c.get(), 6);
    }
}
