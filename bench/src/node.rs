//! The `node` suite: a 4-validator network of `hyperion` processes on loopback, against one
//! validator alone (the same binary and chain, no votes to exchange) in the same run.
//!
//! For each network: blocks decided per second and the time from proposal to decision
//! (p50/p99, from the nodes' `hyperion_consensus_proposal_to_decision_seconds` histograms)
//! with empty blocks at the fastest block time, then the same under a steady load of native
//! transfers sent over JSON-RPC, with the transactions included per second. Last, one
//! validator of the four is killed, the others decide `catch_up_blocks` more, and the time it
//! takes to catch up after a restart is compared with importing the same blocks from a file
//! (`hyperion import-blocks`) into a copy of its data.
//!
//! The nodes log to files in a temporary folder, with the filter in `HYPERION_BENCH_NODE_LOG`
//! (default: warnings, and sync progress); the tails are shown when a wait fails.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyperion_primitives::{Call as RawCall, Extrinsic, Hash, Pair, SignedExtrinsic, UNIT};
use pallet_balances::Call;
use parity_scale_codec::Encode;
use serde_json::{json, Value};

use crate::runtime::workload::{account_pair, BALANCES_INDEX};
use crate::{Error, Goal, Result, Row};

const SUITE: &str = "node";
/// Validators of the network side (the local chain's).
const VALIDATORS: [&str; 4] = ["alice", "bob", "charlie", "dave"];
/// How long a node may take to start, or a wait to be met.
const DEADLINE: Duration = Duration::from_secs(120);
/// Load is sent in batches this often.
const BATCH_INTERVAL: Duration = Duration::from_millis(50);

/// Sizes of a run.
#[derive(Clone, Debug)]
pub struct Size {
    /// Seconds each window is measured.
    pub window_seconds: u64,
    /// Transfers offered per second during the load window.
    pub offered_tps: u32,
    /// How far behind the restarted validator is.
    pub catch_up_blocks: u64,
    /// Block time of the chain (the fastest: a block as soon as the last is decided).
    pub block_time_ms: u64,
    /// `--execution-threads` of every node (default: the node's, one per core).
    pub execution_threads: Option<u16>,
}

/// The full run.
pub const FULL: Size = Size {
    window_seconds: 10,
    offered_tps: 3000,
    catch_up_blocks: 1000,
    block_time_ms: 1,
    execution_threads: None,
};
/// The quick run.
pub const QUICK: Size = Size {
    window_seconds: 4,
    offered_tps: 3000,
    catch_up_blocks: 200,
    block_time_ms: 1,
    execution_threads: None,
};

/// What one window measured.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    blocks_per_second: f64,
    transactions_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Runs the suite with the `hyperion` binary at `node_bin`.
