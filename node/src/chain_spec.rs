//! Chain specs: the JSON file that defines a chain (name, id, parameters, genesis).
//!
//! ```json
//! {
//!   "name": "Hyperion Development", "id": "dev", "chainType": "Development",
//!   "protocolId": "hyp", "bootNodes": [],
//!   "properties": { "tokenSymbol": "HYP", "tokenDecimals": 18 },
//!   "genesis": {
//!     "timestampMs": 0, "blockTimeMs": 1000, "epochLength": 600,
//!     "validators": [{ "name": "Alice", "publicKey": "0x88dc...", "weight": 1 }],
//!     "runtime": { "system": { "fees": {..}, "limits": {..} },
//!                  "balances": { "balances": [["0x<address>", "<amount>"]] } }
//!   }
//! }
//! ```
//!
//! `genesis.runtime` holds one section per pallet. The raw form (`build-spec --raw`) replaces it
//! with `genesis.raw`: every genesis storage key and value in hex, so that a chain's genesis does
//! not depend on the node's code that built it.

use hyperion_consensus::{ChainId, Config as ConsensusConfig, Timeouts, Validator, ValidatorSet};
use hyperion_primitives::{Hash, Pair, Public};
use hyperion_runtime::Runtime;
use hyperion_state::ChangeSet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

use crate::{Error, Result};

/// The embedded development chain spec.
pub const DEV_SPEC: &str = include_str!("../../chain-specs/dev.json");
/// The embedded local testnet chain spec (4 validators).
pub const LOCAL_SPEC: &str = include_str!("../../chain-specs/local.json");

/// Largest chain spec file accepted.
const MAX_SPEC_BYTES: u64 = 256 << 20;

/// A chain's kind, as in Substrate.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ChainType {
    /// A single-node development chain.
    Development,
    /// A local multi-node testnet.
    Local,
    /// A public testnet or mainnet.
    Live,
}

/// Display properties for wallets.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Properties {
    /// Token symbol, e.g. `HYP`.
    pub token_symbol: String,
    /// Token decimals; Hyperion's native token always has 18.
    pub token_decimals: u8,
}

/// A genesis validator.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidatorSpec {
    /// A human-readable name.
    pub name: String,
    /// Its ed25519 consensus key.
    pub public_key: String,
    /// Voting power until staking provides it.
    pub weight: u64,
}

/// The genesis section.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Genesis {
    /// Timestamp of the genesis block (part of the genesis hash).
    pub timestamp_ms: u64,
    /// Target time between blocks.
    pub block_time_ms: u64,
    /// Heights per epoch: the validator set changes only after a height that is a multiple
    /// of it (default 600).
    #[serde(default = "default_epoch_length")]
    pub epoch_length: u64,
    /// The initial validator set.
    pub validators: Vec<ValidatorSpec>,
    /// Per-pallet genesis configuration (the human-readable form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Map<String, Value>>,
    /// Genesis storage as hex keys and values (the raw form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<BTreeMap<String, String>>,
}

/// A chain spec.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChainSpec {
    /// Human-readable name.
    pub name: String,
    /// Short identifier; names the chain's data folder.
    pub id: String,
    /// Kind of chain.
    pub chain_type: ChainType,
    /// Network protocol identifier.
    pub protocol_id: String,
    /// Peers to connect to first (multiaddrs).
    pub boot_nodes: Vec<String>,
    /// Wallet display properties.
    pub properties: Properties,
    /// Genesis state and parameters.
    pub genesis: Genesis,
}

/// Heights per epoch when a chain spec does not say.
pub const DEFAULT_EPOCH_LENGTH: u64 = 600;

fn default_epoch_length() -> u64 {
    DEFAULT_EPOCH_LENGTH
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::ChainSpec { field: field.into(), message: message.into() }
}

