//! Process metrics: one Prometheus recorder per process, installed when the
//! scheduler opens, read by `/metrics`. Scheduler code records with the `metrics`
//! macros (`exechub_step_dispatch_seconds`, `exechub_steps_total`,
//! `exechub_commit_batch_size`, `exechub_commit_seconds`).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often summaries drop samples older than their window.
const UPKEEP: Duration = Duration::from_secs(5);

/// The process's recorder, installed on first use.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics stays empty");
        }
        let upkeep = handle.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            }
        });
        handle
    })
}
