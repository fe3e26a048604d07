//! The agent's metrics, served at `/metrics` in the text format
//! (OpenMetrics, which Prometheus reads), through the Prometheus
//! project's own client crate, `prometheus-client`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A metric's labels, as `(name, value)` pairs.
pub type Labels = Vec<(String, String)>;

type Durations = Family<Labels, Histogram, fn() -> Histogram>;

/// Every metric the agent keeps.
pub struct Metrics {
    registry: Registry,
    /// `plumb_ingest_duration_seconds{source}`.
    pub ingest_duration: Durations,
    /// `plumb_reconcile_duration_seconds{target,kind}` (kind: apply, drift).
    pub reconcile_duration: Durations,
    /// `plumb_last_success_timestamp_seconds{source|target}`.
    pub last_success: Family<Labels, Gauge<f64, AtomicU64>>,
    /// `plumb_snapshots_ingested_total{source}`.
    pub snapshots_ingested: Family<Labels, Counter>,
    /// `plumb_changes_applied_total{target}`.
    pub changes_applied: Family<Labels, Counter>,
    /// `plumb_drifted_paths{target}`: paths found drifted at the last check.
    pub drifted_paths: Family<Labels, Gauge>,
    /// `plumb_errors_total{kind}` (kind: ingest, apply, drift, plan).
    pub errors: Family<Labels, Counter>,
    /// `plumb_config_reloads_total{result}` (result: ok, refused).
    pub config_reloads: Family<Labels, Counter>,
}

fn durations() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 18))
}

/// One label.
pub fn label(name: &str, value: &str) -> Labels {
    vec![(name.to_owned(), value.to_owned())]
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let ingest_duration = Durations::new_with_constructor(durations as fn() -> Histogram);
        let reconcile_duration = Durations::new_with_constructor(durations as fn() -> Histogram);
        let last_success = Family::default();
        let snapshots_ingested = Family::default();
        let changes_applied = Family::default();
        let drifted_paths = Family::default();
        let errors = Family::default();
        let config_reloads = Family::default();
        registry.register(
            "plumb_ingest_duration_seconds",
            "How long an ingest took",
            ingest_duration.clone(),
        );
        registry.register(
            "plumb_reconcile_duration_seconds",
            "How long a reconcile (apply or drift check) took",
            reconcile_duration.clone(),
        );
        registry.register(
            "plumb_last_success_timestamp_seconds",
            "When the last ingest of a source or reconcile of a target succeeded",
            last_success.clone(),
        );
        registry.register(
            "plumb_snapshots_ingested",
            "Snapshots ingested",
            snapshots_ingested.clone(),
        );
        registry.register(
            "plumb_changes_applied",
            "Changes made to targets",
            changes_applied.clone(),
        );
        registry.register(
            "plumb_drifted_paths",
            "Paths found drifted at a target's last check",
            drifted_paths.clone(),
        );
        registry.register("plumb_errors", "Errors, by kind", errors.clone());
        registry.register(
            "plumb_config_reloads",
            "Configuration reloads, by result",
            config_reloads.clone(),
        );
        Metrics {
            registry,
            ingest_duration,
            reconcile_duration,
            last_success,
            snapshots_ingested,
            changes_applied,
            drifted_paths,
            errors,
            config_reloads,
        }
    }

    /// Counts an error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors.get_or_create(&label("kind", kind)).inc();
    }

    /// Notes a success of `what` (`source` or `target`) `name` now.
    pub fn success(&self, what: &str, name: &str) {
        let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        self.last_success.get_or_create(&label(what, name)).set(now);
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The metrics in Prometheus's classic text format (version 0.0.4),
    /// for scrapers and tools that do not ask for OpenMetrics.
    pub fn encode_classic(&self) -> String {
        classic(&self.encode())
    }
}

/// OpenMetrics text made classic: a counter's `# HELP` and `# TYPE` name
/// its samples (`…_total`), and `# UNIT` and `# EOF` go.
fn classic(open: &str) -> String {
    let counters: Vec<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{tag}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_text_names_counters_by_their_samples() {
        let m = Metrics::new();
        m.error("ingest");
        let text = m.encode_classic();
        assert!(
            text.contains("# HELP plumb_errors_total Errors, by kind."),
            "{text}"
        );
        assert!(text.contains("# TYPE plumb_errors_total counter"), "{text}");
        assert!(
            text.contains("plumb_errors_total{kind=\"ingest\"} 1"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }
}
