//! Prometheus metrics, served at `http://127.0.0.1:<prometheus-port>/metrics`.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    /// Best block number.
    pub best_height: Gauge,
    /// Finalized block number.
    pub finalized_height: Gauge,
    /// Extrinsics included in imported blocks.
    pub transactions: Counter,
    /// Extrinsics in the mempool.
    pub mempool_size: Gauge,
    /// Bytes of extrinsics in the mempool.
    pub mempool_bytes: Gauge,
    /// Time to build or execute a block, in seconds.
    pub block_execution_seconds: Histogram,
    /// Time to commit a block's state (write and sync), in seconds.
    pub state_commit_seconds: Histogram,
    /// State reads served since start.
    pub state_reads: Gauge,
    /// Live state keys.
    pub state_keys: Gauge,
    /// Bytes of state records on disk.
    pub state_disk_bytes: Gauge,
    /// Trie nodes stored (live, and released ones that retained versions still read).
    pub state_trie_nodes: Gauge,
    /// Bytes of the state store copied in memory (`--state-cache-size`).
    pub state_cache_bytes: Gauge,
    /// Blocks whose extrinsics ran in parallel (MPEF).
    pub execution_parallel_blocks: Counter,
    /// Blocks whose extrinsics ran serially (small, conflicting or after conflicts).
    pub execution_serial_blocks: Counter,
    /// Executions beyond one per extrinsic: the cost of conflicts.
    pub execution_reexecutions: Counter,
    /// Executions aborted by a conflict.
    pub execution_aborts: Counter,
    /// Connected peers.
    pub peers: Gauge,
    /// The height consensus works on.
    pub consensus_height: Gauge,
    /// The round consensus is in.
    pub consensus_round: Gauge,
    /// Rounds it took to decide each height (1: the first round).
    pub consensus_rounds_per_height: Histogram,
    /// Seconds from the first proposal this node saw for a height (or built) to the height's
    /// decision.
    pub consensus_proposal_to_decision: Histogram,
    /// The highest height peers are at, as far as this node knows.
    pub sync_target: Gauge,
}

