//! The `hyperion` binary.

use anyhow::Context as _;
use clap::Parser;
use hyperion_node::chain_spec::ChainSpec;
use hyperion_node::cli::{Cli, Command, RunArgs};
use hyperion_node::mempool::PoolConfig;
use hyperion_node::network::{self, NetworkEvent, NetworkHandle};
use hyperion_node::service::{chain_dir, Node, NodeOptions};
use hyperion_node::{commands, metrics, rpc};
use hyperion_primitives::Pair;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

/// jemalloc: MPEF's execution threads free what others allocated, which glibc's malloc
/// serialises on its arena locks.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.run.log.as_deref());
    let result = match cli.command {
        None => run(cli.run),
        Some(Command::Key(cmd)) => commands::key(cmd),
        Some(Command::BuildSpec { chain, raw }) => commands::build_spec(&chain, raw),
        Some(Command::PurgeChain { chain, yes }) => commands::purge_chain(&chain, yes),
        Some(Command::ExportBlocks { chain, from, to, output }) => {
            commands::export_blocks(&chain, from, to, output.as_deref())
        }
        Some(Command::ImportBlocks { chain, input }) => commands::import_blocks(&chain, input.as_deref()),
        Some(Command::Tx { pallet, call, rest }) => {
            return match runtime().and_then(|rt| rt.block_on(commands::tx(&pallet, &call, &rest))) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("Error: {e:#}");
                    ExitCode::from(2)
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(str::to_string)
        .or_else(|| std::env::var("RUST_LOG").ok())
        // Gossip warns of every invalid message a peer sends; the node bans such peers, and
        // their messages must not fill the log.
        .unwrap_or_else(|| "info,libp2p_gossipsub=error".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("invalid --log filter {filter:?} ({e}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Runs the node until SIGINT or SIGTERM.
fn run(args: RunArgs) -> anyhow::Result<()> {
    let spec = ChainSpec::load(&args.chain.chain())?;
    let temp = if args.tmp || (args.chain.dev && args.chain.base_path.is_none()) {
        Some(
            tempfile::Builder::new()
                .prefix("hyperion-")
                .tempdir()
                .context("creating a temporary base path")?,
        )
    } else {
        None
    };
    let base = match &temp {
        Some(dir) => dir.path().to_path_buf(),
        None => args.chain.base_path_or_default(),
    };
    let dir = chain_dir(&base, &spec);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = args.name.clone().unwrap_or_else(|| "hyperion-node".into());
    tracing::info!(target: "hyperion", "Hyperion node {}", env!("CARGO_PKG_VERSION"));
    tracing::info!(target: "hyperion", chain = %spec.name, id = %spec.id, path = %dir.display(), "chain {} ({})", spec.name, spec.id);

    if args.unsafe_double_sign && spec.chain_type == hyperion_node::chain_spec::ChainType::Live {
        anyhow::bail!("--unsafe-double-sign is for test networks, not the live chain {:?}", spec.id);
    }
    let block_time_ms = args.block_time_ms.unwrap_or(spec.genesis.block_time_ms).max(1);
    let options = NodeOptions {
        pool: PoolConfig::default(),
        name,
        state_versions: args.state_pruning.versions(),
        state_cache_bytes: args.state_cache_size << 20,
        ..NodeOptions::default()
    };
    let threads = args.execution_threads.map_or_else(hyperion_node::default_execution_threads, usize::from);
    let chain_runtime = hyperion_node::default_runtime_with_threads(threads)?;
    tracing::info!(target: "hyperion", threads, "executing blocks on {threads} thread(s)");
    let node = Node::open(spec, chain_runtime, &dir, options)?;
    let proposer = validator_key(&args, &node, &dir)?;
    let best = node.best_header();
    tracing::info!(target: "hyperion", genesis = %node.genesis_hash, best = best.number, "best block #{} ({})", best.number, best.hash());

    let cors = match args.rpc_cors.as_deref() {
        Some("all") => None,
        Some(list) => Some(list.split(',').map(|s| s.trim().to_string()).collect()),
        None if args.chain.dev => None,
        None => Some(vec!["http://localhost".into(), "http://127.0.0.1".into(), "https://localhost".into()]),
    };
    runtime()?.block_on(async move {
        let network = start_network(&args, &node, &dir).await?;
        let rpc_addr = SocketAddr::from((interface(args.rpc_external), args.rpc_port));
        let (rpc, _) = rpc::start(node.clone(), rpc_addr, cors).await.with_context(|| format!("starting RPC on {rpc_addr}"))?;
        let metrics_task = if args.no_prometheus {
            None
        } else {
            let addr = SocketAddr::from((interface(args.prometheus_external), args.prometheus_port));
            Some(metrics::serve(node.metrics.clone(), addr).await.with_context(|| format!("serving metrics on {addr}"))?)
        };
        // A node that does not validate follows the chain by block sync.
        let (network, follower) = match (proposer.is_some(), network) {
            (false, Some((handle, events))) => (None, Some(tokio::spawn(hyperion_node::follow::run(node.clone(), handle, events)))),
            (_, network) => (network, None),
        };
        let author = proposer.map(|pair| {
            let address = pair.public().address();
            tracing::info!(target: "hyperion", %address, block_time_ms, "validating as {address}, a block at most every {block_time_ms} ms");
            let (node, consensus_dir) = (node.clone(), dir.join("consensus"));
            let faults = hyperion_node::consensus::Faults { double_sign: args.unsafe_double_sign };
            tokio::spawn(async move {
                if let Err(error) = hyperion_node::consensus::run(node, pair, consensus_dir, block_time_ms, network, faults).await {
                    tracing::error!(target: "hyperion", %error, "consensus stopped; stopping the node");
                    std::process::exit(1);
                }
            })
        });
        // The node stops on a signal, or when consensus or the follower ends (a panic included):
        // a node that no longer follows the chain must not look healthy.
        let worker = author.or(follower);
        let stopped = async {
            match worker {
                Some(task) => task.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown_signal() => tracing::info!(target: "hyperion", "shutting down"),
            ended = stopped => {
                let why = match ended {
                    Err(error) if error.is_panic() => "panicked",
                    _ => "ended",
                };
                tracing::error!(target: "hyperion", "the chain task {why}; stopping the node");
                std::process::exit(1);
            }
        }
        if let Some(task) = metrics_task {
            task.abort();
        }
        let _ = rpc.stop();
        anyhow::Ok(())
    })?;
    drop(temp);
    Ok(())
}

/// Starts the peer-to-peer network unless this is a dev chain without `--listen-addr`.
async fn start_network(
    args: &RunArgs,
    node: &Node,
    dir: &std::path::Path,
) -> anyhow::Result<Option<(NetworkHandle, tokio::sync::mpsc::Receiver<NetworkEvent>)>> {
    let listen = match (&args.listen_addr, args.chain.dev) {
        (Some(address), _) => address.clone(),
        (None, true) => return Ok(None),
        (None, false) => "/ip4/0.0.0.0/tcp/30333".parse().expect("a valid multiaddr"),
    };
    let key = match &args.node_key {
        Some(hex_seed) => {
            let bytes = hex::decode(hex_seed.trim_start_matches("0x")).context("--node-key is not hex")?;
            let seed: [u8; 32] =
                bytes.try_into().map_err(|_| anyhow::anyhow!("--node-key must be 32 bytes"))?;
            network::key_from_seed(seed)?
        }
        None => network::load_or_create_key(&dir.join("network"))?,
    };
    let mut bootnodes = args.bootnodes.clone();
    for (i, address) in node.spec.boot_nodes.iter().enumerate() {
        bootnodes.push(address.parse().with_context(|| format!("chain spec bootNodes[{i}]: {address:?}"))?);
    }
    let config = network::NetworkConfig {
        listen,
        bootnodes,
        protocol_id: format!("{}/{}", node.spec.protocol_id, &node.genesis_hash.to_hex()[2..10]),
        max_peers: args.max_peers,
        peers: node.sync.peers.clone(),
    };
    let (handle, events, addresses) = network::start(config, key).await?;
    for address in &addresses {
        tracing::info!(target: "hyperion", %address, peer_id = %handle.peer_id, "🌐 listening on {address}/p2p/{}", handle.peer_id);
    }
    node.set_network(handle.clone());
    Ok(Some((handle, events)))
}

/// All interfaces when `external`, else loopback only.
fn interface(external: bool) -> Ipv4Addr {
    if external {
        Ipv4Addr::UNSPECIFIED
    } else {
        Ipv4Addr::LOCALHOST
    }
}

/// The validator key, when this node produces blocks: a key of a genesis validator or of a
/// sequencer registered with staking (which signs once it is elected).
fn validator_key(args: &RunArgs, node: &Node, dir: &std::path::Path) -> anyhow::Result<Option<Pair>> {
    let spec = &node.spec;
    let Some(key) = args.dev_key() else {
        if !args.validator {
            return Ok(None);
        }
        let keystore = hyperion_node::keystore::Keystore::open(dir);
        let mut candidates = spec.validator_keys();
        let mut state = hyperion_node::service::SnapshotReader(node.best_snapshot());
        for pair in keystore.keys().context("--validator")? {
            if pallet_staking::KEY_OWNERS.get(&mut state, &pair.public()).is_some() {
                candidates.push(pair.public());
            }
        }
        return Ok(Some(keystore.validator_key(&candidates).context("--validator")?));
    };
    let pair = Pair::from_string(&format!("//{key:?}"))?;
    if !spec.validator_keys().contains(&pair.public()) {
        // A sequencer registered later signs once staking elects it.
        tracing::warn!(target: "hyperion", "//{key:?} ({}) is not a genesis validator of chain {:?}: it signs only once staking elects it", pair.public().to_hex(), spec.id);
    }
    Ok(Some(pair))
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