pub fn run(node_bin: &Path, size: &Size) -> Result<Vec<Row>> {
    let work = tempfile::Builder::new().prefix("hyperion-bench-node-").tempdir()?;
    // `HYPERION_BENCH_NODE_KEEP=1` keeps the nodes' data and logs for a look afterwards.
    let (root, _work) = if std::env::var_os("HYPERION_BENCH_NODE_KEEP").is_some() {
        let path = work.keep();
        eprintln!("node suite: keeping {}", path.display());
        (path, None)
    } else {
        (work.path().to_path_buf(), Some(work))
    };
    let senders = accounts_for(size);

    let single = {
        let spec = write_spec(node_bin, root.as_path(), "single", &VALIDATORS[..1], senders, size)?;
        let mut net =
            Network::start(node_bin, &spec, &root.as_path().join("single"), &VALIDATORS[..1], size)?;
        let empty = net.measure(size.window_seconds, None)?;
        let load = net.measure(size.window_seconds, Some(size.offered_tps))?;
        eprintln!("node suite: one validator: empty {empty:?}, load {load:?}");
        (empty, load)
    };
    let spec = write_spec(node_bin, root.as_path(), "four", &VALIDATORS, senders, size)?;
    let mut net = Network::start(node_bin, &spec, &root.as_path().join("four"), &VALIDATORS, size)?;
    let empty = net.measure(size.window_seconds, None)?;
    let load = net.measure(size.window_seconds, Some(size.offered_tps))?;
    eprintln!("node suite: four validators: empty {empty:?}, load {load:?}");
    let (sync_seconds, import_seconds, behind) = net.catch_up(node_bin, &spec, size.catch_up_blocks)?;

    let case = |what: &str| format!("{what}/validators=4_vs_1/block_time_ms={}", size.block_time_ms);
    let mut rows = vec![
        Row::throughput(
            SUITE,
            case("empty/decided"),
            single.0.blocks_per_second,
            empty.blocks_per_second,
            "blocks/s",
        ),
        Row::latency(SUITE, case("empty/proposal_to_decision_p50"), single.0.p50_ms, empty.p50_ms, "ms")
            .with_goals(&[Goal::OursAtMost(20.0)]),
        Row::latency(SUITE, case("empty/proposal_to_decision_p99"), single.0.p99_ms, empty.p99_ms, "ms")
            .with_goals(&[Goal::OursAtMost(100.0)]),
        Row::throughput(
            SUITE,
            case(&format!("load/offered={}/included", size.offered_tps)),
            single.1.transactions_per_second,
            load.transactions_per_second,
            "transfers/s",
        )
        .with_goals(&[Goal::OursAtLeast(2000.0)]),
        Row::throughput(
            SUITE,
            case("load/decided"),
            single.1.blocks_per_second,
            load.blocks_per_second,
            "blocks/s",
        ),
        Row::latency(SUITE, case("load/proposal_to_decision_p50"), single.1.p50_ms, load.p50_ms, "ms"),
        Row::latency(SUITE, case("load/proposal_to_decision_p99"), single.1.p99_ms, load.p99_ms, "ms"),
    ];
    let goal = if behind >= 1000 { vec![Goal::OursAtMost(5.0 * behind as f64 / 1000.0)] } else { Vec::new() };
    rows.push(
        Row::latency(
            SUITE,
            format!("catch_up/blocks={behind}/sync_vs_import_blocks"),
            import_seconds,
            sync_seconds,
            "s",
        )
        .with_goals(&goal),
    );
    Ok(rows)
}

/// Senders of the load: each sends at most one transfer per block interval of the window.
fn accounts_for(size: &Size) -> u32 {
    (size.offered_tps / 4).max(64)
}

/// Writes the local chain's spec with `validators` only, `senders` more endowed accounts and
/// the block time; returns its path.
fn write_spec(
    node_bin: &Path,
    dir: &Path,
    name: &str,
    validators: &[&str],
    senders: u32,
    size: &Size,
) -> Result<PathBuf> {
    let output = Command::new(node_bin).args(["build-spec", "--chain", "local"]).output()?;
    if !output.status.success() {
        return Err(Error::Check(format!("build-spec failed: {}", String::from_utf8_lossy(&output.stderr))));
    }
    let mut spec: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| Error::Check(format!("build-spec printed no JSON: {e}")))?;
    spec["id"] = json!(format!("bench-{name}"));
    spec["genesis"]["blockTimeMs"] = json!(size.block_time_ms);
    let keep: Vec<String> = validators.iter().map(|v| v.to_lowercase()).collect();
    let all = spec["genesis"]["validators"].as_array().cloned().unwrap_or_default();
    let kept: Vec<Value> = all
        .into_iter()
        .filter(|v| v["name"].as_str().is_some_and(|n| keep.contains(&n.to_lowercase())))
        .collect();
    if kept.len() != validators.len() {
        return Err(Error::Check(format!("the local spec lacks some of {validators:?}")));
    }
    // Staking's genesis sequencers are the validators kept.
    let keys: Vec<Value> = kept.iter().map(|v| v["publicKey"].clone()).collect();
    spec["genesis"]["validators"] = json!(kept);
    if let Some(sequencers) = spec["genesis"]["runtime"]["staking"]["sequencers"].as_array_mut() {
        sequencers.retain(|s| keys.contains(&s["consensusKey"]));
    }
    let balances = spec["genesis"]["runtime"]["balances"]["balances"]
        .as_array_mut()
        .ok_or_else(|| Error::Check("the local spec has no balances".into()))?;
    for index in 0..senders {
        balances.push(json!([account_pair(index).public().address().to_hex(), "1e24"]));
    }
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).expect("JSON"))?;
    Ok(path)
}

