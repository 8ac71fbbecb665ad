//! The `hyperion` command line, with Substrate's conventions.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Hyperion node.
#[derive(Debug, Parser)]
#[command(
    name = "hyperion",
    version,
    about = "Hyperion blockchain node",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A subcommand; without one, the node runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the running node.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Which chain and where its data lives.
#[derive(Debug, Args, Clone)]
pub struct ChainArgs {
    /// Development chain: `--chain dev`, and (for the node) `--validator --alice`, a temporary
    /// base path unless one is given, and RPC CORS open to any origin.
    #[arg(long)]
    pub dev: bool,
    /// Chain spec: `dev`, `local`, or the path of a JSON file.
    #[arg(long, value_name = "CHAIN")]
    pub chain: Option<String>,
    /// Data folder; the chain's data goes to `<base-path>/chains/<chain id>`.
    #[arg(long, short = 'd', value_name = "PATH")]
    pub base_path: Option<PathBuf>,
}

impl ChainArgs {
    /// The chain spec name or path (`dev` with `--dev`, `local` by default).
    pub fn chain(&self) -> String {
        match (&self.chain, self.dev) {
            (Some(chain), _) => chain.clone(),
            (None, true) => "dev".into(),
            (None, false) => "local".into(),
        }
    }

    /// The base path given, or `$HOME/.local/share/hyperion`.
    pub fn base_path_or_default(&self) -> PathBuf {
        self.base_path.clone().unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
            home.join(".local/share/hyperion")
        })
    }
}

/// A development validator key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DevKey {
    /// `//Alice`
    Alice,
    /// `//Bob`
    Bob,
    /// `//Charlie`
    Charlie,
    /// `//Dave`
    Dave,
    /// `//Eve`
    Eve,
    /// `//Ferdie`
    Ferdie,
}

/// Options of the running node.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The chain.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Keep data in a temporary folder, deleted at exit.
    #[arg(long)]
    pub tmp: bool,
    /// The node's name, as reported by RPC.
    #[arg(long)]
    pub name: Option<String>,
    /// Validate: sign consensus messages and propose blocks, with the keystore's validator key
    /// (`hyperion key insert`), or the development key given by `--alice`, `--bob`, ...
    #[arg(long)]
    pub validator: bool,
    /// Use `//Alice` as validator key (implies `--validator`).
    #[arg(long, conflicts_with_all = ["bob", "charlie", "dave", "eve", "ferdie"])]
    pub alice: bool,
    /// Use `//Bob` as validator key (implies `--validator`).
    #[arg(long)]
    pub bob: bool,
    /// Use `//Charlie` as validator key (implies `--validator`).
    #[arg(long)]
    pub charlie: bool,
    /// Use `//Dave` as validator key (implies `--validator`).
    #[arg(long)]
    pub dave: bool,
    /// Use `//Eve` as validator key (implies `--validator`).
    #[arg(long)]
    pub eve: bool,
    /// Use `//Ferdie` as validator key (implies `--validator`).
    #[arg(long)]
    pub ferdie: bool,
    /// Test networks only: sign a conflicting prevote alongside each prevote for a block, so
    /// that the network's punishment of double signing can be seen. Refused on live chains.
    #[arg(long, hide = true)]
    pub unsafe_double_sign: bool,
    /// Milliseconds between blocks (default: the chain spec's `genesis.blockTimeMs`).
    #[arg(long, value_name = "MS")]
    pub block_time_ms: Option<u64>,
    /// Where the peer-to-peer network listens, a multiaddr such as `/ip4/0.0.0.0/tcp/30333`
    /// (default: that one, or no network at all for the dev chain).
    #[arg(long, value_name = "MULTIADDR")]
    pub listen_addr: Option<libp2p::Multiaddr>,
    /// Peers to connect to at start, as multiaddrs (`/ip4/10.0.0.1/tcp/30333`), besides the
    /// chain spec's `bootNodes`.
    #[arg(long, value_name = "MULTIADDR", num_args = 1..)]
    pub bootnodes: Vec<libp2p::Multiaddr>,
    /// The network key as 64 hex characters (an ed25519 seed) instead of the one kept in
    /// `<base>/chains/<id>/network/secret_ed25519`.
    #[arg(long, value_name = "HEX")]
    pub node_key: Option<String>,
    /// Most peers to be connected to.
    #[arg(long, default_value_t = 50)]
    pub max_peers: u32,
    /// JSON-RPC port (HTTP and WebSocket).
    #[arg(long, default_value_t = 9944)]
    pub rpc_port: u16,
    /// Listen for RPC on all interfaces instead of 127.0.0.1 (put a proxy or firewall in front).
    #[arg(long)]
    pub rpc_external: bool,
    /// Origins allowed to call RPC from a browser: `all`, or a comma-separated list
    /// (default: localhost origins; `all` with --dev).
    #[arg(long, value_name = "ORIGINS")]
    pub rpc_cors: Option<String>,
    /// Prometheus metrics port.
    #[arg(long, default_value_t = 9615)]
    pub prometheus_port: u16,
    /// Serve metrics on all interfaces instead of 127.0.0.1.
    #[arg(long)]
    pub prometheus_external: bool,
    /// Do not serve metrics.
    #[arg(long)]
    pub no_prometheus: bool,
    /// How many recent states stay readable (for RPC queries at a block and proofs):
    /// `archive` keeps all, or a number of blocks.
    #[arg(long, value_name = "archive|N", default_value = "256")]
    pub state_pruning: StatePruning,
    /// MiB of the state store's files also kept in memory (huge pages) to serve reads: the
    /// compacted base first, then the newest segments. 0 reads everything through the files.
    #[arg(long, value_name = "MiB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(0..=1 << 20))]
    pub state_cache_size: u64,
    /// Threads that execute a block's transactions in parallel (MPEF); 1 runs them one after
    /// the other. The result is the same for any number. Default: one per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub execution_threads: Option<u16>,
    /// Log filter, e.g. `info` or `info,hyperion::pool=debug`.
    #[arg(long, short = 'l', value_name = "FILTER")]
    pub log: Option<String>,
}