impl ChainSpec {
    /// Parses and checks a chain spec; errors name the offending field.
    pub fn from_json(text: &str) -> Result<Self> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let spec: ChainSpec = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            invalid(
                if path == "." || path == "?" { "(document)".into() } else { path },
                e.inner().to_string(),
            )
        })?;
        spec.check()?;
        Ok(spec)
    }

    /// Loads `dev`, `local`, or a JSON file at a path.
    pub fn load(chain: &str) -> Result<Self> {
        match chain {
            "dev" => Self::from_json(DEV_SPEC),
            "local" => Self::from_json(LOCAL_SPEC),
            path => {
                let path = Path::new(path);
                let io = |e: std::io::Error| Error::Io(format!("chain spec {}: {e}", path.display()));
                let size = std::fs::metadata(path).map_err(io)?.len();
                if size > MAX_SPEC_BYTES {
                    return Err(invalid("(file)", format!("{size} bytes, at most {MAX_SPEC_BYTES}")));
                }
                Self::from_json(&std::fs::read_to_string(path).map_err(io)?)
            }
        }
    }

    fn check(&self) -> Result<()> {
        if self.id.is_empty() || !self.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(invalid("id", "must be non-empty and use only letters, digits, '-' and '_'"));
        }
        if self.properties.token_decimals != 18 {
            return Err(invalid("properties.tokenDecimals", "the native token has 18 decimals"));
        }
        let g = &self.genesis;
        if g.block_time_ms == 0 {
            return Err(invalid("genesis.blockTimeMs", "must be positive"));
        }
        if g.validators.is_empty() {
            return Err(invalid("genesis.validators", "at least one validator is needed"));
        }
        if g.epoch_length == 0 {
            return Err(invalid("genesis.epochLength", "must be positive"));
        }
        for (i, v) in g.validators.iter().enumerate() {
            parse_public(&v.public_key)
                .map_err(|m| invalid(format!("genesis.validators[{i}].publicKey"), m))?;
            if v.weight == 0 {
                return Err(invalid(format!("genesis.validators[{i}].weight"), "must be positive"));
            }
        }
        self.validator_set()?;
        match (&g.runtime, &g.raw) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err(invalid("genesis", "exactly one of genesis.runtime and genesis.raw is needed")),
        }
    }

    /// The validators' public keys.
    pub fn validator_keys(&self) -> Vec<Public> {
        self.genesis.validators.iter().filter_map(|v| parse_public(&v.public_key).ok()).collect()
    }

    /// The consensus validator set of the first height: the genesis validators, their weight as
    /// voting power (until staking provides the set at an epoch boundary).
    pub fn validator_set(&self) -> Result<ValidatorSet> {
        let validators = self
            .genesis
            .validators
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let public = parse_public(&v.public_key)
                    .map_err(|m| invalid(format!("genesis.validators[{i}].publicKey"), m))?;
                Ok(Validator { public, power: v.weight })
            })
            .collect::<Result<Vec<_>>>()?;
        ValidatorSet::new(validators).map_err(|e| invalid("genesis.validators", e.to_string()))
    }

    /// The consensus engine's configuration for this chain, whose genesis hash is `genesis`,
    /// with blocks every `block_time_ms` (the spec's, or `--block-time-ms`). Round timeouts
    /// follow the block time: a proposal is awaited 3 block times (at least
    /// 500 ms), votes 1 block time (at least 200 ms), each growing by half a block time per
    /// round.
    pub fn consensus_config(&self, genesis: Hash, block_time_ms: u64) -> ConsensusConfig {
        let block = block_time_ms;
        // Each failed round waits longer, by enough to matter when blocks are slow to build,
        // send or execute (CometBFT adds 500 ms).
        let step = (block / 2).max(200);
        let timeouts = Timeouts {
            propose_ms: block.saturating_mul(3).max(500),
            propose_delta_ms: step,
            prevote_ms: block.max(200),
            prevote_delta_ms: step,
            precommit_ms: block.max(200),
            precommit_delta_ms: step,
        };
        ConsensusConfig { chain: ChainId(genesis), timeouts, epoch_length: self.genesis.epoch_length }
    }

    /// The genesis storage.
    pub fn genesis_changes(&self, runtime: &Runtime) -> Result<ChangeSet> {
        if let Some(raw) = &self.genesis.raw {
            return raw
                .iter()
                .map(|(k, v)| {
                    let key = parse_hex(k).map_err(|m| invalid(format!("genesis.raw.{k}"), m))?;
                    let value = parse_hex(v).map_err(|m| invalid(format!("genesis.raw.{k}"), m))?;
                    Ok((key, Some(value)))
                })
                .collect();
        }
        let mut sections = self.genesis.runtime.clone().expect("checked: runtime or raw");
        // Staking's epochs are consensus's: its epoch length defaults to the spec's.
        if runtime.metadata().pallet("staking").is_some() {
            let staking = sections.entry("staking").or_insert_with(|| Value::Object(Map::new()));
            if let Some(staking) = staking.as_object_mut() {
                let config = staking.entry("config").or_insert_with(|| Value::Object(Map::new()));
                if let Some(config) = config.as_object_mut() {
                    config.entry("epochLength").or_insert_with(|| Value::from(self.genesis.epoch_length));
                }
            }
        }
        runtime.genesis_changes(&sections).map_err(|e| match e {
            hyperion_runtime::Error::Genesis(g) => invalid(format!("genesis.runtime.{}", g.field), g.message),
            other => Error::Runtime(other),
        })
    }

    /// The same spec with its genesis in raw form.
    pub fn to_raw(&self, runtime: &Runtime) -> Result<Self> {
        let changes = self.genesis_changes(runtime)?;
        let raw = changes
            .into_iter()
            .filter_map(|(k, v)| {
                v.map(|v| (format!("0x{}", hex::encode(k)), format!("0x{}", hex::encode(v))))
            })
            .collect();
        let mut spec = self.clone();
        spec.genesis.runtime = None;
        spec.genesis.raw = Some(raw);
        Ok(spec)
    }

    /// Pretty JSON, as `build-spec` prints it.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a chain spec serializes")
    }
}

