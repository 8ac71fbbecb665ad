//! JSON-RPC over HTTP and WebSocket on one port, with Substrate's method names.
//!
//! | method | params | result |
//! |---|---|---|
//! | `system_name` / `system_version` / `system_chain` | | strings |
//! | `system_properties` | | the chain spec's `properties` |
//! | `system_health` | | `{peers, isSyncing, shouldHavePeers}` |
//! | `system_accountNextIndex` | address | next nonce, counting pooled extrinsics |
//! | `chain_getHeader` | hash? | header or `null` |
//! | `chain_getBlock` | hash? | `{block: {header, extrinsics: [hex]}, certificate}` or `null` |
//! | `chain_getBlockHash` | number? | hash or `null` |
//! | `chain_getFinalizedHead` | | hash |
//! | `chain_getReceipt` | extrinsic hash | receipt with decoded events, or `null` |
//! | `chain_subscribeNewHeads` / `chain_subscribeFinalizedHeads` | | headers (WebSocket) |
//! | `state_getStorage` | key hex, hash? | value hex or `null` |
//! | `state_queryStorageAt` | keys (hex, ≤ 1,024), hash? | `[{block, changes: [[key, value or null]]}]` |
//! | `state_getReadProof` | keys (hex), hash? | `{at, proof: [hex trie nodes]}` |
//! | `state_getMetadata` | | runtime metadata (JSON) |
//! | `state_call` | method (`pallet_query`), params object, hash? | query result (JSON) |
//! | `author_submitExtrinsic` | SCALE hex | extrinsic hash |
//! | `author_pendingExtrinsics` | | SCALE hex of pooled extrinsics |
//!
//! Headers are JSON with `number` as 0x-hex, as in Substrate. Refused extrinsics answer error
//! 1010 (invalid), 1013 (already known), 1014 (replacement underpriced) or 1016 (pool full),
//! with the reason in the message.

use hyperion_primitives::{Address, Hash, Header};
use jsonrpsee::server::{RpcModule, Server, ServerHandle};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use parity_scale_codec::Encode;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::mempool::PoolError;
use crate::service::{Node, SubmitError};

/// Keys one `state_queryStorageAt` reads at most.
const MAX_QUERY_KEYS: usize = 1024;
/// Largest request body accepted (an extrinsic is far smaller).
const MAX_REQUEST_BYTES: u32 = 4 << 20;
/// Largest response (a big block).
const MAX_RESPONSE_BYTES: u32 = 64 << 20;
/// Concurrent connections.
const MAX_CONNECTIONS: u32 = 256;

type RpcResult<T> = Result<T, ErrorObjectOwned>;

fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32602, message.into(), None::<()>)
}

fn internal(message: impl ToString) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32603, message.to_string(), None::<()>)
}

/// A header as JSON, with its hash.
pub fn header_json(header: &Header) -> Value {
    json!({
        "hash": header.hash(),
        "parentHash": header.parent_hash,
        "number": format!("0x{:x}", header.number),
        "timestamp": header.timestamp_ms,
        "stateRoot": header.state_root,
        "extrinsicsRoot": header.extrinsics_root,
        "receiptsRoot": header.receipts_root,
        "proposer": header.proposer,
        "gasUsed": format!("0x{:x}", header.gas_used),
        "weightUsed": header.weight_used,
    })
}

fn parse_hex(s: &str) -> RpcResult<Vec<u8>> {
    let digits = s.strip_prefix("0x").ok_or_else(|| invalid_params("expected 0x-prefixed hex"))?;
    hex::decode(digits).map_err(|e| invalid_params(format!("bad hex: {e}")))
}

/// The block number a `hash?` parameter at `position` points to (best when absent).
fn block_at(node: &Node, params: &[Value], position: usize) -> RpcResult<Option<u64>> {
    match params.get(position) {
        None | Some(Value::Null) => Ok(Some(node.best_header().number)),
        Some(Value::String(s)) => {
            let hash = Hash::from_str(s).map_err(|e| invalid_params(e.to_string()))?;
            Ok(node.number_of(&hash))
        }
        Some(other) => Err(invalid_params(format!("expected a block hash, got {other}"))),
    }
}

