//! Executing transactions with revm over a [`BlockState`]: the block environment, the outcome
//! of a transaction, and why one cannot be included.

use alloy_primitives::{Address, Bytes, Log, TxKind, B256, U256};
use revm::context::result::{EVMError, ExecutionResult, HaltReason, InvalidTransaction, Output};
use revm::context::{BlockEnv as RevmBlockEnv, CfgEnv, Context, ContextSetters, TxEnv};
use revm::context::{Evm, LocalContext};
use revm::context_interface::local::{FrameStack, LocalContextTr};
use revm::context_interface::{ContextTr, JournalTr};
use revm::handler::instructions::EthInstructions;
use revm::handler::{EthFrame, EthPrecompiles};
use revm::handler::{EvmTr, EvmTrError, FrameResult, FrameTr, Handler};
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::interpreter_action::FrameInit;
use revm::primitives::eip4844::{BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN, BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE};
use revm::state::EvmState as RevmChanges;
use revm::{ExecuteEvm, MainContext};
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::overlay::BlockState;
use crate::spec::Fork;
use crate::state::EvmState;
use crate::tx::EthTransaction;
use crate::{Error, Result};

/// The block a transaction executes in.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockEnv {
    /// Block number.
    pub number: u64,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    /// Who receives the priority fees (COINBASE): the block's proposer.
    pub beneficiary: Address,
    /// Gas the block may use.
    pub gas_limit: u64,
    /// EIP-1559 base fee per gas, wei (zero before London).
    pub base_fee: u64,
    /// Proof-of-work difficulty (DIFFICULTY before the Merge).
    pub difficulty: U256,
    /// PREVRANDAO (from the Merge on).
    pub prevrandao: Option<B256>,
    /// EIP-4844 excess blob gas (from Cancun on).
    pub excess_blob_gas: Option<u64>,
}

/// How an included transaction ended.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Status {
    /// It ran to completion; its changes stand.
    Success,
    /// It reverted (REVERT); only its fee was paid. The output holds the revert data.
    Revert,
    /// It failed (out of gas, invalid opcode, ...) and used all its gas; the reason is revm's.
    Halt(String),
}

/// The outcome of an included transaction.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Executed {
    /// How it ended.
    pub status: Status,
    /// Gas it used (after refunds): what its receipt counts.
    pub gas_used: u64,
    /// Logs it emitted (none unless it succeeded).
    pub logs: Vec<Log>,
    /// Return data, or revert data.
    pub output: Bytes,
    /// The contract it created, if it was a successful creation.
    pub created: Option<Address>,
}

impl Executed {
    /// Whether it succeeded (receipt status 1).
    pub fn success(&self) -> bool {
        self.status == Status::Success
    }
}