fn parse_hex(s: &str) -> std::result::Result<Vec<u8>, String> {
    let digits = s.strip_prefix("0x").ok_or("expected 0x-prefixed hex")?;
    hex::decode(digits).map_err(|e| e.to_string())
}

fn parse_public(s: &str) -> std::result::Result<Public, String> {
    let bytes = parse_hex(s)?;
    let key = <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| "an ed25519 public key is 32 bytes".to_string())?;
    Ok(Public(key))
}

/// The development chain spec, as the node's code generates it (`chain-specs/dev.json` is its
/// output): `//Alice` validates; `//Alice`..`//Ferdie` hold 1,000,000 tokens each.
pub fn dev_spec(runtime: &Runtime) -> ChainSpec {
    generated_spec(runtime, "Hyperion Development", "dev", ChainType::Development, &["Alice"])
}

/// The local testnet chain spec: `//Alice`..`//Dave` validate.
pub fn local_spec(runtime: &Runtime) -> ChainSpec {
    generated_spec(
        runtime,
        "Hyperion Local Testnet",
        "local",
        ChainType::Local,
        &["Alice", "Bob", "Charlie", "Dave"],
    )
}

/// The EIP-155 chain id of the embedded `dev` and `local` chains.
pub const DEV_CHAIN_ID: u64 = 424_242;

/// The ten accounts of the development mnemonic "test test test test test test test test test
/// test test junk" (`m/44'/60'/0'/0/i`), which Ethereum tools know; each holds 10,000 tokens on
/// the embedded chains.
pub const ETH_DEV_ACCOUNTS: [&str; 10] = [
    "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
    "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
    "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc",
    "0x90f79bf6eb2c4f870365e785982e1f101e93b906",
    "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65",
    "0x9965507d1a55bcc2695c58ba16fb37d819b0a4dc",
    "0x976ea74026e726554db657fa54763abd0c3a0aa9",
    "0x14dc79964da2c08b23698b3d3cc7ca32193d9955",
    "0x23618e81e3f5cdf7f54c3d65f7fbc0abf5b21e8f",
    "0xa0ee7a142d267c1f36714e4a8f75612f20a79720",
];

fn generated_spec(
    runtime: &Runtime,
    name: &str,
    id: &str,
    chain_type: ChainType,
    validators: &[&str],
) -> ChainSpec {
    let dev = |n: &str| Pair::from_string(&format!("//{n}")).expect("dev keys derive");
    let endowed: Vec<Value> = ["Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"]
        .iter()
        .map(|n| serde_json::json!([dev(n).public().address(), "1e24"]))
        .collect();
    let mut endowed = endowed;
    endowed.extend(ETH_DEV_ACCOUNTS.iter().map(|a| serde_json::json!([a, "1e22"])));
    let mut sections = runtime.default_genesis();
    sections.insert("balances".into(), serde_json::json!({ "balances": endowed }));
    sections.insert("evm".into(), serde_json::json!({ "chainId": DEV_CHAIN_ID, "fork": "Prague" }));
    // The validators are staking's genesis sequencers, each bonding the minimum self-bond
    // (its voting power is its stake in whole tokens).
    let staking_config =
        pallet_staking::StakingConfig { epoch_length: DEFAULT_EPOCH_LENGTH, ..Default::default() };
    let self_bond = staking_config.min_self_bond;
    let weight = (self_bond / hyperion_primitives::UNIT) as u64;
    let sequencers: Vec<Value> = validators
        .iter()
        .map(|n| {
            serde_json::json!({
                "operator": dev(n).public().address(),
                "consensusKey": dev(n).public(),
                "selfBond": self_bond.to_string(),
                "commission": 50_000_000,
            })
        })
        .collect();
    sections.insert(
        "staking".into(),
        serde_json::json!({ "config": staking_config, "sequencers": sequencers, "delegations": [] }),
    );
    ChainSpec {
        name: name.into(),
        id: id.into(),
        chain_type,
        protocol_id: "hyp".into(),
        boot_nodes: vec![],
        properties: Properties { token_symbol: "HYP".into(), token_decimals: 18 },
        genesis: Genesis {
            timestamp_ms: 0,
            block_time_ms: 1000,
            epoch_length: DEFAULT_EPOCH_LENGTH,
            validators: validators
                .iter()
                .map(|n| ValidatorSpec { name: n.to_string(), public_key: dev(n).public().to_hex(), weight })
                .collect(),
            runtime: Some(sections),
            raw: None,
        },
    }
}

/// Genesis hash of a spec under `runtime` (without opening any database).
pub fn genesis_hash(spec: &ChainSpec, runtime: &Runtime) -> Result<Hash> {
    let changes = spec.genesis_changes(runtime)?;
    let root = hyperion_state::trie_root(changes.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v))));
    Ok(Runtime::genesis_header(root, spec.genesis.timestamp_ms).hash())
}