/// Buckets of [`Metrics::consensus_proposal_to_decision`], in seconds: fine from 1 ms to
/// 100 ms, where a loopback or LAN network decides.
pub const DECISION_BUCKETS: [f64; 20] = [
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0,
    2.0, 5.0, 10.0,
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `hyperion_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hyperion");
        let metrics = Self {
            best_height: Gauge::default(),
            finalized_height: Gauge::default(),
            transactions: Counter::default(),
            mempool_size: Gauge::default(),
            mempool_bytes: Gauge::default(),
            block_execution_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            state_commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            state_reads: Gauge::default(),
            state_keys: Gauge::default(),
            state_disk_bytes: Gauge::default(),
            state_trie_nodes: Gauge::default(),
            state_cache_bytes: Gauge::default(),
            execution_parallel_blocks: Counter::default(),
            execution_serial_blocks: Counter::default(),
            execution_reexecutions: Counter::default(),
            execution_aborts: Counter::default(),
            peers: Gauge::default(),
            consensus_height: Gauge::default(),
            consensus_round: Gauge::default(),
            consensus_rounds_per_height: Histogram::new(exponential_buckets(1.0, 2.0, 8)),
            consensus_proposal_to_decision: Histogram::new(DECISION_BUCKETS),
            sync_target: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("best_height", "Best block number", metrics.best_height.clone());
        registry.register("peers", "Connected peers", metrics.peers.clone());
        registry.register(
            "consensus_height",
            "The height consensus works on",
            metrics.consensus_height.clone(),
        );
        registry.register("consensus_round", "The round consensus is in", metrics.consensus_round.clone());
        registry.register(
            "consensus_rounds_per_height",
            "Rounds it took to decide each height",
            metrics.consensus_rounds_per_height.clone(),
        );
        registry.register(
            "consensus_proposal_to_decision_seconds",
            "Time from the first proposal seen for a height to its decision",
            metrics.consensus_proposal_to_decision.clone(),
        );
        registry.register("sync_target", "The highest height peers are at", metrics.sync_target.clone());
        registry.register("finalized_height", "Finalized block number", metrics.finalized_height.clone());
        registry.register(
            "transactions",
            "Extrinsics included in imported blocks",
            metrics.transactions.clone(),
        );
        registry.register("mempool_size", "Extrinsics in the mempool", metrics.mempool_size.clone());
        registry.register(
            "mempool_bytes",
            "Bytes of extrinsics in the mempool",
            metrics.mempool_bytes.clone(),
        );
        registry.register(
            "block_execution_seconds",
            "Time to build or execute a block",
            metrics.block_execution_seconds.clone(),
        );
        registry.register(
            "state_commit_seconds",
            "Time to commit a block's state",
            metrics.state_commit_seconds.clone(),
        );
        registry.register("state_reads", "State reads served since start", metrics.state_reads.clone());
        registry.register("state_keys", "Live state keys", metrics.state_keys.clone());
        registry.register(
            "state_disk_bytes",
            "Bytes of state records on disk",
            metrics.state_disk_bytes.clone(),
        );
        registry.register(
            "state_trie_nodes",
            "Trie nodes stored, live and kept for retained versions",
            metrics.state_trie_nodes.clone(),
        );
        registry.register(
            "state_cache_bytes",
            "Bytes of the state store copied in memory to serve reads",
            metrics.state_cache_bytes.clone(),
        );
        registry.register(
            "execution_parallel_blocks",
            "Blocks whose extrinsics ran in parallel",
            metrics.execution_parallel_blocks.clone(),
        );
        registry.register(
            "execution_serial_blocks",
            "Blocks whose extrinsics ran serially (small, conflicting, or right after conflicts)",
            metrics.execution_serial_blocks.clone(),
        );
        registry.register(
            "execution_reexecutions",
            "Extrinsic executions beyond one per extrinsic, caused by conflicts",
            metrics.execution_reexecutions.clone(),
        );
        registry.register(
            "execution_aborts",
            "Extrinsic executions aborted by a conflict",
            metrics.execution_aborts.clone(),
        );
        Self { registry, ..metrics }
    }

    /// Records how a block of `extrinsics` was executed.
    pub fn observe_execution(&self, stats: &hyperion_runtime::ExecutionStats, extrinsics: usize) {
        match stats.mode {
            hyperion_runtime::ExecutionMode::Parallel(_) => self.execution_parallel_blocks.inc(),
            hyperion_runtime::ExecutionMode::Serial(_) => self.execution_serial_blocks.inc(),
        };
        self.execution_reexecutions.inc_by(stats.executions.saturating_sub(extrinsics as u64));
        self.execution_aborts.inc_by(stats.aborts);
    }

    /// Records the state store's figures after a commit that took `commit_seconds`.
    pub fn observe_state(&self, stats: &hyperion_state::MetisStats, commit_seconds: f64) {
        self.state_commit_seconds.observe(commit_seconds);
        self.set_state_stats(stats);
    }

    /// Records the state store's counters and sizes.
    pub fn set_state_stats(&self, stats: &hyperion_state::MetisStats) {
        self.state_reads.set(stats.reads as i64);
        self.state_keys.set(stats.keys as i64);
        self.state_disk_bytes.set(stats.data_bytes as i64);
        self.state_trie_nodes.set(stats.trie_nodes as i64);
        self.state_cache_bytes.set(stats.cache_bytes as i64);
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Serves `/metrics` on `addr` until the task is dropped.
pub async fn serve(metrics: Arc<Metrics>, addr: SocketAddr) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(target: "hyperion::metrics", %addr, "Prometheus metrics at http://{addr}/metrics");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move {
                        let response = if req.uri().path() == "/metrics" {
                            Response::builder()
                                .header(
                                    "content-type",
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                )
                                .body(Full::new(Bytes::from(metrics.render())))
                        } else {
                            Response::builder()
                                .status(404)
                                .body(Full::new(Bytes::from_static(b"not found\n")))
                        };
                        Ok::<_, std::convert::Infallible>(response.expect("static response parts are valid"))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }))
}
