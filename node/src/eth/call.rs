//! `eth_call` and `eth_estimateGas`: MetisVM run over a block's state without keeping anything,
//! with optional state overrides.

use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_rpc_types_eth::state::StateOverride;
use alloy_rpc_types_eth::TransactionRequest;
use hyperion_runtime::QueryContext;
use hyperion_vm::{Account, BlockEnv, BlockState, CallRequest, EvmState, Executed, Status, Vm};
use pallet_evm::{ChainState, Evm};

use super::EthError;

/// Geth's cap on the gas of a call (`--rpc.gascap` default).
pub const CALL_GAS_CAP: u64 = 50_000_000;
/// State overrides accepted in one call.
pub const MAX_OVERRIDES: usize = 256;

/// The chain state with `eth_call`'s state overrides on top.
struct Overridden<'a, S> {
    base: S,
    overrides: &'a StateOverride,
}

impl<S: EvmState> EvmState for Overridden<'_, S> {
    fn account(&mut self, address: Address) -> hyperion_vm::Result<Option<Account>> {
        let account = self.base.account(address)?;
        let Some(o) = self.overrides.get(&address) else { return Ok(account) };
        let mut account = account.unwrap_or_default();
        if let Some(balance) = o.balance {
            account.balance = balance;
        }
        if let Some(nonce) = o.nonce {
            account.nonce = nonce;
        }
        if let Some(code) = &o.code {
            account.code_hash = if code.is_empty() { hyperion_vm::KECCAK_EMPTY } else { keccak256(code) };
        }
        Ok(Some(account))
    }

    fn code(&mut self, code_hash: B256) -> hyperion_vm::Result<Option<Bytes>> {
        let overridden =
            self.overrides.values().filter_map(|o| o.code.as_ref()).find(|c| keccak256(c) == code_hash);
        match overridden {
            Some(code) => Ok(Some(code.clone())),
            None => self.base.code(code_hash),
        }
    }

    fn storage(&mut self, address: Address, slot: U256) -> hyperion_vm::Result<U256> {
        let key = B256::from(slot);
        if let Some(o) = self.overrides.get(&address) {
            if let Some(state) = &o.state {
                return Ok(state.get(&key).map_or(U256::ZERO, |v| U256::from_be_bytes(v.0)));
            }
            if let Some(value) = o.state_diff.as_ref().and_then(|diff| diff.get(&key)) {
                return Ok(U256::from_be_bytes(value.0));
            }
        }
        self.base.storage(address, slot)
    }

    fn block_hash(&mut self, number: u64) -> hyperion_vm::Result<B256> {
        self.base.block_hash(number)
    }
}

/// Where and how a call runs: a block's state and environment.
pub struct CallSite {
    /// The state after the block.
    pub query: QueryContext,
    /// The block's environment (the call runs as if in that block).
    pub env: BlockEnv,
    /// The chain's rules.
    pub vm: Vm,
}

/// The call of `request` against `site`'s state with `overrides`.
pub fn run(
    evm: &Evm,
    site: &mut CallSite,
    request: &CallRequest,
    overrides: Option<&StateOverride>,
) -> Result<Executed, EthError> {
    let empty = StateOverride::default();
    let overrides = overrides.unwrap_or(&empty);
    if overrides.len() > MAX_OVERRIDES {
        return Err(EthError::InvalidParams(format!("at most {MAX_OVERRIDES} state overrides")));
    }
    let chain = ChainState::new(&mut site.query, evm.currency());
    let mut state = BlockState::new(Overridden { base: chain, overrides });
    match site.vm.call(&mut state, &site.env, request) {
        Err(e) => Err(EthError::Internal(e.to_string())),
        Ok(Err(invalid)) => Err(EthError::Execution(invalid.to_string())),
        Ok(Ok(executed)) => Ok(executed),
    }
}

/// The VM's call from a JSON-RPC request, its gas capped at `gas_cap`.
pub fn call_request(request: &TransactionRequest, gas_cap: u64) -> CallRequest {
    CallRequest {
        from: request.from.unwrap_or_default(),
        to: match request.to {
            Some(TxKind::Call(to)) => Some(to),
            _ => None,
        },
        gas_limit: request.gas.unwrap_or(gas_cap).min(gas_cap),
        gas_price: request.gas_price.or(request.max_fee_per_gas).unwrap_or(0),
        max_priority_fee_per_gas: request.max_priority_fee_per_gas,
        value: request.value.unwrap_or_default(),
        data: request.input.input().cloned().unwrap_or_default(),
        access_list: request.access_list.clone().unwrap_or_default(),
    }
}

