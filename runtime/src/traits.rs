//! Small traits through which pallets use each other.

use std::any::Any;

use hyperion_primitives::{Address, Balance, DispatchError};

use crate::context::{Context, StorageRead};
use crate::executive::ValidTransaction;
use crate::InvalidTransaction;

/// A fungible ledger with holds, implemented by the balances pallet.
///
/// Every account has a `free` balance (spendable) and a `held` balance (locked for a purpose:
/// staking bonds, deposits). Total issuance is the sum of all free and held balances; `withdraw`
/// and `burn` reduce it, `deposit` increases it. Every mutating method is all-or-nothing: on
/// error nothing changed.
pub trait Currency: Send + Sync {
    /// Spendable balance of `who`.
    fn free_balance(&self, s: &mut dyn StorageRead, who: &Address) -> Balance;

    /// Held balance of `who`.
    fn held_balance(&self, s: &mut dyn StorageRead, who: &Address) -> Balance;

    /// Sum of all free and held balances.
    fn total_issuance(&self, s: &mut dyn StorageRead) -> Balance;

    /// Moves `amount` of free balance from `from` to `to`.
    fn transfer(
        &self,
        ctx: &mut Context<'_>,
        from: &Address,
        to: &Address,
        amount: Balance,
    ) -> Result<(), DispatchError>;

    /// Removes `amount` from `who`'s free balance and from the issuance (fees that are then
    /// redistributed with [`Currency::deposit`]).
    fn withdraw(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError>;

    /// Adds `amount` to `who`'s free balance and to the issuance.
    fn deposit(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError>;

    /// Destroys `amount` of `who`'s free balance for good and records it as burned.
    fn burn(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError>;

    /// Whether `who`'s free balance is at least `amount`, asked without making the transaction
    /// depend on the exact balance (see [`Context::assume`]). On `true` the transaction may take
    /// up to `amount` with [`Currency::withdraw_assumed`] and [`Currency::burn_assumed`], which
    /// do not read the balance, and must not read it itself. The default reads the balance.
    fn assume_free_at_least(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> bool {
        self.free_balance(ctx, who) >= amount
    }

    /// [`Currency::withdraw`] without reading the balance (as deltas): only for amounts that
    /// a granted [`Currency::assume_free_at_least`] of the same transaction covers. The
    /// default is [`Currency::withdraw`].
    fn withdraw_assumed(
        &self,
        ctx: &mut Context<'_>,
        who: &Address,
        amount: Balance,
    ) -> Result<(), DispatchError> {
        self.withdraw(ctx, who, amount)
    }

    /// [`Currency::burn`] without reading the balance, as [`Currency::withdraw_assumed`]. The
    /// default is [`Currency::burn`].
    fn burn_assumed(
        &self,
        ctx: &mut Context<'_>,
        who: &Address,
        amount: Balance,
    ) -> Result<(), DispatchError> {
        self.burn(ctx, who, amount)
    }

    /// Sets `who`'s free balance to `free`, changing the issuance by the difference: for the
    /// EVM, which reports the balances a transaction left rather than the transfers it made.
    fn set_free(&self, ctx: &mut Context<'_>, who: &Address, free: Balance) -> Result<(), DispatchError>;

    /// Moves `amount` from free to held.
    fn hold(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError>;

    /// Moves `amount` from held back to free.
    fn release(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError>;
}

/// Ethereum transactions, implemented by the EVM pallet. The runtime hands it every
/// [`Extrinsic::Ethereum`](hyperion_primitives::Extrinsic) (the raw EIP-2718 bytes): the pallet
/// decodes, checks, executes and charges them itself, and shares the account nonce with native
/// extrinsics.
pub trait EthereumTransactions: Send + Sync {
    /// Checks `raw` against `state` for the pool: everything but the exact nonce (a nonce above
    /// the account's is valid for the pool to hold). Errors carry the messages Ethereum clients
    /// expect.
    fn validate(
        &self,
        state: &mut dyn StorageRead,
        raw: &[u8],
    ) -> Result<ValidTransaction, InvalidTransaction>;

    /// Executes `raw` in the block of `ctx` with the exact nonce: gas is charged and its fee
    /// split, the changes kept (also when the EVM reverts: the outcome then says it failed).
    /// Refuses an invalid transaction. The runtime runs this in a storage transaction (a refusal
    /// leaves nothing behind), makes the receipt from the outcome and the events it deposited,
    /// and checks the outcome's gas limit against what the transactions before it left of the
    /// block's gas (so that transactions do not read a block-wide gas counter, which would make
    /// each depend on the one before). Gas used is added to the pallet's counter as a delta.
    /// `prepared`, when given, is what [`EthereumTransactions::prepare`] made of `raw`.
    fn apply(
        &self,
        ctx: &mut Context<'_>,
        raw: &[u8],
        prepared: Option<&PreparedEthereum>,
    ) -> Result<EthereumOutcome, InvalidTransaction>;

    /// The gas limit of `raw` without checking the rest of it (the block builder's budget).
    fn gas_limit(&self, raw: &[u8]) -> Result<u64, InvalidTransaction>;

    /// What can be worked out of `raw` before it runs, reading no state: the runtime prepares a
    /// block's (or a round's) transactions all at once on the executor's threads, then hands
    /// each back to [`EthereumTransactions::apply`], which a parallel run may call more than
    /// once per transaction. Decoding and the sender's recovery are done here once instead of
    /// in every execution. Nothing by default.
    fn prepare(&self, raw: &[u8]) -> PreparedEthereum {
        let _ = raw;
        PreparedEthereum::default()
    }

    /// The gas a block may use, in `state`.
    fn block_gas_limit(&self, state: &mut dyn StorageRead) -> u64;
}

/// An Ethereum transaction prepared before its block runs (see
/// [`EthereumTransactions::prepare`]).
#[derive(Default)]
pub struct PreparedEthereum {
    /// What the block's executor may know of it before it runs.
    pub hints: EthereumHints,
    /// The handler's own work on it (its decoding), for the handler's `apply`; the runtime
    /// only holds it.
    pub decoded: Option<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for PreparedEthereum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedEthereum")
            .field("hints", &self.hints)
            .field("decoded", &self.decoded.is_some())
            .finish()
    }
}

/// Hints about an Ethereum transaction for the block's executor: results never depend on them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct EthereumHints {
    /// Its sender, when it is known without recovering it from the signature (as for a
    /// transaction the pool admitted) and the transaction needs its sender's previous one to
    /// have run (see [`hyperion_executor::Transactions::depends_on`]).
    pub sender: Option<Address>,
    /// What it calls or pays, as a label (see [`hyperion_executor::Transactions::target`]).
    pub target: Option<u64>,
}

/// What an included Ethereum transaction did, for its receipt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EthereumOutcome {
    /// Whether the EVM execution succeeded.
    pub success: bool,
    /// Why it failed (the EVM pallet's error), if it did.
    pub error: Option<DispatchError>,
    /// What the sender paid: gas used × effective gas price.
    pub fee: Balance,
    /// Gas used.
    pub gas_used: u64,
    /// The transaction's gas limit.
    pub gas_limit: u64,
}
