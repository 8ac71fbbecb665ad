//! Real Ethereum clients against a real `hyperion --dev` node: web3.py and ethers v6 each deploy
//! the HyperionToken ERC20 (`tests/eth-clients`), transfer, wait for the receipt, decode the
//! `Transfer` event, read `balanceOf` with `eth_call`, hit a revert and read its reason, and
//! query `eth_getLogs`. The test installs what the clients need on first use: `npm ci` into
//! `tests/eth-clients/node_modules` and a Python venv with web3.py into
//! `tests/eth-clients/.venv` (both git-ignored; the registries must be reachable).

mod common;

use common::{repo_root, Node};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Installing the clients' packages may take this long on a cold machine.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// One client's whole run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

fn clients_dir() -> PathBuf {
    repo_root().join("tests/eth-clients")
}

/// Runs `program args` in `dir` with a deadline; returns its combined output, panicking with it
/// on failure.
fn run(program: &str, args: &[&str], dir: &Path, timeout: Duration) -> String {
    let output_path = tempfile::NamedTempFile::new().expect("a temp file");
    let output = output_path.reopen().expect("reopen the temp file");
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("clone the file handle"))
        .stderr(output)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e} (is it installed?)"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(output_path.path()).unwrap_or_default();
    match status {
        Some(status) if status.success() => text,
        Some(status) => panic!("{program} {args:?} failed ({status}):\n{text}"),
        None => panic!("{program} {args:?} did not finish within {timeout:?}:\n{text}"),
    }
}

/// `npm ci` unless the lock file's packages are installed already.
fn install_npm(dir: &Path) {
    let stamp = dir.join("node_modules/.hyperion-installed");
    let lock = std::fs::read(dir.join("package-lock.json")).expect("package-lock.json");
    if std::fs::read(&stamp).is_ok_and(|installed| installed == lock) {
        return;
    }
    run("npm", &["ci", "--no-audit", "--no-fund", "--loglevel=error"], dir, INSTALL_TIMEOUT);
    std::fs::write(stamp, lock).expect("write the install stamp");
}

/// A venv with `requirements.txt` installed, unless it is there already; returns its python.
fn install_venv(dir: &Path) -> PathBuf {
    let venv = dir.join(".venv");
    let python = venv.join("bin/python");
    let stamp = venv.join(".hyperion-installed");
    let requirements = std::fs::read(dir.join("requirements.txt")).expect("requirements.txt");
    if python.exists() && std::fs::read(&stamp).is_ok_and(|installed| installed == requirements) {
        return python;
    }
    run("python3", &["-m", "venv", ".venv"], dir, INSTALL_TIMEOUT);
    let pip = venv.join("bin/pip");
    let pip = pip.to_str().expect("a UTF-8 path");
    run(
        pip,
        &["install", "--quiet", "--disable-pip-version-check", "-r", "requirements.txt"],
        dir,
        INSTALL_TIMEOUT,
    );
    std::fs::write(stamp, requirements).expect("write the install stamp");
    python
}

#[test]
fn web3py_and_ethers_deploy_and_use_an_erc20() {
    let dir = clients_dir();
    install_npm(&dir);
    let python = install_venv(&dir);
    let mut node = Node::start_dev(None, 200);
    node.wait_for_best(1);
    let url = node.rpc_url();
    // One after the other: both send from the same dev account.
    let ethers = run("node", &["ethers_client.mjs", &url], &dir, CLIENT_TIMEOUT);
    assert!(ethers.contains("PASS"), "ethers did not pass:\n{ethers}\n{}", node.log_tail());
    let python = python.to_str().expect("a UTF-8 path");
    let web3 = run(python, &["web3_client.py", &url], &dir, CLIENT_TIMEOUT);
    assert!(web3.contains("PASS"), "web3.py did not pass:\n{web3}\n{}", node.log_tail());
    println!("ethers:\n{ethers}\nweb3.py:\n{web3}");
}