fn array_params(params: &Params<'_>) -> RpcResult<Vec<Value>> {
    if params.is_object() {
        return Err(invalid_params("positional parameters expected"));
    }
    Ok(params.parse::<Option<Vec<Value>>>()?.unwrap_or_default())
}

fn parse_number(value: &Value) -> RpcResult<u64> {
    match value {
        Value::Number(n) => n.as_u64().ok_or_else(|| invalid_params("expected a block number")),
        Value::String(s) => match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).map_err(|e| invalid_params(e.to_string())),
            None => s.parse().map_err(|_| invalid_params("expected a block number")),
        },
        _ => Err(invalid_params("expected a block number")),
    }
}

fn submit_error(e: SubmitError) -> ErrorObjectOwned {
    let code = match &e {
        SubmitError::Invalid(_)
        | SubmitError::Pool(PoolError::StaleNonce { .. } | PoolError::NonceGap { .. }) => 1010,
        SubmitError::Pool(PoolError::AlreadyKnown) => 1013,
        SubmitError::Pool(PoolError::ReplacementUnderpriced { .. }) => 1014,
        SubmitError::Pool(_) => 1016,
    };
    ErrorObjectOwned::owned(code, format!("Invalid Transaction: {e}"), Some(e.to_string()))
}

/// Builds the RPC module over `node`.
pub fn module(node: Arc<Node>) -> RpcModule<Arc<Node>> {
    let mut m = RpcModule::new(node);
    register_system(&mut m);
    register_chain(&mut m);
    register_state(&mut m);
    register_author(&mut m);
    crate::eth::register(&mut m);
    m
}

/// Registers a method with positional parameters, run on the blocking pool.
fn reg(m: &mut RpcModule<Arc<Node>>, name: &'static str, f: fn(&Node, Vec<Value>) -> RpcResult<Value>) {
    m.register_blocking_method(name, move |params, node, _| f(&node, array_params(&params)?))
        .expect("method names are unique");
}

fn register_system(m: &mut RpcModule<Arc<Node>>) {
    reg(m, "system_name", |_, _| Ok(json!("hyperion")));
    reg(m, "system_version", |_, _| Ok(json!(env!("CARGO_PKG_VERSION"))));
    reg(m, "system_chain", |node, _| Ok(json!(node.spec.name)));
    reg(m, "system_properties", |node, _| Ok(json!(node.spec.properties)));
    reg(m, "system_health", |node, _| {
        let sync = &node.sync;
        Ok(json!({
            "peers": sync.peers.load(std::sync::atomic::Ordering::Relaxed),
            "isSyncing": sync.is_syncing(node.best_header().number),
            "shouldHavePeers": sync.networked.load(std::sync::atomic::Ordering::Relaxed),
        }))
    });
    reg(m, "system_accountNextIndex", |node, p| {
        let who = p.first().and_then(Value::as_str).ok_or_else(|| invalid_params("expected an address"))?;
        let who = Address::from_str(who).map_err(|e| invalid_params(e.to_string()))?;
        Ok(json!(node.next_nonce(&who)))
    });
}