/// Why a transaction cannot be included in the block. The messages are those Ethereum clients
/// expect from `eth_sendRawTransaction` (geth's wording).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum InvalidTx {
    /// Its nonce was already used.
    #[error("nonce too low: next nonce {expected}, tx nonce {got}")]
    NonceTooLow {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// Its nonce is ahead of the account's.
    #[error("nonce too high: next nonce {expected}, tx nonce {got}")]
    NonceTooHigh {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The sender cannot pay gas limit × fee cap + value.
    #[error("insufficient funds for gas * price + value")]
    InsufficientFunds,
    /// Its gas limit is above what is left of the block's.
    #[error("exceeds block gas limit")]
    GasLimitAboveBlock,
    /// Its fee cap is below the block's base fee.
    #[error("max fee per gas less than block base fee")]
    FeeCapBelowBaseFee,
    /// Its tip cap is above its fee cap.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// Its gas limit does not cover the intrinsic cost.
    #[error("intrinsic gas too low")]
    IntrinsicGasTooLow,
    /// It is signed for another chain.
    #[error("invalid chain id")]
    WrongChainId,
    /// Its sender has code (EIP-3607).
    #[error("sender not an eoa")]
    SenderNotEoa,
    /// Anything else revm refuses, in revm's words.
    #[error("invalid transaction: {0}")]
    Other(String),
}

impl From<InvalidTransaction> for InvalidTx {
    fn from(e: InvalidTransaction) -> Self {
        match e {
            InvalidTransaction::NonceTooLow { tx, state } => {
                InvalidTx::NonceTooLow { expected: state, got: tx }
            }
            InvalidTransaction::NonceTooHigh { tx, state } => {
                InvalidTx::NonceTooHigh { expected: state, got: tx }
            }
            InvalidTransaction::LackOfFundForMaxFee { .. } => InvalidTx::InsufficientFunds,
            InvalidTransaction::CallerGasLimitMoreThanBlock => InvalidTx::GasLimitAboveBlock,
            InvalidTransaction::GasPriceLessThanBasefee => InvalidTx::FeeCapBelowBaseFee,
            InvalidTransaction::PriorityFeeGreaterThanMaxFee => InvalidTx::TipAboveFeeCap,
            InvalidTransaction::CallGasCostMoreThanGasLimit { .. }
            | InvalidTransaction::GasFloorMoreThanGasLimit { .. } => InvalidTx::IntrinsicGasTooLow,
            InvalidTransaction::InvalidChainId | InvalidTransaction::MissingChainId => {
                InvalidTx::WrongChainId
            }
            InvalidTransaction::RejectCallerWithCode => InvalidTx::SenderNotEoa,
            other => InvalidTx::Other(other.to_string()),
        }
    }
}

/// A call to run without a signature or inclusion (`eth_call`, `eth_estimateGas`).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CallRequest {
    /// The caller.
    pub from: Address,
    /// The callee; `None` runs `data` as creation code.
    pub to: Option<Address>,
    /// Gas available.
    pub gas_limit: u64,
    /// Price per gas (the fee cap for EIP-1559 calls); zero pays nothing.
    pub gas_price: u128,
    /// Tip cap, for an EIP-1559 call.
    pub max_priority_fee_per_gas: Option<u128>,
    /// Wei sent.
    pub value: U256,
    /// Calldata or creation code.
    pub data: Bytes,
    /// EIP-2930 access list.
    pub access_list: alloy_eips::eip2930::AccessList,
}

/// The rules a chain executes Ethereum transactions under.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Vm {
    /// Which fork's rules.
    pub fork: Fork,
    /// EIP-155 chain id that transactions must be signed for.
    pub chain_id: u64,
}

impl Vm {
    /// `fork`'s rules on chain `chain_id`.
    pub fn new(fork: Fork, chain_id: u64) -> Self {
        Self { fork, chain_id }
    }

    /// Runs `call` against `state` as `eth_call` does: nothing is kept, the sender's nonce is not
    /// checked, and a call with a zero gas price pays no fee and ignores the base fee. The outer
    /// error is a state failure; the inner one says why the call could not run.
    pub fn call<S: EvmState>(
        &self,
        state: &mut BlockState<S>,
        block: &BlockEnv,
        call: &CallRequest,
    ) -> Result<std::result::Result<Executed, InvalidTx>> {
        let mut cfg = self.cfg();
        cfg.disable_nonce_check = true;
        // As geth: a call may come from a contract's address (EIP-3607 is for transactions).
        cfg.disable_eip3607 = true;
        if call.gas_price == 0 {
            cfg.disable_base_fee = true;
        }
        let tx = TxEnv {
            tx_type: if call.max_priority_fee_per_gas.is_some() { 2 } else { 0 },
            caller: call.from,
            gas_limit: call.gas_limit,
            gas_price: call.gas_price,
            kind: call.to.map_or(TxKind::Create, TxKind::Call),
            value: call.value,
            data: call.data.clone(),
            nonce: 0,
            chain_id: Some(self.chain_id),
            access_list: call.access_list.clone(),
            gas_priority_fee: call.max_priority_fee_per_gas,
            ..TxEnv::default()
        };
        Ok(self.transact_with(cfg, state, block, tx)?.map(|(executed, _)| executed))
    }

    fn cfg(&self) -> CfgEnv {
        let mut cfg = CfgEnv::default();
        cfg.set_spec_and_mainnet_gas_params(self.fork.spec_id());
        cfg.chain_id = self.chain_id;
        // Blobs one transaction may carry: the block maximum of Cancun (6) and Prague (9);
        // Osaka caps each transaction at 6 (EIP-7594).
        cfg.max_blobs_per_tx = Some(match self.fork {
            Fork::Prague => 9,
            _ => 6,
        });
        cfg
    }