impl RunArgs {
    /// The validator key requested with `--alice`.. (or implied by `--dev`).
    pub fn dev_key(&self) -> Option<DevKey> {
        let flags = [
            (self.alice, DevKey::Alice),
            (self.bob, DevKey::Bob),
            (self.charlie, DevKey::Charlie),
            (self.dave, DevKey::Dave),
            (self.eve, DevKey::Eve),
            (self.ferdie, DevKey::Ferdie),
        ];
        flags.iter().find(|(set, _)| *set).map(|(_, key)| *key).or(self.chain.dev.then_some(DevKey::Alice))
    }
}

/// `--state-pruning`: keep every state, or the last N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatePruning {
    /// Keep every state.
    Archive,
    /// Keep the states of the last N blocks.
    Last(u64),
}

impl StatePruning {
    /// How many versions the state store keeps readable.
    pub fn versions(&self) -> u64 {
        match self {
            StatePruning::Archive => u64::MAX,
            StatePruning::Last(n) => *n,
        }
    }
}

impl std::str::FromStr for StatePruning {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "archive" => Ok(StatePruning::Archive),
            n => match n.parse::<u64>() {
                Ok(n) if n >= 1 => Ok(StatePruning::Last(n)),
                _ => Err(format!("expected `archive` or a number of blocks (at least 1), got {s:?}")),
            },
        }
    }
}

/// Output format of key commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputType {
    /// Human-readable.
    #[default]
    Text,
    /// JSON.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Key utilities.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Prints a chain spec as JSON.
    BuildSpec {
        /// The chain.
        #[command(flatten)]
        chain: ChainArgs,
        /// Print genesis as raw storage (hex keys and values).
        #[arg(long)]
        raw: bool,
    },
    /// Deletes a chain's data.
    PurgeChain {
        /// The chain.
        #[command(flatten)]
        chain: ChainArgs,
        /// Do not ask for confirmation.
        #[arg(short = 'y')]
        yes: bool,
    },
    /// Writes blocks to a file (length-prefixed SCALE), for `import-blocks`.
    ExportBlocks {
        /// The chain.
        #[command(flatten)]
        chain: ChainArgs,
        /// First block (default 1).
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Last block (default: best).
        #[arg(long)]
        to: Option<u64>,
        /// Output file (default: stdout).
        output: Option<PathBuf>,
    },
    /// Executes and imports blocks from a file written by `export-blocks`.
    ImportBlocks {
        /// The chain.
        #[command(flatten)]
        chain: ChainArgs,
        /// Input file (default: stdin).
        input: Option<PathBuf>,
    },
    /// Encodes a call from the node's metadata, signs it, submits it and waits for its result:
    /// `hyperion tx balances transfer --dest 0x.. --value 10 --signer //Alice`.
    /// Options: `--signer URI` (an ed25519 key) or `--eth-signer 0xKEY` (an Ethereum account's
    /// private key: the extrinsic comes from its Ethereum address), `--rpc-url URL` (default
    /// http://127.0.0.1:9944),
    /// `--tip AMOUNT`, `--nonce N`, `--no-wait`; every other `--name value` is a call argument.
    #[command(disable_help_flag = true)]
    Tx {
        /// Pallet name, e.g. `balances`.
        pallet: String,
        /// Call name, e.g. `transfer`.
        call: String,
        /// `--argument value` pairs and options.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
}

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generates a new ed25519 key from a fresh 12-word phrase.
    Generate {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output_type: OutputType,
    },
    /// Shows the public key and address of a secret URI (`//Alice`, a phrase, a 0x seed).
    Inspect {
        /// The secret URI.
        uri: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output_type: OutputType,
    },
    /// Adds a validator key to the chain's keystore (`<base-path>/chains/<id>/keystore`); a
    /// node started with `--validator` signs with it.
    Insert {
        /// The chain and base path.
        #[command(flatten)]
        chain: ChainArgs,
        /// The secret URI (`//Alice`, a phrase, a 0x seed); read from stdin when not given.
        #[arg(long)]
        suri: Option<String>,
    },
}
