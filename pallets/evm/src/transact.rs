//! Ethereum transactions as extrinsics: checks for the pool and the block, execution, gas
//! payment with the chain's fee split, events.

use hyperion_primitives::{Address, Balance, DispatchError, Hash};
use hyperion_runtime::system::{ACCOUNT_NONCE, FEE_CONFIG};
use hyperion_runtime::{
    holders_pool_account, Context, Delta, EthereumHints, EthereumOutcome, EthereumTransactions,
    InvalidTransaction, PreparedEthereum, StorageRead, ValidTransaction, U64,
};
use hyperion_vm::{
    is_delegation, keccak256, BlockEnv, BlockState, EthTransaction, EvmState, Executed, Fork, InvalidTx,
    Status, B256, KECCAK_EMPTY, MAX_TX_BYTES, U256,
};

use crate::pallet::{Error, Event, Evm, BASE_FEE, GAS_USED};
use crate::state::{to_eth, to_native, write_diff, ChainState};
use crate::transfer::Transfer;

/// What [`Evm::prepare`](EthereumTransactions::prepare) keeps of a transaction for `apply`.
type Decoded = Result<EthTransaction, InvalidTransaction>;

fn refuse(message: impl Into<String>) -> InvalidTransaction {
    InvalidTransaction::Ethereum(message.into())
}

/// The runtime's refusal for one of the VM's.
fn refusal(invalid: InvalidTx) -> InvalidTransaction {
    match invalid {
        InvalidTx::NonceTooLow { expected, got } => InvalidTransaction::StaleNonce { expected, got },
        InvalidTx::NonceTooHigh { expected, got } => InvalidTransaction::FutureNonce { expected, got },
        other => refuse(other.to_string()),
    }
}

/// The EVM's view of a Hyperion block: its number, timestamp in seconds, proposer as COINBASE,
/// the parent's hash as PREVRANDAO (not a source of randomness on Hyperion), no difficulty, no
/// blob gas.
pub fn block_env(
    number: u64,
    timestamp_ms: u64,
    proposer: Address,
    parent_hash: Hash,
    gas_limit: u64,
    base_fee: u64,
) -> BlockEnv {
    BlockEnv {
        number,
        timestamp: timestamp_ms / 1000,
        beneficiary: to_eth(proposer),
        gas_limit,
        base_fee,
        difficulty: U256::ZERO,
        prevrandao: Some(B256::from(parent_hash.0)),
        excess_blob_gas: Some(0),
    }
}

impl Evm {
    /// Decodes `raw`, taking its sender from the cache of senders recovered before (the hash
    /// commits to every byte the sender was recovered from), else recovering and caching it.
    fn decode(&self, raw: &[u8]) -> Result<EthTransaction, InvalidTransaction> {
        if raw.len() > MAX_TX_BYTES {
            // Too large: refused by decoding, without hashing it first.
            return EthTransaction::decode(raw).map_err(|e| refuse(e.to_string()));
        }
        let hash = keccak256(raw);
        if let Some(sender) = self.senders.get(&hash) {
            return EthTransaction::decode_hashed(raw, hash, sender).map_err(|e| refuse(e.to_string()));
        }
        let tx = EthTransaction::decode(raw).map_err(|e| refuse(e.to_string()))?;
        self.senders.insert(hash, tx.sender());
        Ok(tx)
    }

    /// Decodes and checks `raw` against `state` for inclusion: everything but the exact nonce.
    fn check(
        &self,
        state: &mut dyn StorageRead,
        raw: &[u8],
    ) -> Result<(EthTransaction, ValidTransaction), InvalidTransaction> {
        let tx = self.decode(raw)?;
        let base_fee = Self::check_terms(state, &tx)?;
        let valid = self.check_sender(state, &tx, base_fee)?;
        Ok((tx, valid))
    }

    /// Checks what `tx` says against the chain's rules (type, chain id, gas, fees against the
    /// base fee), not its sender's account; returns the base fee.
    fn check_terms(state: &mut dyn StorageRead, tx: &EthTransaction) -> Result<u128, InvalidTransaction> {
        let config = Self::config(state);
        let fork = config.fork();
        match tx.tx_type() {
            3 => return Err(refuse("transaction type not supported: blob transactions need blob data")),
            4 if fork < Fork::Prague => return Err(refuse("transaction type not supported")),
            _ => {}
        }
        match tx.chain_id() {
            None => return Err(refuse("only replay-protected (EIP-155) transactions allowed over RPC")),
            Some(id) if id != config.chain_id => return Err(refuse("invalid chain id")),
            Some(_) => {}
        }
        if tx.gas_limit() > config.gas_limit {
            return Err(refuse("exceeds block gas limit"));
        }
        if tx.gas_limit() < tx.intrinsic_gas(fork) {
            return Err(refuse("intrinsic gas too low"));
        }
        let base_fee = u128::from(BASE_FEE.get_or_default(state));
        if tx.max_fee_per_gas() < base_fee {
            return Err(refuse(format!(
                "max fee per gas less than block base fee: maxFeePerGas: {}, baseFee: {base_fee}",
                tx.max_fee_per_gas()
            )));
        }
        if tx.max_priority_fee_per_gas() > tx.max_fee_per_gas() {
            return Err(refuse("max priority fee per gas higher than max fee per gas"));
        }
        Ok(base_fee)
    }

