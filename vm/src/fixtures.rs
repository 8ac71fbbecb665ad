//! Loading the shared Ethereum fixtures (`../shared/fixtures`): accounts into a Hyperion state
//! through the EVM's key layout, and the mainnet blocks (pre-state, block hashes, environment,
//! transactions, the header's results). For tests and benchmarks; input is trusted, and
//! malformed fixtures panic with the file's path.

use alloy_rpc_types_eth::Transaction;
use hyperion_state::{ChangeSet, MemoryStateDb, Snapshot, StateDb};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::keys::{code_hash_key, code_key, storage_key};
use crate::{Address, BlockEnv, Bloom, Bytes, EvmLedger, Fork, Ledger, B256, KECCAK_EMPTY, U256};

/// The fixture folder named by `var`, else `../shared/fixtures/<default>` beside the project.
pub fn fixture_dir(var: &str, default: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures").join(default),
    }
}

/// An account to load: header, code, storage.
#[derive(Clone, Debug, Default)]
pub struct Genesis {
    /// Balance, wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Code (empty: none).
    pub code: Bytes,
    /// Storage slots and values.
    pub storage: Vec<(U256, U256)>,
}

/// A state holding `accounts` (block 0) and the changes that wrote it.
pub fn load(accounts: &[(Address, Genesis)]) -> (MemoryStateDb, Snapshot) {
    let mut changes = ChangeSet::new();
    for (address, account) in accounts {
        EvmLedger.write(&mut changes, *address, Some((account.balance, account.nonce))).unwrap();
        if !account.code.is_empty() {
            let hash = crate::keccak256(&account.code);
            changes.insert(code_key(hash), Some(account.code.to_vec()));
            changes.insert(code_hash_key(*address), Some(hash.to_vec()));
        }
        for (slot, value) in &account.storage {
            if !value.is_zero() {
                changes.insert(storage_key(*address, *slot), Some(value.to_be_bytes::<32>().to_vec()));
            }
        }
    }
    let db = MemoryStateDb::new(8);
    db.commit(0, &changes, None).unwrap();
    let snapshot = db.snapshot(0).unwrap();
    (db, snapshot)
}

/// Parses a `0x` hex quantity or data string.
pub fn hex_bytes(s: &str) -> Bytes {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let s = if s.len() % 2 == 1 { format!("0{s}") } else { s.to_string() };
    Bytes::from(
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<_>>(),
    )
}

/// Parses a `0x` hex quantity.
pub fn hex_u256(s: &str) -> U256 {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() {
        return U256::ZERO;
    }
    U256::from_str_radix(s, 16).unwrap()
}

/// Parses a `0x` hex quantity that fits a `u64`.
pub fn hex_u64(s: &str) -> u64 {
    u64::try_from(hex_u256(s)).unwrap()
}

/// Parses 32 bytes of `0x` hex (left-padded).
pub fn hex_b256(s: &str) -> B256 {
    B256::left_padding_from(&hex_bytes(s))
}

/// Parses a `0x` hex address.
pub fn hex_address(s: &str) -> Address {
    Address::from_slice(&hex_bytes(s))
}

/// The code hash of an account without code.
pub const EMPTY_CODE_HASH: B256 = KECCAK_EMPTY;