fn register_chain(m: &mut RpcModule<Arc<Node>>) {
    reg(m, "chain_getHeader", |node, p| {
        let Some(number) = block_at(node, &p, 0)? else { return Ok(Value::Null) };
        Ok(node.block(number).map_err(internal)?.map_or(Value::Null, |b| header_json(&b.block.header)))
    });
    reg(m, "chain_getBlock", |node, p| {
        let Some(number) = block_at(node, &p, 0)? else { return Ok(Value::Null) };
        let Some(stored) = node.block(number).map_err(internal)? else { return Ok(Value::Null) };
        let extrinsics: Vec<String> =
            stored.block.extrinsics.iter().map(|x| format!("0x{}", hex::encode(x.encode()))).collect();
        Ok(json!({
            "block": { "header": header_json(&stored.block.header), "extrinsics": extrinsics },
            "certificate": stored.block.certificate.map(|c| format!("0x{}", hex::encode(c))),
        }))
    });
    reg(m, "chain_getBlockHash", |node, p| {
        let number = match p.first() {
            None | Some(Value::Null) => node.best_header().number,
            Some(v) => parse_number(v)?,
        };
        Ok(node.block(number).map_err(internal)?.map_or(Value::Null, |b| json!(b.block.hash())))
    });
    reg(m, "chain_getFinalizedHead", |node, _| Ok(json!(node.finalized_header().hash())));
    reg(m, "chain_getReceipt", |node, p| {
        let hash =
            p.first().and_then(Value::as_str).ok_or_else(|| invalid_params("expected an extrinsic hash"))?;
        let hash = Hash::from_str(hash).map_err(|e| invalid_params(e.to_string()))?;
        let Some((header, index, receipt)) = node.receipt(&hash).map_err(internal)? else {
            return Ok(Value::Null);
        };
        let metadata = node.runtime.metadata();
        Ok(json!({
            "extrinsicHash": hash,
            "blockHash": header.hash(),
            "blockNumber": header.number,
            "index": index,
            "success": receipt.success,
            "error": receipt.error.map(|e| metadata.describe_error(&e)),
            "fee": receipt.fee.to_string(),
            "weight": receipt.weight,
            "events": receipt.events.iter().map(|e| metadata.decode_event(e.pallet, e.event, &e.data)).collect::<Vec<_>>(),
        }))
    });
    for (sub, notif, unsub) in [
        ("chain_subscribeNewHeads", "chain_newHead", "chain_unsubscribeNewHeads"),
        ("chain_subscribeFinalizedHeads", "chain_finalizedHead", "chain_unsubscribeFinalizedHeads"),
    ] {
        m.register_subscription(sub, notif, unsub, |_params, pending, node, _| async move {
            let mut heads = node.heads.subscribe();
            let sink = pending.accept().await?;
            loop {
                tokio::select! {
                    _ = sink.closed() => return Ok(()),
                    head = heads.recv() => match head {
                        Ok(header) => {
                            let message = serde_json::value::to_raw_value(&header_json(&header))?;
                            sink.send(message).await?;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                    },
                }
            }
        })
        .expect("subscription names are unique");
    }
}

fn register_state(m: &mut RpcModule<Arc<Node>>) {
    reg(m, "state_getMetadata", |node, _| Ok(json!(node.runtime.metadata())));
    reg(m, "state_getStorage", |node, p| {
        let key =
            parse_hex(p.first().and_then(Value::as_str).ok_or_else(|| invalid_params("expected a key"))?)?;
        let Some(number) = block_at(node, &p, 1)? else { return Ok(Value::Null) };
        let snapshot = node.snapshot(number).map_err(|e| invalid_params(e.to_string()))?;
        Ok(snapshot.get(&key).map_or(Value::Null, |v| json!(format!("0x{}", hex::encode(v)))))
    });
    reg(m, "state_queryStorageAt", |node, p| {
        let keys = parse_keys(&p, MAX_QUERY_KEYS)?;
        let Some(number) = block_at(node, &p, 1)? else { return Err(invalid_params("unknown block")) };
        let snapshot = node.snapshot(number).map_err(|e| invalid_params(e.to_string()))?;
        let mut changes = Vec::with_capacity(keys.len());
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        snapshot.read_many(&refs, &mut |i, value| {
            let value = value.map(|v| format!("0x{}", hex::encode(v)));
            changes.push(json!([format!("0x{}", hex::encode(refs[i])), value]));
        });
        let block = node.block(number).map_err(internal)?.map(|b| b.block.hash());
        Ok(json!([{ "block": block, "changes": changes }]))
    });
    reg(m, "state_getReadProof", |node, p| {
        let keys = parse_keys(&p, hyperion_state::MAX_PROOF_KEYS)?;
        let Some(number) = block_at(node, &p, 1)? else { return Err(invalid_params("unknown block")) };
        let proof = hyperion_state::StateDb::prove(node.state.as_ref(), number, &keys)
            .map_err(|e| invalid_params(e.to_string()))?;
        let at = node.block(number).map_err(internal)?.map(|b| b.block.hash());
        let proof: Vec<String> = proof.iter().map(|n| format!("0x{}", hex::encode(n))).collect();
        Ok(json!({ "at": at, "proof": proof }))
    });
    reg(m, "state_call", |node, p| {
        let method =
            p.first().and_then(Value::as_str).ok_or_else(|| invalid_params("expected a method name"))?;
        let args = p.get(1).cloned().unwrap_or(json!({}));
        let Some(number) = block_at(node, &p, 2)? else { return Err(invalid_params("unknown block")) };
        let snapshot = node.snapshot(number).map_err(|e| invalid_params(e.to_string()))?;
        node.runtime.query(snapshot, method, &args).map_err(|e| invalid_params(e.to_string()))
    });
}

/// The first parameter as an array of at most `max` hex keys.
fn parse_keys(p: &[Value], max: usize) -> RpcResult<Vec<Vec<u8>>> {
    let keys =
        p.first().and_then(Value::as_array).ok_or_else(|| invalid_params("expected an array of keys"))?;
    if keys.len() > max {
        return Err(invalid_params(format!("at most {max} keys")));
    }
    keys.iter()
        .map(|k| parse_hex(k.as_str().ok_or_else(|| invalid_params("keys are hex strings"))?))
        .collect()
}

fn register_author(m: &mut RpcModule<Arc<Node>>) {
    m.register_blocking_method("author_submitExtrinsic", |params, node, _| {
        let p = array_params(&params)?;
        let bytes = parse_hex(
            p.first().and_then(Value::as_str).ok_or_else(|| invalid_params("expected extrinsic hex"))?,
        )?;
        node.submit(&bytes).map(|h| json!(h)).map_err(submit_error)
    })
    .expect("method names are unique");
    m.register_blocking_method("author_pendingExtrinsics", |_, node, _| -> RpcResult<Value> {
        let pending = node.pool.lock().pending();
        Ok(json!(pending.iter().map(|x| format!("0x{}", hex::encode(x.encode()))).collect::<Vec<_>>()))
    })
    .expect("method names are unique");
}

/// Starts the server on `addr` with CORS for `cors` (`None`: any origin; `Some([])`: none).
pub async fn start(
    node: Arc<Node>,
    addr: SocketAddr,
    cors: Option<Vec<String>>,
) -> std::io::Result<(ServerHandle, SocketAddr)> {
    let cors_layer = match cors {
        None => CorsLayer::permissive(),
        Some(origins) => {
            let origins =
                origins.iter().filter_map(|o| o.parse().ok()).collect::<Vec<hyper::header::HeaderValue>>();
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([hyper::Method::POST, hyper::Method::GET])
                .allow_headers([hyper::header::CONTENT_TYPE])
        }
    };
    let config = jsonrpsee::server::ServerConfig::builder()
        .max_request_body_size(MAX_REQUEST_BYTES)
        .max_response_body_size(MAX_RESPONSE_BYTES)
        .max_connections(MAX_CONNECTIONS)
        .build();
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(cors_layer))
        .build(addr)
        .await?;
    let local = server.local_addr()?;
    let handle = server.start(module(node));
    tracing::info!(target: "hyperion::rpc", %local, "JSON-RPC (HTTP and WebSocket) at {local}");
    Ok((handle, local))
}
