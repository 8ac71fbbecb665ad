//! The CLI's subcommands.

use anyhow::{anyhow, bail, Context as _};
use hyperion_primitives::{Call, EthPair, Extrinsic, Hash, Pair, SignedExtrinsic};
use hyperion_runtime::metadata::{encode_fields, RuntimeMetadata, TypeDef};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use parity_scale_codec::Encode;
use serde_json::{json, Map, Value};
use std::io::{Read, Write};
use std::path::Path;

use crate::chain_spec::ChainSpec;
use crate::cli::{ChainArgs, KeyCommand, OutputType};
use crate::service::{chain_dir, decode_block, Node, NodeOptions};

/// Largest block record accepted by `import-blocks`.
const MAX_IMPORT_BLOCK_BYTES: u32 = 64 << 20;

/// `key generate` / `key inspect`.
pub fn key(cmd: KeyCommand) -> anyhow::Result<()> {
    let (pair, phrase, output) = match cmd {
        KeyCommand::Generate { output_type } => {
            let (pair, phrase) = Pair::generate();
            (pair, Some(phrase), output_type)
        }
        KeyCommand::Inspect { uri, output_type } => (Pair::from_string(&uri)?, None, output_type),
        KeyCommand::Insert { chain, suri } => return key_insert(&chain, suri),
    };
    let public = pair.public();
    let info = json!({
        "secretPhrase": phrase,
        "secretSeed": format!("0x{}", hex::encode(pair.seed())),
        "publicKey": public.to_hex(),
        "address": public.address(),
        "scheme": "ed25519",
    });
    match output {
        OutputType::Json => println!("{info}"),
        OutputType::Text => {
            if let Some(phrase) = phrase {
                println!("Secret phrase:  {phrase}");
            }
            println!("Secret seed:    {}", info["secretSeed"].as_str().unwrap_or_default());
            println!("Public key:     {}", public.to_hex());
            println!("Address:        {}", public.address());
            println!("Scheme:         ed25519");
        }
    }
    Ok(())
}

/// `key insert`: stores a key in the chain's keystore and says whether it is a validator of
/// the chain's genesis set.
fn key_insert(chain: &ChainArgs, suri: Option<String>) -> anyhow::Result<()> {
    let suri = match suri {
        Some(suri) => suri,
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("reading the secret URI from stdin")?;
            line.trim().to_string()
        }
    };
    let pair = Pair::from_string(&suri).context("--suri")?;
    let spec = ChainSpec::load(&chain.chain())?;
    let keystore = crate::keystore::Keystore::open(&chain_dir(&chain.base_path_or_default(), &spec));
    let path = keystore.insert(&pair)?;
    let public = pair.public();
    println!("Inserted {} (address {}) into {}", public.to_hex(), public.address(), path.display());
    if !spec.validator_keys().contains(&public) {
        println!("Note: this key is not in the genesis validator set of chain {:?}", spec.id);
    }
    Ok(())
}

/// `build-spec`: the spec as JSON on stdout. `dev` and `local` are generated from code, so the
/// files in `chain-specs/` can be regenerated with this command.
pub fn build_spec(chain: &ChainArgs, raw: bool) -> anyhow::Result<()> {
    let runtime = crate::default_runtime();
    let spec = match chain.chain().as_str() {
        "dev" => crate::chain_spec::dev_spec(&runtime),
        "local" => crate::chain_spec::local_spec(&runtime),
        path => ChainSpec::load(path)?,
    };
    let spec = if raw { spec.to_raw(&runtime)? } else { spec };
    println!("{}", spec.to_json());
    Ok(())
}

/// `purge-chain`: deletes `<base>/chains/<id>` after confirmation.
pub fn purge_chain(chain: &ChainArgs, yes: bool) -> anyhow::Result<()> {
    let spec = ChainSpec::load(&chain.chain())?;
    let dir = chain_dir(&chain.base_path_or_default(), &spec);
    if !dir.exists() {
        println!("{} does not exist", dir.display());
        return Ok(());
    }
    if !yes {
        print!("Are you sure to remove {:?}? [y/N]: ", dir);
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y") {
            println!("Aborted");
            return Ok(());
        }
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    println!("{:?} removed.", dir);
    Ok(())
}