    /// Checks `tx`'s sender in `state`: an account without code (or delegated), with the funds
    /// for the maximum cost.
    fn check_sender(
        &self,
        state: &mut dyn StorageRead,
        tx: &EthTransaction,
        base_fee: u128,
    ) -> Result<ValidTransaction, InvalidTransaction> {
        let sender = to_native(tx.sender());
        let mut chain = ChainState::new(state, self.currency.as_ref());
        let account =
            chain.account(tx.sender()).map_err(|e| refuse(format!("state: {e}")))?.unwrap_or_default();
        if account.code_hash != KECCAK_EMPTY {
            let code = chain.code(account.code_hash).map_err(|e| refuse(format!("state: {e}")))?;
            if !code.is_some_and(|code| is_delegation(&code)) {
                return Err(refuse("sender not an eoa"));
            }
        }
        let max_gas_cost = u128::from(tx.gas_limit()).saturating_mul(tx.max_fee_per_gas());
        let needed = U256::from(max_gas_cost).saturating_add(tx.value());
        if account.balance < needed {
            return Err(refuse("insufficient funds for gas * price + value"));
        }
        let tip_per_gas = tx.max_priority_fee_per_gas().min(tx.max_fee_per_gas() - base_fee);
        Ok(ValidTransaction {
            sender,
            nonce: tx.nonce(),
            account_nonce: ACCOUNT_NONCE.get_or_default(state, &sender),
            fee: max_gas_cost,
            tip: tip_per_gas.saturating_mul(u128::from(tx.gas_limit())),
            weight: tx.gas_limit(),
        })
    }

    fn block_env(ctx: &mut Context<'_>, gas_limit: u64) -> BlockEnv {
        let info = *ctx.block();
        let base_fee = BASE_FEE.get_or_default(ctx);
        block_env(info.number, info.timestamp_ms, info.proposer, info.parent_hash, gas_limit, base_fee)
    }

    /// Charges the base-fee part of the gas (`base_part`, left with the sender by `write_diff`
    /// or [`Transfer::settle`]) with the chain's fee split; the tip is paid to the proposer after
    /// this. `assumed`: the sender's balance was assumed, not read (a plain transfer's).
    fn charge_base_fee(
        &self,
        ctx: &mut Context<'_>,
        sender: &Address,
        base_part: Balance,
        assumed: bool,
    ) -> Result<(), DispatchError> {
        let fees = FEE_CONFIG.get(ctx).expect("fee config is set at genesis");
        let shares = fees.shares(base_part, 0);
        let proposer = ctx.block().proposer;
        let c = &self.currency;
        if assumed {
            c.withdraw_assumed(ctx, sender, shares.proposer + shares.holders_pool)?;
            c.burn_assumed(ctx, sender, shares.burn)?;
        } else {
            c.withdraw(ctx, sender, shares.proposer + shares.holders_pool)?;
            c.burn(ctx, sender, shares.burn)?;
        }
        c.deposit(ctx, &proposer, shares.proposer)?;
        c.deposit(ctx, &holders_pool_account(), shares.holders_pool)
    }

    fn record(&self, ctx: &mut Context<'_>, tx: &EthTransaction, executed: &Executed, price: u128) {
        for log in &executed.logs {
            let topics = log.topics().iter().map(|t| Hash(t.0)).collect();
            let event = Event::Log { address: to_native(log.address), topics, data: log.data.data.to_vec() };
            ctx.deposit_event(&event);
        }
        ctx.deposit_event(&Event::Executed {
            hash: Hash(tx.hash().0),
            from: to_native(tx.sender()),
            to: tx.to().map(to_native),
            contract: executed.created.map(to_native),
            success: executed.success(),
            gas_used: executed.gas_used,
            effective_gas_price: price,
        });
    }
}

impl EthereumTransactions for Evm {
    fn validate(
        &self,
        state: &mut dyn StorageRead,
        raw: &[u8],
    ) -> Result<ValidTransaction, InvalidTransaction> {
        Ok(self.check(state, raw)?.1)
    }

