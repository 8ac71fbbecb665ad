//! Chain specs: `build-spec --chain dev` prints the repository's `chain-specs/dev.json`, and a
//! malformed spec file stops the node at start-up with an error naming the offending field.

mod common;

use common::{free_port, mentions_word, repo_root, run_cli, CmdOutput};
use hyperion_primitives::Address;
use serde_json::{json, Value};
use std::time::Duration;

/// A node must reject a malformed spec well within this.
const REJECT_TIMEOUT: Duration = Duration::from_secs(30);

fn repo_dev_spec() -> Value {
    let path = repo_root().join("chain-specs").join("dev.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

#[test]
fn build_spec_dev_equals_the_embedded_dev_json() {
    let out = run_cli(&["build-spec", "--chain", "dev"], REJECT_TIMEOUT);
    assert!(out.status.success(), "hyperion build-spec --chain dev failed\n{out}");
    let printed: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("build-spec output is not JSON ({e})\n{out}"));
    assert_eq!(printed, repo_dev_spec(), "build-spec --chain dev differs from chain-specs/dev.json");

    let raw = run_cli(&["build-spec", "--chain", "dev", "--raw"], REJECT_TIMEOUT);
    assert!(raw.status.success(), "hyperion build-spec --chain dev --raw failed\n{raw}");
    let raw_spec: Value = serde_json::from_str(&raw.stdout)
        .unwrap_or_else(|e| panic!("build-spec --raw output is not JSON ({e})\n{raw}"));
    assert!(raw_spec.is_object(), "build-spec --raw printed {raw_spec}");
}

#[test]
fn spec_without_id_is_rejected_naming_id() {
    let mut spec = repo_dev_spec();
    let removed = spec.as_object_mut().expect("dev.json is an object").remove("id");
    assert!(removed.is_some(), "dev.json has no top-level `id` to remove");
    let out = start_with_spec(&spec);
    assert!(!out.status.success(), "a spec without `id` was accepted\n{out}");
    assert!(mentions_word(&out.stderr, "id"), "stderr does not name the missing field `id`\n{out}");
}

#[test]
fn spec_with_a_short_balance_address_is_rejected_naming_balances() {
    let mut spec = repo_dev_spec();
    // The brief names `genesis.balances.balances`; the node nests pallets under `runtime`.
    let pointer = ["/genesis/balances/balances/0", "/genesis/runtime/balances/balances/0"]
        .into_iter()
        .find(|p| spec.pointer(p).is_some())
        .expect("dev.json has genesis[.runtime].balances.balances[0]");
    let entry = spec.pointer_mut(pointer).expect("just found");
    set_address(entry, "0x12");
    let out = start_with_spec(&spec);
    assert!(!out.status.success(), "a spec with address 0x12 was accepted\n{out}");
    assert!(out.stderr.contains("balances"), "stderr does not name `balances`\n{out}");
}

/// Replaces the address in one endowment, written either `[address, amount]` or as an object
/// with one address-valued field.
fn set_address(entry: &mut Value, address: &str) {
    let is_address = |v: &Value| v.as_str().is_some_and(|s| s.parse::<Address>().is_ok());
    match entry {
        Value::Array(items) if items.first().is_some_and(is_address) => items[0] = json!(address),
        Value::Object(fields) => {
            let key = fields.iter().find(|(_, v)| is_address(v)).map(|(k, _)| k.clone());
            let key = key.unwrap_or_else(|| panic!("no address field in endowment {fields:?}"));
            fields.insert(key, json!(address));
        }
        other => panic!("unexpected endowment shape in dev.json: {other}"),
    }
}

/// Writes `spec` to a temp file and runs `hyperion --chain FILE --tmp` on free ports; returns
/// once it exits (a node that keeps running fails the test after [`REJECT_TIMEOUT`]).
fn start_with_spec(spec: &Value) -> CmdOutput {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let path = dir.path().join("spec.json");
    std::fs::write(&path, serde_json::to_vec_pretty(spec).expect("serialize")).expect("write spec");
    let path = path.to_str().expect("temp paths are UTF-8");
    let (rpc_port, prometheus_port) = (free_port().to_string(), free_port().to_string());
    let args = ["--chain", path, "--tmp", "--rpc-port", &rpc_port, "--prometheus-port", &prometheus_port];
    run_cli(&args, REJECT_TIMEOUT)
}
