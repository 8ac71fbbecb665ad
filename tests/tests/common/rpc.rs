//! A minimal blocking JSON-RPC client: one HTTP/1.1 POST per request over a fresh
//! `TcpStream` (`Connection: close`), plus typed wrappers for the methods the tests use.

use anyhow::{anyhow, bail, ensure, Context, Result};
use hyperion_primitives::{Address, Extrinsic};
use parity_scale_codec::Decode;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Socket read/write timeout of one RPC request.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// Responses larger than this are refused (no test asks for anything near it).
const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// The fields of a header that the tests compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderInfo {
    /// Block number.
    pub number: u64,
    /// Block hash, `0x` hex.
    pub hash: String,
    /// State root, `0x` hex.
    pub state_root: String,
}

impl HeaderInfo {
    fn from_json(header: &Value) -> Result<Self> {
        let text = |key: &str| -> Result<String> {
            let value = header.get(key).and_then(Value::as_str);
            Ok(value.with_context(|| format!("header has no string `{key}`: {header}"))?.to_owned())
        };
        Ok(Self {
            number: parse_hex_u64(&text("number")?)?,
            hash: text("hash")?,
            state_root: text("stateRoot")?,
        })
    }
}

/// Parses a `0x`-prefixed hex quantity, as Substrate encodes block numbers.
pub fn parse_hex_u64(text: &str) -> Result<u64> {
    let digits = text.strip_prefix("0x").with_context(|| format!("{text:?} is not 0x-hex"))?;
    u64::from_str_radix(digits, 16).with_context(|| format!("{text:?} is not 0x-hex"))
}

/// A blocking JSON-RPC client for a node on 127.0.0.1.
#[derive(Clone, Copy, Debug)]
pub struct Rpc {
    /// The node's RPC port.
    pub port: u16,
}

impl Rpc {
    /// Sends one request; returns the whole response object (`result` or `error`).
    pub fn request(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let (status, response) = http_post(self.port, &body)?;
        serde_json::from_slice(&response).with_context(|| {
            format!("{method}: HTTP {status}, body is not JSON: {}", String::from_utf8_lossy(&response))
        })
    }

    /// Sends one request; returns its `result`, or an error carrying the JSON-RPC `error`.
    pub fn call(&self, method: &str, params: Value) -> Result<Value> {
        let response = self.request(method, params)?;
        if let Some(error) = response.get("error") {
            bail!("{method} returned a JSON-RPC error: {error}");
        }
        response.get("result").cloned().with_context(|| format!("{method}: no result in {response}"))
    }

    /// The best block's header.
    pub fn best_header(&self) -> Result<HeaderInfo> {
        HeaderInfo::from_json(&self.call("chain_getHeader", json!([]))?)
    }

    /// The header of the block with `hash`.
    pub fn header(&self, hash: &str) -> Result<HeaderInfo> {
        HeaderInfo::from_json(&self.call("chain_getHeader", json!([hash]))?)
    }

    /// The hash of the best-chain block at `number`, if there is one.
    pub fn block_hash(&self, number: u64) -> Result<Option<String>> {
        match self.call("chain_getBlockHash", json!([number]))? {
            Value::Null => Ok(None),
            Value::String(hash) => Ok(Some(hash)),
            other => bail!("chain_getBlockHash({number}) returned {other}"),
        }
    }

    /// The free balance of `who`, from `state_call("balances_account")`.
    pub fn free_balance(&self, who: Address) -> Result<u128> {
        let account = self.call("state_call", json!(["balances_account", {"who": who.to_hex()}]))?;
        let free = account.get("free").and_then(Value::as_str);
        let free = free.with_context(|| format!("balances_account has no string `free`: {account}"))?;
        free.parse().with_context(|| format!("`free` is not a decimal integer: {free:?}"))
    }

    /// The next nonce of `who`.
    pub fn next_index(&self, who: Address) -> Result<u64> {
        let index = self.call("system_accountNextIndex", json!([who.to_hex()]))?;
        index.as_u64().with_context(|| format!("system_accountNextIndex returned {index}"))
    }

    /// The receipt of the extrinsic with `hash`, if it has been included.
    pub fn receipt(&self, hash: &str) -> Result<Option<Value>> {
        let receipt = self.call("chain_getReceipt", json!([hash]))?;
        Ok((!receipt.is_null()).then_some(receipt))
    }

    /// The hash of the native extrinsic signed by `sender` with `nonce`, found by scanning the
    /// best chain from block 1.
    pub fn find_extrinsic(&self, sender: Address, nonce: u64) -> Result<Option<String>> {
        let best = self.best_header()?.number;
        for number in 1..=best {
            let hash = self.block_hash(number)?.with_context(|| format!("no block at {number}"))?;
            let block = self.call("chain_getBlock", json!([hash]))?;
            let extrinsics = block["block"]["extrinsics"].as_array().cloned();
            for encoded in extrinsics.with_context(|| format!("block has no extrinsics: {block}"))? {
                let encoded = encoded.as_str().context("an extrinsic is not a string")?;
                let bytes = hex::decode(encoded.trim_start_matches("0x"))?;
                let extrinsic = Extrinsic::decode(&mut bytes.as_slice())
                    .map_err(|e| anyhow!("block {number} holds an undecodable extrinsic: {e}"))?;
                if let Extrinsic::Native(signed) = &extrinsic {
                    if signed.sender() == sender && signed.nonce == nonce {
                        return Ok(Some(extrinsic.hash().to_hex()));
                    }
                }
            }
        }
        Ok(None)
    }
}

/// POSTs `body` as JSON to `http://127.0.0.1:port/` with `Connection: close`; returns the
/// status code and the response body.
fn http_post(port: u16, body: &str) -> Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(RPC_TIMEOUT))?;
    stream.set_write_timeout(Some(RPC_TIMEOUT))?;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE_BYTES).read_to_end(&mut raw)?;
    parse_http_response(&raw)
}

/// Splits an HTTP/1.1 response into its status code and body, honouring `Content-Length` and
/// `Transfer-Encoding: chunked`.
fn parse_http_response(raw: &[u8]) -> Result<(u16, Vec<u8>)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").context("no end of HTTP headers")?;
    let head = std::str::from_utf8(&raw[..split]).context("HTTP headers are not UTF-8")?;
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).and_then(|code| code.parse().ok());
    let status: u16 = status.with_context(|| format!("bad status line {status_line:?}"))?;
    let (mut content_length, mut chunked) = (None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => content_length = Some(value.trim().parse::<usize>()?),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let body = match (chunked, content_length) {
        (true, _) => decode_chunked(rest)?,
        (false, Some(len)) => {
            ensure!(rest.len() >= len, "body has {} bytes, Content-Length says {len}", rest.len());
            rest[..len].to_vec()
        }
        (false, None) => rest.to_vec(),
    };
    Ok((status, body))
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn decode_chunked(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").context("truncated chunk size")?;
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).context("bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        ensure!(rest.len() >= size + 2, "truncated chunk");
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[test]
fn http_response_parsing() {
    let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
    assert_eq!(parse_http_response(raw).unwrap(), (200, b"{}".to_vec()));
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
    assert_eq!(parse_http_response(raw).unwrap(), (200, b"{\"a\":1}".to_vec()));
    assert!(parse_http_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}").is_err());
    assert!(parse_http_response(b"garbage").is_err());
}
