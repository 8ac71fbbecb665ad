//! Shared helpers for the end-to-end tests: finding the `hyperion` binary, spawning nodes that
//! are always killed (even when a test panics), running CLI commands with a timeout, a minimal
//! blocking JSON-RPC client over HTTP/1.1, and polling with a deadline.
//!
//! Every node binds 127.0.0.1 on ports picked free by the OS, writes its logs to its own temp
//! directory, and is SIGKILLed and reaped by [`Node`]'s `Drop`. Nothing here asserts on timing:
//! waits poll until [`DEADLINE`] and only then fail, with the node's log tail attached.

// Each test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

pub mod proxy;
mod rpc;

pub use rpc::{parse_hex_u64, HeaderInfo, Rpc};

use anyhow::Result;
use hyperion_primitives::{Address, Pair};
use serde_json::json;
use std::collections::HashSet;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long any wait polls before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// Pause between two polls.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How much of a node's log a failure message shows.
const LOG_TAIL_BYTES: usize = 6000;

/// The `hyperion` binary: `$HYPERION_BIN`, else `target/<profile>/hyperion` next to the
/// `deps/` folder holding this test binary.
pub fn node_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("HYPERION_BIN") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "HYPERION_BIN={} is not a file", path.display());
        return path;
    }
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let deps = exe.parent().expect("the test binary lives in a directory");
    let path = deps.join("..").join(format!("hyperion{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "node binary not found at {}: build it first: cargo build --workspace \
         (or point HYPERION_BIN at it)",
        path.display()
    );
    path
}

/// A local TCP port that was free a moment ago, never handed out twice by this process.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("bound socket has an address").port();
        if given.insert(port) {
            return port;
        }
    }
}

/// The address of a secret URI such as `//Alice`, as `0x` hex.
pub fn address_of(suri: &str) -> Address {
    Pair::from_string(suri).expect("a valid secret URI").public().address()
}

/// The repository root (this crate lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running `hyperion --dev` node, SIGKILLed and reaped when dropped.
pub struct Node {
    child: Child,
    /// Its JSON-RPC client.
    pub rpc: Rpc,
    logs: tempfile::TempDir,
}

impl Node {
    /// Starts `hyperion --dev` producing a block every `block_time_ms`, keeping its data in
    /// `base_path` (a throw-away temp dir when `None`), and waits until its RPC answers.
    pub fn start_dev(base_path: Option<&Path>, block_time_ms: u64) -> Node {
        let mut args = vec!["--dev".to_string(), "--block-time-ms".into(), block_time_ms.to_string()];
        if let Some(base_path) = base_path {
            args.extend(["--base-path".to_string(), base_path.display().to_string()]);
        }
        Self::start(&args)
    }

    /// Starts `hyperion ARGS... --rpc-port P --prometheus-port Q` on free ports and waits until
    /// its RPC answers.
    pub fn start(args: &[String]) -> Node {
        let rpc_port = free_port();
        let logs = tempfile::tempdir().expect("create a log dir");
        let mut command = Command::new(node_bin());
        command
            .args(args)
            .args(["--rpc-port", &rpc_port.to_string()])
            .args(["--prometheus-port", &free_port().to_string()]);
        let stdout = std::fs::File::create(logs.path().join("stdout")).expect("create log");
        let stderr = std::fs::File::create(logs.path().join("stderr")).expect("create log");
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let child = command.spawn().expect("spawn the hyperion node");
        let mut node = Node { child, rpc: Rpc { port: rpc_port }, logs };
        node.wait_for("the RPC server to answer system_health", |rpc| {
            rpc.call("system_health", json!([])).map(Some)
        });
        node
    }

    /// `http://127.0.0.1:<rpc port>`, for `hyperion tx --rpc-url`.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc.port)
    }

    /// Polls `probe` until it returns `Ok(Some(_))`. Panics with the last error and the node's
    /// log when the node exits or [`DEADLINE`] passes first.
    pub fn wait_for<T>(&mut self, what: &str, mut probe: impl FnMut(&Rpc) -> Result<Option<T>>) -> T {
        let deadline = Instant::now() + DEADLINE;
        let mut last;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("node exited ({status}) while waiting for {what}\n{}", self.log_tail());
            }
            match probe(&self.rpc) {
                Ok(Some(value)) => return value,
                Ok(None) => last = "not yet".into(),
                Err(err) => last = format!("{err:#}"),
            }
            if Instant::now() >= deadline {
                panic!("timed out after {DEADLINE:?} waiting for {what}; last: {last}\n{}", self.log_tail());
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits until the best block number is at least `number`; returns the best header then.
    pub fn wait_for_best(&mut self, number: u64) -> HeaderInfo {
        self.wait_for(&format!("best block >= {number}"), |rpc| {
            let header = rpc.best_header()?;
            Ok((header.number >= number).then_some(header))
        })
    }

    /// Unwraps `result`, or panics with `what` and the node's log tail.
    pub fn expect<T>(&self, result: Result<T>, what: &str) -> T {
        result.unwrap_or_else(|err| panic!("{what}: {err:#}\n{}", self.log_tail()))
    }

    /// SIGKILLs the node (no chance to flush or clean up) and reaps it.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the node");
        self.child.wait().expect("reap the node");
    }

    /// The last few kilobytes of the node's stdout and stderr.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["stdout", "stderr"] {
            let text = std::fs::read(self.logs.path().join(name)).unwrap_or_default();
            let start = text.len().saturating_sub(LOG_TAIL_BYTES);
            out.push_str(&format!("---- node {name} (tail) ----\n"));
            out.push_str(&String::from_utf8_lossy(&text[start..]));
            out.push('\n');
        }
        out
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Already dead if `kill` ran; errors only mean that.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a finished CLI command left behind.
#[derive(Debug)]
pub struct CmdOutput {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {}\n---- stdout ----\n{}\n---- stderr ----\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `hyperion ARGS...` to completion; kills it and panics if it takes longer than `timeout`.
pub fn run_cli(args: &[&str], timeout: Duration) -> CmdOutput {
    let mut child = Command::new(node_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the hyperion CLI");
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the CLI process") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let Some(status) = status else {
        panic!("`hyperion {}` did not finish within {timeout:?}\n---- stdout ----\n{stdout}\n---- stderr ----\n{stderr}", args.join(" "));
    };
    CmdOutput { status, stdout, stderr }
}

/// Reads a pipe to its end on a thread, so that a chatty child never blocks on a full pipe.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Every `0x` + 64-hex-digit token in `text` (candidate hashes printed by the CLI).
pub fn hashes_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(offset) = text[i..].find("0x") {
        let start = i + offset + 2;
        let end = start + bytes[start..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if end - start == 64 {
            out.push(text[start - 2..end].to_ascii_lowercase());
        }
        i = end;
    }
    out
}

/// Whether `text` contains `word` delimited by non-identifier characters (so `id` does not
/// match inside `invalid`).
pub fn mentions_word(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

#[test]
fn text_helpers() {
    let hash = format!("0x{}", "ab".repeat(32));
    assert_eq!(hashes_in(&format!("hash {hash}, short 0x12, long 0x{}", "1".repeat(66))), vec![hash]);
    assert!(mentions_word("missing field `id`", "id"));
    assert!(!mentions_word("invalid chain spec", "id"));
    assert_eq!(parse_hex_u64("0x1f").unwrap(), 31);
    assert!(parse_hex_u64("31").is_err());
}