    fn block_env(&self, block: &BlockEnv) -> RevmBlockEnv {
        let mut env = RevmBlockEnv {
            number: U256::from(block.number),
            beneficiary: block.beneficiary,
            timestamp: U256::from(block.timestamp),
            gas_limit: block.gas_limit,
            basefee: block.base_fee,
            difficulty: block.difficulty,
            prevrandao: block.prevrandao,
            blob_excess_gas_and_price: None,
            ..RevmBlockEnv::default()
        };
        if let (Some(excess), true) = (block.excess_blob_gas, self.fork >= Fork::Cancun) {
            let fraction = if self.fork >= Fork::Prague {
                BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE
            } else {
                BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN
            };
            env.set_blob_excess_gas_and_price(excess, fraction);
        }
        env
    }

    /// Runs `tx` against `state` without keeping its changes: its outcome and the changes it
    /// would make. The outer error is a state failure; the inner one says why the transaction
    /// cannot be included.
    pub(crate) fn transact<S: EvmState>(
        &self,
        state: &mut BlockState<S>,
        block: &BlockEnv,
        tx: TxEnv,
    ) -> Result<std::result::Result<(Executed, RevmChanges), InvalidTx>> {
        self.transact_with(self.cfg(), state, block, tx)
    }

    fn transact_with<S: EvmState>(
        &self,
        cfg: CfgEnv,
        state: &mut BlockState<S>,
        block: &BlockEnv,
        tx: TxEnv,
    ) -> Result<std::result::Result<(Executed, RevmChanges), InvalidTx>> {
        self.run(cfg, state, block, tx, Reward::Pay)
    }

    fn run<S: EvmState>(
        &self,
        cfg: CfgEnv,
        state: &mut BlockState<S>,
        block: &BlockEnv,
        tx: TxEnv,
        reward: Reward,
    ) -> Result<std::result::Result<(Executed, RevmChanges), InvalidTx>> {
        let spec = cfg.spec;
        let mut ctx = Context::mainnet().with_cfg(cfg).with_block(self.block_env(block)).with_db(state);
        let reused = Reused::take();
        ctx.local = reused.local;
        let mut evm = Evm {
            ctx,
            inspector: (),
            instruction: EthInstructions::new_mainnet_with_spec(spec),
            precompiles: EthPrecompiles::new(spec),
            frame_stack: reused.frames,
        };
        let result = match reward {
            Reward::Pay => evm.transact(tx).map(|outcome| (outcome.result, outcome.state)),
            Reward::Defer => {
                evm.ctx.set_tx(tx);
                let result = DeferReward::default().run(&mut evm);
                let changes = evm.finalize();
                result.map(|result| (result, changes))
            }
        };
        // Back for the thread's next transaction (not after a panic: a new one is made then).
        Reused::put(Reused {
            local: std::mem::take(&mut evm.ctx.local),
            frames: std::mem::take(&mut evm.frame_stack),
        });
        let (result, changes) = match result {
            Ok(outcome) => outcome,
            Err(EVMError::Transaction(e)) => return Ok(Err(e.into())),
            Err(EVMError::Database(e)) => return Err(e),
            Err(EVMError::Header(e)) => return Err(Error::Block(e.to_string())),
            Err(e) => return Err(Error::Block(e.to_string())),
        };
        Ok(Ok((executed(result), changes)))
    }

    /// As [`Vm::execute`], except that the block's beneficiary (COINBASE) is not paid its
    /// priority fee: the fee is returned for the caller to pay, as Hyperion pays it with a
    /// commutative delta so that transactions running in parallel do not all write the
    /// coinbase account. Before the fee is paid, the state differs from Ethereum's only in
    /// the beneficiary's balance.
    pub fn execute_deferring_reward<S: EvmState>(
        &self,
        state: &mut BlockState<S>,
        block: &BlockEnv,
        tx: &EthTransaction,
    ) -> Result<std::result::Result<(Executed, U256), InvalidTx>> {
        let price = tx.effective_gas_price(Some(block.base_fee));
        let reward_per_gas =
            if self.fork >= Fork::London { price.saturating_sub(u128::from(block.base_fee)) } else { price };
        Ok(match self.run(self.cfg(), state, block, tx.tx_env(), Reward::Defer)? {
            Ok((executed, changes)) => {
                state.apply(changes);
                let reward = U256::from(reward_per_gas) * U256::from(executed.gas_used);
                Ok((executed, reward))
            }
            Err(invalid) => Err(invalid),
        })
    }