    fn apply(
        &self,
        ctx: &mut Context<'_>,
        raw: &[u8],
        prepared: Option<&PreparedEthereum>,
    ) -> Result<EthereumOutcome, InvalidTransaction> {
        let decoded;
        let tx = match prepared.and_then(|p| p.decoded.as_ref()?.downcast_ref::<Decoded>()) {
            Some(prepared) => prepared.as_ref().map_err(Clone::clone)?,
            None => {
                decoded = self.decode(raw)?;
                &decoded
            }
        };
        let base_fee = Self::check_terms(ctx, tx)?;
        // A plain transfer assumes what it needs of its sender instead of reading it (see
        // `transfer`); any other transaction checks its sender's account and exact nonce.
        let transfer = Transfer::assume(ctx, self.currency.as_ref(), tx);
        if transfer.is_none() {
            let valid = self.check_sender(ctx, tx, base_fee)?;
            if valid.nonce != valid.account_nonce {
                return Err(if valid.nonce < valid.account_nonce {
                    InvalidTransaction::StaleNonce { expected: valid.account_nonce, got: valid.nonce }
                } else {
                    InvalidTransaction::FutureNonce { expected: valid.account_nonce, got: valid.nonce }
                });
            }
        }
        let config = Self::config(ctx);
        let env = Self::block_env(ctx, config.gas_limit);
        let vm = Self::vm(ctx);
        let stand_ins = transfer.map(|transfer| transfer.stand_ins(tx)).unwrap_or_default();
        let chain = ChainState::new(ctx, self.currency.as_ref()).with_stand_ins(stand_ins);
        let mut state = BlockState::new(chain).with_code_cache(self.code_cache.clone());
        // The proposer's priority fee is paid below as a delta, not by the EVM: otherwise every
        // transaction would read and write the proposer's account, one after the other.
        let (executed, tip) = vm
            .execute_deferring_reward(&mut state, &env, tx)
            .map_err(|e| refuse(format!("state: {e}")))?
            .map_err(refusal)?;
        let (_, mut diff) = state.into_diff();

        let price = tx.effective_gas_price(Some(env.base_fee));
        let gas = u128::from(executed.gas_used);
        let base_part = gas * u128::from(env.base_fee);
        let sender = to_native(tx.sender());
        let proposer = ctx.block().proposer;
        let currency = self.currency.as_ref();
        // The EVM checked the sender could pay (so the tip fits the ledger's u128), and only
        // moved balances that exist.
        let charged = Balance::try_from(tip).map_err(|_| DispatchError::Arithmetic).and_then(|tip| {
            match &transfer {
                Some(transfer) => {
                    transfer.settle(ctx, currency, tx, &mut diff, base_part)?;
                    write_diff(ctx, currency, &diff, sender, 0)?;
                }
                None => write_diff(ctx, currency, &diff, sender, base_part)?,
            }
            self.charge_base_fee(ctx, &sender, base_part, transfer.is_some())?;
            currency.deposit(ctx, &proposer, tip)
        });
        charged.map_err(|e| refuse(format!("could not apply the transaction's changes: {e:?}")))?;
        GAS_USED.add(ctx, Delta::add(&U64, u128::from(executed.gas_used)));
        self.record(ctx, tx, &executed, price);
        let error = match executed.status {
            Status::Success => None,
            Status::Revert => Some(Error::Reverted),
            Status::Halt(_) => Some(Error::Halted),
        };
        Ok(EthereumOutcome {
            success: error.is_none(),
            error: error.map(|e| DispatchError::Module { pallet: self.index, error: e as u8 }),
            fee: gas * price,
            gas_used: executed.gas_used,
            gas_limit: tx.gas_limit(),
        })
    }

    fn gas_limit(&self, raw: &[u8]) -> Result<u64, InvalidTransaction> {
        EthTransaction::peek_gas_limit(raw).map_err(|e| refuse(e.to_string()))
    }

    fn block_gas_limit(&self, state: &mut dyn StorageRead) -> u64 {
        Self::config(state).gas_limit
    }

    /// The transaction decoded (its sender recovered, or found among those recovered before),
    /// or why it cannot be; hints: the recipient, and the sender, except a plain transfer's (it
    /// assumes what it needs of its sender instead of reading it, see `transfer`, so it need
    /// not wait for the sender's previous transaction).
    fn prepare(&self, raw: &[u8]) -> PreparedEthereum {
        let decoded: Decoded = self.decode(raw);
        let hints = match &decoded {
            Ok(tx) => EthereumHints {
                sender: tx.plain_transfer_to().is_none().then(|| to_native(tx.sender())),
                target: tx.target_label(),
            },
            Err(_) => EthereumHints::default(),
        };
        PreparedEthereum { hints, decoded: Some(Box::new(decoded)) }
    }
}
