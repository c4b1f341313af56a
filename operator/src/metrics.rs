//! Prometheus metrics: reconciles, errors by reason, reconcile duration, and the time spent in
//! each phase of a reconcile (waiting for a database slot, the database work, the worker
//! objects, the hub, the status write, Events), so a slow provisioning run shows where its time
//! goes.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ErrorLabels {
    pub(crate) reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct WriteLabels {
    pub(crate) kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PhaseLabels {
    pub(crate) phase: String,
}

fn phase_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The operator's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    pub(crate) reconciles: Counter,
    pub(crate) errors: Family<ErrorLabels, Counter>,
    pub(crate) duration: Histogram,
    pub(crate) writes: Family<WriteLabels, Counter>,
    pub(crate) phases: Family<PhaseLabels, Histogram, fn() -> Histogram>,
    registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("pek_operator");
        let reconciles = Counter::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        let writes = Family::<WriteLabels, Counter>::default();
        let phases = Family::<PhaseLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            phase_histogram,
        );
        registry.register("reconciles", "Reconciliations run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed, by reason",
            errors.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Duration of a reconciliation",
            prometheus_client::registry::Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "object_writes",
            "Objects created, changed or deleted in Kubernetes, by kind",
            writes.clone(),
        );
        registry.register_with_unit(
            "phase_duration",
            "Time spent in one phase of a reconcile (db_slot_wait, db_lock_wait, database, \
             workload, register, status_write, event, ...)",
            prometheus_client::registry::Unit::Seconds,
            phases.clone(),
        );
        Metrics {
            reconciles,
            errors,
            duration,
            writes,
            phases,
            registry: Arc::new(registry),
        }
    }
}

impl Metrics {
    /// Starts timing one reconcile; the duration is recorded when the guard drops.
    pub(crate) fn start(&self) -> ReconcileTimer {
        self.reconciles.inc();
        ReconcileTimer {
            start: Instant::now(),
            histogram: self.duration.clone(),
        }
    }

    pub(crate) fn error(&self, reason: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub(crate) fn wrote(&self, kind: &str) {
        self.writes
            .get_or_create(&WriteLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Records `elapsed` as time spent in `phase`.
    pub fn phase(&self, phase: &str, elapsed: std::time::Duration) {
        self.phases
            .get_or_create(&PhaseLabels {
                phase: phase.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Times `fut` as `phase`. (`fut` lives on the heap: a reconcile's phases are large state
    /// machines, and nesting them inline overflows a test thread's stack in debug builds.)
    pub async fn timed<T>(&self, phase: &str, fut: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let out = Box::pin(fut).await;
        self.phase(phase, start.elapsed());
        out
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

pub(crate) struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_reconciles_errors_and_duration() {
        let m = Metrics::default();
        drop(m.start());
        m.error("HubError");
        let text = m.encode();
        assert!(text.contains("pek_operator_reconciles_total 1"), "{text}");
        assert!(
            text.contains("pek_operator_reconcile_errors_total{reason=\"HubError\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("pek_operator_reconcile_duration_seconds_count 1"),
            "{text}"
        );
    }
}
