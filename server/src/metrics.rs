//! The service's metrics in the Prometheus text format (version 0.0.4):
//! requests by route and outcome, request latency by route, ledger commit
//! latency and batch size. Kept here, without an exporter crate: a few
//! counters and fixed-bucket histograms behind one lock each.

use core::fmt::Write as _;
use core::sync::atomic::{AtomicI64, Ordering};
use core::time::Duration;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Latency buckets (seconds).
const LATENCY: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Batch size buckets (requests per commit).
const BATCH: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

#[derive(Clone, Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(self.counts.iter_mut()) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// The metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    commit: Mutex<Histogram>,
    batch: Mutex<Histogram>,
    in_flight: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Mutex::default(),
            latency: Mutex::default(),
            commit: Mutex::new(Histogram::new(&LATENCY)),
            batch: Mutex::new(Histogram::new(&BATCH)),
            in_flight: AtomicI64::new(0),
        }
    }
}

impl Metrics {
    /// Counts a finished request.
    pub fn request(&self, route: &'static str, outcome: &'static str, took: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route, outcome)).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            m.entry(route)
                .or_insert_with(|| Histogram::new(&LATENCY))
                .observe(took.as_secs_f64());
        }
    }

    /// Records one ledger commit of `batch` requests.
    pub fn commit(&self, took: Duration, batch: usize) {
        if let Ok(mut h) = self.commit.lock() {
            h.observe(took.as_secs_f64());
        }
        if let Ok(mut h) = self.batch.lock() {
            #[allow(clippy::cast_precision_loss)]
            h.observe(batch as f64);
        }
    }

    /// A request started (+1) or ended (-1).
    pub fn in_flight(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::Relaxed);
    }

    /// How many requests of `route` ended with `outcome`.
    #[must_use]
    pub fn count(&self, route: &str, outcome: &str) -> u64 {
        self.requests
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|((r, o), _)| *r == route && *o == outcome)
                    .map(|(_, n)| *n)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Everything, as Prometheus text.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP tessera_requests_total Requests answered, by route and outcome.\n# TYPE tessera_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "tessera_requests_total{{route=\"{route}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP tessera_request_duration_seconds Time from request to answer, by route.\n# TYPE tessera_request_duration_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (route, h) in m.iter() {
                h.write(
                    &mut out,
                    "tessera_request_duration_seconds",
                    &format!("route=\"{route}\""),
                );
            }
        }
        out.push_str("# HELP tessera_ledger_commit_seconds Time of one ledger commit (a batch of requests, durable when it ends).\n# TYPE tessera_ledger_commit_seconds histogram\n");
        if let Ok(h) = self.commit.lock() {
            h.write(&mut out, "tessera_ledger_commit_seconds", "");
        }
        out.push_str("# HELP tessera_ledger_batch_size Requests per ledger commit (group commit).\n# TYPE tessera_ledger_batch_size histogram\n");
        if let Ok(h) = self.batch.lock() {
            h.write(&mut out, "tessera_ledger_batch_size", "");
        }
        let _ = write!(
            out,
            "# HELP tessera_requests_in_flight Requests being answered.\n# TYPE tessera_requests_in_flight gauge\ntessera_requests_in_flight {}\n",
            self.in_flight.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.request("renew", "ok", Duration::from_millis(3));
        m.request("renew", "replay", Duration::from_millis(30));
        m.commit(Duration::from_millis(2), 5);
        let text = m.render();
        assert!(text.contains("tessera_requests_total{route=\"renew\",outcome=\"ok\"} 1\n"));
        assert!(text
            .contains("tessera_request_duration_seconds_bucket{route=\"renew\",le=\"0.005\"} 1\n"));
        assert!(text
            .contains("tessera_request_duration_seconds_bucket{route=\"renew\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("tessera_ledger_batch_size_bucket{le=\"4\"} 0\n"));
        assert!(text.contains("tessera_ledger_batch_size_bucket{le=\"8\"} 1\n"));
        assert!(text.contains("tessera_ledger_commit_seconds_count 1\n"));
        assert_eq!(m.count("renew", "replay"), 1);
    }
}