/// A JSON quantity that is either a hex string or a number.
fn quantity(value: &Value) -> U256 {
    match value {
        Value::String(s) => hex_u256(s),
        Value::Number(n) => U256::from(n.as_u64().expect("a small number")),
        Value::Null => U256::ZERO,
        other => panic!("not a quantity: {other}"),
    }
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The accounts of `dir/pre_state.json` (codes from `dir/bytecodes.json`).
pub fn pre_state(dir: &Path) -> Vec<(Address, Genesis)> {
    let pre = read_json(&dir.join("pre_state.json"));
    let codes = read_json(&dir.join("bytecodes.json"));
    let mut accounts = Vec::new();
    for (address, account) in pre.as_object().expect("pre_state") {
        let code = match (&account["code"], account["code_hash"].as_str()) {
            (Value::String(code), _) => hex_bytes(code),
            (_, Some(hash)) => {
                let entry = &codes[hash];
                let bytecode = hex_bytes(entry["bytecode"].as_str().expect("bytecode"));
                let len = entry["original_len"].as_str().map_or(bytecode.len(), |n| n.parse().unwrap());
                bytecode.slice(..len)
            }
            _ => Default::default(),
        };
        let storage = account["storage"]
            .as_object()
            .map(|slots| slots.iter().map(|(k, v)| (hex_u256(k), quantity(v))).collect())
            .unwrap_or_default();
        let genesis = Genesis {
            balance: quantity(&account["basic"]["balance"]),
            nonce: u64::try_from(quantity(&account["basic"]["nonce"])).unwrap(),
            code,
            storage,
        };
        accounts.push((hex_address(address), genesis));
    }
    accounts
}

/// A block number written in decimal, or in hex with `0x`.
fn block_number(text: &str) -> u64 {
    match text.strip_prefix("0x") {
        Some(_) => u64::try_from(hex_u256(text)).unwrap(),
        None => text.parse().unwrap_or_else(|e| panic!("block number {text}: {e}")),
    }
}

/// The hashes of `dir/block_hashes.json`, by block number (none if the file is absent).
pub fn block_hashes(dir: &Path) -> BTreeMap<u64, B256> {
    let path = dir.join("block_hashes.json");
    if !path.exists() {
        return BTreeMap::new();
    }
    let hashes = read_json(&path);
    hashes
        .as_object()
        .expect("block hashes")
        .iter()
        .map(|(number, hash)| (block_number(number), hex_b256(hash.as_str().unwrap())))
        .collect()
}

/// What a block's header says its transactions did.
pub struct Expected {
    /// `gasUsed`.
    pub gas_used: u64,
    /// `logsBloom`.
    pub bloom: Bloom,
    /// `receiptsRoot` (meaningful from Byzantium on).
    pub receipts_root: B256,
}

/// A fixture block: its fork, environment, transactions and the header's results.
pub struct MainnetBlock {
    /// The fork at its number and timestamp.
    pub fork: Fork,
    /// Its environment.
    pub env: BlockEnv,
    /// Its header's results.
    pub expected: Expected,
    /// Its transactions, as the JSON-RPC gives them.
    pub transactions: Vec<Transaction>,
}

/// Reads `dir/block.json`.
pub fn load_block(dir: &Path) -> Result<MainnetBlock, String> {
    let block = read_json(&dir.join("block.json"));
    let field = |name: &str| block[name].as_str().ok_or_else(|| format!("no {name}"));
    let number = hex_u64(field("number")?);
    let timestamp = hex_u64(field("timestamp")?);
    let fork = Fork::mainnet(number, timestamp);
    let env = BlockEnv {
        number,
        timestamp,
        beneficiary: hex_address(field("miner")?),
        gas_limit: hex_u64(field("gasLimit")?),
        base_fee: block["baseFeePerGas"].as_str().map_or(0, hex_u64),
        difficulty: hex_u256(field("difficulty")?),
        prevrandao: (fork >= Fork::Merge).then(|| hex_b256(field("mixHash").unwrap())),
        excess_blob_gas: block["excessBlobGas"].as_str().map(hex_u64),
    };
    let expected = Expected {
        gas_used: hex_u64(field("gasUsed")?),
        bloom: Bloom::from_slice(&hex_bytes(field("logsBloom")?)),
        receipts_root: hex_b256(field("receiptsRoot")?),
    };
    let transactions: Vec<Transaction> =
        serde_json::from_value(block["transactions"].clone()).map_err(|e| format!("transactions: {e}"))?;
    Ok(MainnetBlock { fork, env, expected, transactions })
}

/// The fixture blocks' folders, in block order.
pub fn block_dirs() -> Vec<PathBuf> {
    let root = fixture_dir("HYPERION_MAINNET_BLOCKS", "mainnet-blocks");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("mainnet blocks folder {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("block.json").exists())
        .collect();
    dirs.sort_by_key(|d| d.file_name().unwrap().to_string_lossy().parse::<u64>().unwrap_or(u64::MAX));
    assert!(!dirs.is_empty(), "no blocks in {}", root.display());
    dirs
}