/// A `hyperion` process, killed when dropped.
struct Process {
    child: Child,
    rpc: u16,
    metrics: u16,
}

impl Process {
    fn start(node_bin: &Path, args: &[String], log: &Path) -> Result<Process> {
        let (rpc, metrics) = (free_port()?, free_port()?);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let child = Command::new(node_bin)
            .args(args)
            .args(["--rpc-port", &rpc.to_string(), "--prometheus-port", &metrics.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let process = Process { child, rpc, metrics };
        wait_until("a node's RPC to answer", || {
            Ok(rpc_call(process.rpc, "system_health", json!([])).is_ok())
        })?;
        Ok(process)
    }

    fn best(&self) -> Result<u64> {
        let header = rpc_call(self.rpc, "chain_getHeader", json!([]))?;
        let number = header["number"].as_str().unwrap_or_default().trim_start_matches("0x");
        u64::from_str_radix(number, 16)
            .map_err(|_| Error::Check(format!("a header without a number: {header}")))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Validators on loopback, each dialling all the others.
struct Network {
    nodes: Vec<Option<Process>>,
    args: Vec<Vec<String>>,
    logs: Vec<PathBuf>,
    genesis: Hash,
    /// The next nonce of each sender.
    nonces: Vec<u64>,
    senders: Vec<Pair>,
}

impl Network {
    fn start(node_bin: &Path, spec: &Path, dir: &Path, validators: &[&str], size: &Size) -> Result<Network> {
        let ports = validators.iter().map(|_| free_port()).collect::<Result<Vec<u16>>>()?;
        let addresses: Vec<String> = ports.iter().map(|p| format!("/ip4/127.0.0.1/tcp/{p}")).collect();
        let mut args = Vec::new();
        let mut logs = Vec::new();
        for (i, name) in validators.iter().enumerate() {
            let mut a: Vec<String> = vec![
                "--chain".into(),
                spec.display().to_string(),
                format!("--{name}"),
                "--base-path".into(),
                dir.join(name).display().to_string(),
                "--listen-addr".into(),
                addresses[i].clone(),
                "--block-time-ms".into(),
                size.block_time_ms.to_string(),
                "--log".into(),
                std::env::var("HYPERION_BENCH_NODE_LOG")
                    .unwrap_or_else(|_| "warn,hyperion::sync=info".into()),
            ];
            if let Some(threads) = size.execution_threads {
                a.extend(["--execution-threads".to_string(), threads.to_string()]);
            }
            let others: Vec<String> =
                addresses.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, a)| a.clone()).collect();
            if !others.is_empty() {
                a.push("--bootnodes".into());
                a.extend(others);
            }
            args.push(a);
            logs.push(dir.join(format!("{name}.log")));
        }
        std::fs::create_dir_all(dir)?;
        let nodes = args
            .iter()
            .zip(&logs)
            .map(|(a, log)| Process::start(node_bin, a, log).map(Some))
            .collect::<Result<Vec<_>>>()?;
        let first = nodes[0].as_ref().expect("started");
        let genesis = rpc_call(first.rpc, "chain_getBlockHash", json!([0]))?;
        let genesis: Hash =
            serde_json::from_value(genesis).map_err(|e| Error::Check(format!("genesis hash: {e}")))?;
        let senders: Vec<Pair> = (0..accounts_for(size)).map(account_pair).collect();
        let net = Network { nodes, args, logs, genesis, nonces: vec![0; senders.len()], senders };
        net.wait_for_best(3)?;
        Ok(net)
    }

    fn node(&self, i: usize) -> &Process {
        self.nodes[i].as_ref().expect("a running node")
    }

    fn running(&self) -> impl Iterator<Item = &Process> {
        self.nodes.iter().flatten()
    }

    fn wait_for_best(&self, number: u64) -> Result<()> {
        for node in self.running() {
            wait_until(&format!("best block {number}"), || Ok(node.best()? >= number))
                .map_err(|e| self.with_log(e))?;
        }
        Ok(())
    }

    fn with_log(&self, error: Error) -> Error {
        let tail: String = self
            .logs
            .iter()
            .map(|log| {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let start = text.len().saturating_sub(6000);
                format!("--- {}\n{}", log.display(), &text[text.floor_char_boundary(start)..])
            })
            .collect();
        Error::Check(format!("{error}\n{tail}"))
    }

    /// Measures a window of `seconds`, with transfers offered at `load` per second if given.
    fn measure(&mut self, seconds: u64, load: Option<u32>) -> Result<Window> {
        let window = Duration::from_secs(seconds);
        let sender = match load {
            Some(tps) => {
                let batches = self.sign_load(tps, window + Duration::from_secs(1));
                let ports: Vec<u16> = self.running().map(|p| p.rpc).collect();
                Some(std::thread::spawn(move || submit(&ports, batches)))
            }
            None => None,
        };
        if sender.is_some() {
            // Let the pools fill and blocks reach their steady size first.
            std::thread::sleep(Duration::from_secs(1));
        }
        let before: Vec<Scrape> = self.running().map(|p| scrape(p.metrics)).collect::<Result<_>>()?;
        std::thread::sleep(window);
        let after: Vec<Scrape> = self.running().map(|p| scrape(p.metrics)).collect::<Result<_>>()?;
        if let Some(sender) = sender {
            let refused = sender.join().map_err(|_| Error::Check("the load sender panicked".into()))??;
            if refused > 0 {
                eprintln!("node suite: {refused} transfers refused by the pools (full)");
            }
        }
        let elapsed = after[0].at.duration_since(before[0].at).as_secs_f64();
        let blocks = after[0].best.saturating_sub(before[0].best) as f64;
        if blocks == 0.0 {
            return Err(self.with_log(Error::Check("no block was decided in the window".into())));
        }
        let mut buckets: Vec<(f64, u64)> = Vec::new();
        for (b, a) in before.iter().zip(&after) {
            for ((bound, count_after), (_, count_before)) in a.buckets.iter().zip(&b.buckets) {
                match buckets.iter_mut().find(|(x, _)| x == bound) {
                    Some((_, total)) => *total += count_after - count_before,
                    None => buckets.push((*bound, count_after - count_before)),
                }
            }
        }
        Ok(Window {
            blocks_per_second: blocks / elapsed,
            transactions_per_second: after[0].transactions.saturating_sub(before[0].transactions) as f64
                / elapsed,
            p50_ms: quantile(&buckets, 0.5) * 1000.0,
            p99_ms: quantile(&buckets, 0.99) * 1000.0,
        })
    }

    /// Signs the transfers of a load: batches per node, one batch per [`BATCH_INTERVAL`]. Each
    /// sender's transfers go to one node, in nonce order.
    fn sign_load(&mut self, tps: u32, duration: Duration) -> Vec<Vec<Vec<String>>> {
        let nodes = self.running().count();
        let rounds = (duration.as_millis() / BATCH_INTERVAL.as_millis()) as usize;
        let per_batch = (tps as usize * BATCH_INTERVAL.as_millis() as usize / 1000 / nodes).max(1);
        let accounts = self.senders.len();
        let mut next = 0usize;
        let mut batches = vec![vec![Vec::with_capacity(per_batch); rounds]; nodes];
        for round in 0..rounds {
            for node_batches in batches.iter_mut() {
                for _ in 0..per_batch {
                    let from = next % accounts;
                    next += 1;
                    let to = (from + 1) % accounts;
                    let dest = self.senders[to].public().address();
                    let call = Call::Transfer { dest, value: UNIT / 1000 }.encode();
                    let call = RawCall { pallet: BALANCES_INDEX, call: call[0], args: call[1..].to_vec() };
                    let xt =
                        SignedExtrinsic::sign(&self.senders[from], self.genesis, self.nonces[from], 0, call);
                    self.nonces[from] += 1;
                    node_batches[round].push(format!("0x{}", hex::encode(Extrinsic::Native(xt).encode())));
                }
            }
        }
        batches
    }

    /// Times a validator's catch-up over `blocks` blocks: its chain data (block store and
    /// state) is copied while it is stopped, the network decides `blocks` more with it, then it
    /// restarts on the old copy, as after restoring a backup, keeping its sign record and
    /// network key; it catches up by sync. Then the same blocks are imported from a file
    /// (`import-blocks`) into another copy of the old data. Returns (sync seconds, import
    /// seconds, blocks behind).
    fn catch_up(&mut self, node_bin: &Path, spec: &Path, blocks: u64) -> Result<(f64, f64, u64)> {
        let last = self.nodes.len() - 1;
        let chain_dir = |base: &Path| -> Result<PathBuf> {
            let chains = base.join("chains");
            let entry = std::fs::read_dir(&chains)?
                .next()
                .ok_or_else(|| Error::Check("no chain folder".into()))??;
            Ok(entry.path())
        };
        let base = PathBuf::from(&self.args[last][4]);
        let dave = chain_dir(&base)?;
        let snapshot = base.with_extension("snapshot");
        drop(self.nodes[last].take());
        for part in ["blocks", "state"] {
            copy_dir(&dave.join(part), &snapshot.join(part))?;
        }
        self.nodes[last] = Some(Process::start(node_bin, &self.args[last], &self.logs[last])?);
        let from = self.node(0).best()?;
        self.wait_for_best(from + blocks)?;

        drop(self.nodes[last].take());
        for part in ["blocks", "state"] {
            std::fs::remove_dir_all(dave.join(part))?;
            copy_dir(&snapshot.join(part), &dave.join(part))?;
        }
        let started = Instant::now();
        let node = Process::start(node_bin, &self.args[last], &self.logs[last])?;
        let restored = node.best()?;
        let target = self.node(0).best()?;
        wait_until("the restored validator to catch up", || Ok(node.best()? >= target))
            .map_err(|e| self.with_log(e))?;
        let sync_seconds = started.elapsed().as_secs_f64();
        self.nodes[last] = Some(node);

        // The same blocks from a file, into the old data.
        drop(self.nodes.iter_mut().map(Option::take).collect::<Vec<_>>());
        let file = base.with_extension("blocks");
        let source = PathBuf::from(&self.args[0][4]);
        let chain = ["--chain".to_string(), spec.display().to_string()];
        let status = Command::new(node_bin)
            .args(["export-blocks"])
            .args(&chain)
            .args(["--base-path".as_ref(), source.as_os_str()])
            .args(["--from", &(restored + 1).to_string(), "--to", &target.to_string()])
            .arg(&file)
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(Error::Check("export-blocks failed".into()));
        }
        let copy = base.with_extension("import");
        let copy_chain = copy.join("chains").join(dave.file_name().expect("a chain folder"));
        for part in ["blocks", "state"] {
            copy_dir(&snapshot.join(part), &copy_chain.join(part))?;
        }
        let started = Instant::now();
        let output = Command::new(node_bin)
            .args(["import-blocks"])
            .args(&chain)
            .args(["--base-path".as_ref(), copy.as_os_str()])
            .arg(&file)
            .output()?;
        let import_seconds = started.elapsed().as_secs_f64();
        if !output.status.success() {
            return Err(Error::Check(format!(
                "import-blocks failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok((sync_seconds, import_seconds, target - restored))
    }
}

/// Sends each node its batches, one per [`BATCH_INTERVAL`]; returns how many were refused.
fn submit(ports: &[u16], batches: Vec<Vec<Vec<String>>>) -> Result<u64> {
    let threads: Vec<_> = ports
        .iter()
        .zip(batches)
        .map(|(port, node_batches)| {
            let port = *port;
            std::thread::spawn(move || -> Result<u64> {
                let start = Instant::now();
                let mut refused = 0;
                for (i, batch) in node_batches.into_iter().enumerate() {
                    let due = start + BATCH_INTERVAL * i as u32;
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    let calls: Vec<Value> = batch
                        .iter()
                        .enumerate()
                        .map(|(id, xt)| json!({"jsonrpc": "2.0", "id": id, "method": "author_submitExtrinsic", "params": [xt]}))
                        .collect();
                    let answers = http_post(port, &Value::Array(calls))?;
                    refused += answers.as_array().map_or(0, |a| a.iter().filter(|r| r.get("error").is_some()).count())
                        as u64;
                }
                Ok(refused)
            })
        })
        .collect();
    let mut refused = 0;
    for thread in threads {
        refused += thread.join().map_err(|_| Error::Check("a sender thread panicked".into()))??;
    }
    Ok(refused)
}

/// The figures of a node's metrics at one moment.
struct Scrape {
    at: Instant,
    best: u64,
    transactions: u64,
    /// Cumulative counts of the proposal-to-decision histogram, by upper bound (seconds).
    buckets: Vec<(f64, u64)>,
}

fn scrape(port: u16) -> Result<Scrape> {
    let at = Instant::now();
    let text = http(port, "GET", "/metrics", None)?;
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse::<f64>().ok()))
            .unwrap_or(0.0) as u64
    };
    let prefix = "hyperion_consensus_proposal_to_decision_seconds_bucket{le=\"";
    let buckets = text
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|rest| {
            let (bound, count) = rest.split_once("\"}")?;
            let bound = if bound == "+Inf" { f64::INFINITY } else { bound.parse().ok()? };
            Some((bound, count.trim().parse::<f64>().ok()? as u64))
        })
        .collect();
    Ok(Scrape {
        at,
        best: value("hyperion_best_height "),
        transactions: value("hyperion_transactions_total "),
        buckets,
    })
}

/// The `q` quantile of a histogram (cumulative counts by upper bound), interpolated linearly
/// within its bucket, in the histogram's unit.
fn quantile(buckets: &[(f64, u64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0, |(_, c)| *c);
    if total == 0 {
        return f64::NAN;
    }
    let rank = q * total as f64;
    let mut lower = (0.0, 0u64);
    for &(bound, count) in buckets {
        if count as f64 >= rank {
            if bound.is_infinite() {
                return lower.0;
            }
            let within = (count - lower.1) as f64;
            let fraction = if within == 0.0 { 1.0 } else { (rank - lower.1 as f64) / within };
            return lower.0 + (bound - lower.0) * fraction;
        }
        lower = (bound, count);
    }
    lower.0
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `done` every 10 ms until it holds; an error after [`DEADLINE`].
fn wait_until(what: &str, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if matches!(done(), Ok(true)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Check(format!("timed out waiting for {what}")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn rpc_call(port: u16, method: &str, params: Value) -> Result<Value> {
    let answer = http_post(port, &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))?;
    match answer.get("result") {
        Some(result) => Ok(result.clone()),
        None => Err(Error::Check(format!("{method}: {answer}"))),
    }
}

fn http_post(port: u16, body: &Value) -> Result<Value> {
    let text = http(port, "POST", "/", Some(&body.to_string()))?;
    serde_json::from_str(&text).map_err(|e| Error::Check(format!("RPC answered no JSON ({e}): {text:.200}")))
}

/// One HTTP/1.1 request on a fresh connection; the response body.
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, rest) =
        text.split_once("\r\n\r\n").ok_or_else(|| Error::Check("a malformed HTTP answer".into()))?;
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return Ok(dechunk(rest));
    }
    Ok(rest.to_string())
}

/// The body of a chunked HTTP answer.
fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

/// Copies a folder tree (a stopped node's data).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        let buckets = [(0.001, 0), (0.002, 50), (0.005, 90), (0.01, 100), (f64::INFINITY, 100)];
        assert!((quantile(&buckets, 0.5) - 0.002).abs() < 1e-12);
        assert!((quantile(&buckets, 0.25) - 0.0015).abs() < 1e-12);
        assert!((quantile(&buckets, 0.99) - 0.0095).abs() < 1e-12);
        assert!(quantile(&[(0.001, 0), (f64::INFINITY, 0)], 0.5).is_nan());
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"), "abcdefg");
    }
}