/// A successful call's output, or the error Ethereum clients expect: a revert is error 3
/// with the revert data.
pub fn output(executed: Executed) -> Result<Bytes, EthError> {
    match executed.status {
        Status::Success => Ok(executed.output),
        Status::Revert => Err(EthError::Reverted(executed.output)),
        Status::Halt(reason) => Err(EthError::Execution(halt_message(&reason))),
    }
}

fn halt_message(reason: &str) -> String {
    if reason.contains("OutOfGas") {
        "out of gas".into()
    } else {
        format!("execution halted: {reason}")
    }
}

/// `eth_estimateGas`: the least gas with which the call succeeds, by bisection between the gas
/// it used with all gas allowed and that amount.
pub fn estimate(
    evm: &Evm,
    site: &mut CallSite,
    request: &CallRequest,
    overrides: Option<&StateOverride>,
) -> Result<u64, EthError> {
    let cap = request.gas_limit;
    let first = run(evm, site, request, overrides)?;
    match &first.status {
        Status::Success => {}
        Status::Revert => return Err(EthError::Reverted(first.output)),
        Status::Halt(_) => {
            return Err(EthError::Execution(format!("gas required exceeds allowance ({cap})")))
        }
    }
    let (mut lo, mut hi) = (first.gas_used.saturating_sub(1), cap);
    // Most calls succeed with what they used (plus the 1/64 kept back from each nested call).
    let guess = first.gas_used.saturating_mul(64) / 63;
    if guess < hi {
        let attempt = CallRequest { gas_limit: guess, ..request.clone() };
        match run(evm, site, &attempt, overrides) {
            Ok(executed) if executed.status == Status::Success => hi = guess,
            _ => lo = guess,
        }
    }
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        let attempt = CallRequest { gas_limit: mid, ..request.clone() };
        match run(evm, site, &attempt, overrides) {
            Ok(executed) if executed.status == Status::Success => hi = mid,
            Ok(_) => lo = mid,
            // Below the intrinsic cost the VM refuses the call outright.
            Err(EthError::Execution(_)) => lo = mid,
            Err(e) => return Err(e),
        }
    }
    Ok(hi)
}

/// The revert reason of `data`: `Error(string)`'s message, `Panic(uint256)`'s code, or `None`.
pub fn revert_reason(data: &[u8]) -> Option<String> {
    const ERROR: [u8; 4] = [0x08, 0xc3, 0x79, 0xa0];
    const PANIC: [u8; 4] = [0x4e, 0x48, 0x7b, 0x71];
    let word = |at: usize| -> Option<usize> {
        let bytes = data.get(at..at + 32)?;
        if bytes[..24].iter().any(|b| *b != 0) {
            return None;
        }
        Some(u64::from_be_bytes(bytes[24..].try_into().ok()?) as usize)
    };
    match data.get(..4)? {
        selector if selector == ERROR => {
            let offset = word(4)?;
            let len = word(4usize.checked_add(offset)?)?;
            let start = 4usize.checked_add(offset)?.checked_add(32)?;
            let text = data.get(start..start.checked_add(len)?)?;
            Some(String::from_utf8_lossy(text).into_owned())
        }
        selector if selector == PANIC => {
            let code = data.get(4..36)?;
            Some(format!("panic: 0x{:x}", U256::from_be_slice(code)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_reasons_decode() {
        // Error("Not enough") as Solidity encodes it.
        let mut data = vec![0x08, 0xc3, 0x79, 0xa0];
        data.extend(U256::from(32).to_be_bytes::<32>());
        data.extend(U256::from(10).to_be_bytes::<32>());
        let mut text = b"Not enough".to_vec();
        text.resize(32, 0);
        data.extend(text);
        assert_eq!(revert_reason(&data).as_deref(), Some("Not enough"));
        let mut panic = vec![0x4e, 0x48, 0x7b, 0x71];
        panic.extend(U256::from(0x11).to_be_bytes::<32>());
        assert_eq!(revert_reason(&panic).as_deref(), Some("panic: 0x11"));
        assert_eq!(revert_reason(&[1, 2, 3]), None);
        assert_eq!(revert_reason(&data[..40]), None, "truncated");
        let mut huge = data.clone();
        huge[4 + 31] = 0xff;
        huge[4..4 + 24].fill(0xff);
        assert_eq!(revert_reason(&huge), None, "an offset past the data");
    }
}