fn open_node(chain: &ChainArgs) -> anyhow::Result<std::sync::Arc<Node>> {
    let spec = ChainSpec::load(&chain.chain())?;
    let dir = chain_dir(&chain.base_path_or_default(), &spec);
    Ok(Node::open(
        spec,
        crate::default_runtime_with_threads(crate::default_execution_threads())?,
        &dir,
        NodeOptions { name: "cli".into(), ..NodeOptions::default() },
    )?)
}

/// `export-blocks`: `u32 LE length ++ SCALE(block)` per block.
pub fn export_blocks(
    chain: &ChainArgs,
    from: u64,
    to: Option<u64>,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let node = open_node(chain)?;
    let to = to.unwrap_or(node.best_header().number).min(node.best_header().number);
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    for number in from.max(1)..=to {
        let stored = node.block(number)?.ok_or_else(|| anyhow!("block {number} is missing"))?;
        let bytes = stored.block.encode();
        out.write_all(&(bytes.len() as u32).to_le_bytes())?;
        out.write_all(&bytes)?;
    }
    out.flush()?;
    eprintln!("Exported blocks {}..={to}", from.max(1));
    Ok(())
}

/// `import-blocks`: executes each block on the best block and stores it.
pub fn import_blocks(chain: &ChainArgs, input: Option<&Path>) -> anyhow::Result<()> {
    let node = open_node(chain)?;
    let mut reader: Box<dyn Read> = match input {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin().lock())),
    };
    let (mut imported, mut skipped) = (0u64, 0u64);
    loop {
        let mut len = [0u8; 4];
        match reader.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_le_bytes(len);
        if len > MAX_IMPORT_BLOCK_BYTES {
            bail!("record of {len} bytes exceeds the limit of {MAX_IMPORT_BLOCK_BYTES}: not a block export");
        }
        let mut bytes = vec![0u8; len as usize];
        reader.read_exact(&mut bytes).context("truncated block record")?;
        let block =
            decode_block(&bytes).map_err(|e| anyhow!("malformed block after {imported} imported: {e}"))?;
        let best = node.best_header();
        if block.header.number <= best.number {
            let known = node.block(block.header.number)?.map(|b| b.block.hash());
            if known != Some(block.hash()) {
                bail!("block {} ({}) conflicts with the stored chain", block.header.number, block.hash());
            }
            skipped += 1;
            continue;
        }
        node.import_block(block)?;
        imported += 1;
    }
    eprintln!("Imported {imported} blocks ({skipped} already known); best is #{}", node.best_header().number);
    Ok(())
}

/// Options of `tx` that are not call arguments.
struct TxOptions {
    signer: Option<String>,
    eth_signer: Option<String>,
    rpc_url: String,
    tip: u128,
    nonce: Option<u64>,
    wait: bool,
    args: Map<String, Value>,
}

fn parse_tx_options(rest: &[String]) -> anyhow::Result<(TxOptions, Vec<(String, String)>)> {
    let mut options = TxOptions {
        signer: None,
        eth_signer: None,
        rpc_url: "http://127.0.0.1:9944".into(),
        tip: 0,
        nonce: None,
        wait: true,
        args: Map::new(),
    };
    let mut raw_args = Vec::new();
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let name = flag.strip_prefix("--").ok_or_else(|| anyhow!("expected --name value, got {flag:?}"))?;
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        if name == "no-wait" {
            options.wait = false;
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().cloned().ok_or_else(|| anyhow!("--{name} needs a value"))?,
        };
        match name {
            "signer" => options.signer = Some(value),
            "eth-signer" => options.eth_signer = Some(value),
            "rpc-url" => options.rpc_url = value,
            "tip" => {
                options.tip = hyperion_runtime::metadata::parse_amount(&value).map_err(|e| anyhow!(e))?
            }
            "nonce" => options.nonce = Some(value.parse().context("--nonce")?),
            other => raw_args.push((other.replace('-', "_"), value)),
        }
    }
    Ok((options, raw_args))
}

/// A CLI string as the JSON value the generic encoder expects for `ty`.
fn cli_value(ty: &TypeDef, value: &str) -> anyhow::Result<Value> {
    Ok(match ty {
        TypeDef::Bool => Value::Bool(value.parse().context("expected true or false")?),
        TypeDef::Vec(_) => serde_json::from_str(value).context("expected a JSON array")?,
        TypeDef::Option(_) if value == "null" || value == "none" => Value::Null,
        TypeDef::Option(inner) => cli_value(inner, value)?,
        _ => Value::String(value.to_string()),
    })
}