    /// Executes `tx` in `block` and keeps its changes in `state` when it can be included; if
    /// it cannot, `state` is unchanged.
    pub fn execute<S: EvmState>(
        &self,
        state: &mut BlockState<S>,
        block: &BlockEnv,
        tx: &EthTransaction,
    ) -> Result<std::result::Result<Executed, InvalidTx>> {
        self.execute_env(state, block, tx.tx_env())
    }

    /// As [`Vm::execute`], for a transaction given as revm's environment.
    pub(crate) fn execute_env<S: EvmState>(
        &self,
        state: &mut BlockState<S>,
        block: &BlockEnv,
        tx: TxEnv,
    ) -> Result<std::result::Result<Executed, InvalidTx>> {
        Ok(match self.transact(state, block, tx)? {
            Ok((executed, changes)) => {
                state.apply(changes);
                Ok(executed)
            }
            Err(invalid) => Err(invalid),
        })
    }
}

/// The parts of a revm instance that do not depend on the database, kept by each thread and
/// reused by every transaction it executes: the call frames (each with its interpreter's
/// 1,024-word stack, 32 KiB) and the memory buffer the frames share. Building them for every
/// transaction cost several large allocations; only the database (a transaction's view of the
/// block) is bound anew, along with the instruction table and the precompiles (no allocation
/// to speak of). A thread's parts are taken out for the length of a transaction, so a
/// transaction that unwinds (a parallel read that must wait) drops them, and the next one
/// starts with new parts.
struct Reused {
    local: LocalContext,
    frames: FrameStack<EthFrame<EthInterpreter>>,
}

thread_local! {
    static REUSED: RefCell<Option<Reused>> = const { RefCell::new(None) };
}

/// The largest EVM memory buffer a thread keeps between transactions.
const MAX_KEPT_MEMORY: usize = 1 << 20;

impl Reused {
    fn take() -> Self {
        REUSED
            .with(|reused| reused.borrow_mut().take())
            .unwrap_or_else(|| Reused { local: LocalContext::default(), frames: FrameStack::new_prealloc(8) })
    }

    /// Keeps the parts for the thread's next transaction, unless the memory buffer grew past
    /// [`MAX_KEPT_MEMORY`] (a call that used that much gives it back at once rather than
    /// when the thread ends).
    fn put(mut self) {
        if self.local.shared_memory_buffer.borrow().capacity() > MAX_KEPT_MEMORY {
            return;
        }
        self.local.clear();
        REUSED.with(|reused| *reused.borrow_mut() = Some(self));
    }
}

/// Who pays the block's beneficiary its priority fee.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reward {
    /// revm, inside the transaction, as on Ethereum.
    Pay,
    /// The caller, after the transaction.
    Defer,
}

/// revm's mainnet handler without the beneficiary's reward.
struct DeferReward<EVM, ERROR, FRAME>(PhantomData<(EVM, ERROR, FRAME)>);

impl<EVM, ERROR, FRAME> Default for DeferReward<EVM, ERROR, FRAME> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<EVM, ERROR, FRAME> Handler for DeferReward<EVM, ERROR, FRAME>
where
    EVM: EvmTr<Context: ContextTr<Journal: JournalTr<State = RevmChanges>>, Frame = FRAME>,
    ERROR: EvmTrError<EVM>,
    FRAME: FrameTr<FrameResult = FrameResult, FrameInit = FrameInit>,
{
    type Evm = EVM;
    type Error = ERROR;
    type HaltReason = HaltReason;

    fn reward_beneficiary(
        &self,
        _evm: &mut EVM,
        _result: &mut FrameResult,
    ) -> std::result::Result<(), ERROR> {
        Ok(())
    }
}

fn executed(result: ExecutionResult) -> Executed {
    let gas_used = result.tx_gas_used();
    match result {
        ExecutionResult::Success { logs, output, .. } => {
            let created = match &output {
                Output::Create(_, address) => *address,
                Output::Call(_) => None,
            };
            Executed { status: Status::Success, gas_used, logs, output: output.into_data(), created }
        }
        ExecutionResult::Revert { output, .. } => {
            Executed { status: Status::Revert, gas_used, logs: Vec::new(), output, created: None }
        }
        ExecutionResult::Halt { reason, .. } => Executed {
            status: Status::Halt(format!("{reason:?}")),
            gas_used,
            logs: Vec::new(),
            output: Bytes::new(),
            created: None,
        },
    }
}