/// The key `tx` signs with.
enum TxKey {
    Ed25519(Pair),
    Ethereum(EthPair),
}

impl TxKey {
    fn from_options(options: &TxOptions) -> anyhow::Result<Self> {
        match (&options.signer, &options.eth_signer) {
            (Some(uri), None) => Ok(Self::Ed25519(Pair::from_string(uri)?)),
            (None, Some(key)) => Ok(Self::Ethereum(EthPair::from_hex(key)?)),
            (Some(_), Some(_)) => bail!("give either --signer or --eth-signer, not both"),
            (None, None) => bail!(
                "a signer is required: --signer URI (an ed25519 key, e.g. //Alice) or \
                 --eth-signer 0xPRIVATE_KEY (an Ethereum account)"
            ),
        }
    }

    fn address(&self) -> hyperion_primitives::Address {
        match self {
            Self::Ed25519(pair) => pair.public().address(),
            Self::Ethereum(pair) => pair.address(),
        }
    }

    fn sign(&self, genesis: Hash, nonce: u64, tip: u128, call: Call) -> SignedExtrinsic {
        match self {
            Self::Ed25519(pair) => SignedExtrinsic::sign(pair, genesis, nonce, tip, call),
            Self::Ethereum(pair) => SignedExtrinsic::sign_ethereum(pair, genesis, nonce, tip, call),
        }
    }
}

/// `tx PALLET CALL --arg value ... (--signer URI | --eth-signer KEY)`.
pub async fn tx(pallet: &str, call: &str, rest: &[String]) -> anyhow::Result<bool> {
    let (mut options, raw_args) = parse_tx_options(rest)?;
    let key = TxKey::from_options(&options)?;
    let client = HttpClientBuilder::default().build(&options.rpc_url)?;
    let metadata: RuntimeMetadata =
        client.request("state_getMetadata", rpc_params![]).await.context("fetching metadata")?;
    let pallet_meta = metadata.pallet(pallet).ok_or_else(|| {
        anyhow!(
            "no pallet {pallet:?}; pallets: {}",
            metadata.pallets.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
        )
    })?;
    let call_meta = pallet_meta.calls.iter().find(|c| c.name == call).ok_or_else(|| {
        anyhow!(
            "no call {pallet}.{call}; calls: {}",
            pallet_meta.calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        )
    })?;
    for (name, value) in raw_args {
        let field = call_meta.fields.iter().find(|f| f.name == name).ok_or_else(|| {
            anyhow!(
                "{pallet}.{call} has no argument --{name}; arguments: {}",
                call_meta
                    .fields
                    .iter()
                    .map(|f| format!("--{} <{}>", f.name, f.ty))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        })?;
        options.args.insert(name, cli_value(&field.ty, &value).with_context(|| format!("--{}", field.name))?);
    }
    let args = encode_fields(&call_meta.fields, &Value::Object(options.args.clone()))
        .map_err(|e| anyhow!("argument {e}"))?;
    let genesis: Hash =
        client.request("chain_getBlockHash", rpc_params![0]).await.context("fetching the genesis hash")?;
    let nonce = match options.nonce {
        Some(n) => n,
        None => client.request("system_accountNextIndex", rpc_params![key.address()]).await?,
    };
    let raw_call = Call { pallet: pallet_meta.index, call: call_meta.index, args };
    let xt = Extrinsic::Native(key.sign(genesis, nonce, options.tip, raw_call));
    let hash: Hash = client
        .request("author_submitExtrinsic", rpc_params![format!("0x{}", hex::encode(xt.encode()))])
        .await
        .context("submitting")?;
    println!("Submitted {hash} (nonce {nonce}) from {}", key.address());
    if !options.wait {
        return Ok(true);
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let receipt: Value = client.request("chain_getReceipt", rpc_params![hash]).await?;
        if !receipt.is_null() {
            println!("{}", serde_json::to_string_pretty(&receipt)?);
            return Ok(receipt["success"].as_bool() == Some(true));
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{hash} was not included within 120 s");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
