//! The pallet itself: storage, calls, events, errors, genesis, queries, and `Currency`.

use hyperion_primitives::{Address, Balance, DispatchError, Weight};
use hyperion_runtime::{
    decode_call, query_arg, Assumption, Blake2_128Concat, CallResult, Condition, Context, Currency, Delta,
    DeltaKind, GenesisError, Origin, Pallet, PalletMetadata, QueryContext, QueryError, StorageMap,
    StorageRead, StorageValue,
};
use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;

use crate::{TRANSFER_ALL_WEIGHT, TRANSFER_WEIGHT};

pub(crate) const PREFIX: &str = "Balances";

/// Each account's balances.
pub const ACCOUNTS: StorageMap<Address, AccountData, Blake2_128Concat> = StorageMap::new(PREFIX, "Accounts");
/// Sum of all free and held balances.
pub const TOTAL_ISSUANCE: StorageValue<Balance> = StorageValue::new(PREFIX, "TotalIssuance");
/// Everything ever burned (fees' burn share, explicit burns).
pub const TOTAL_BURNED: StorageValue<Balance> = StorageValue::new(PREFIX, "TotalBurned");

/// `+add −sub` on an account's free balance, as a delta on [`ACCOUNTS`]: how credits (transfers
/// in, fee shares, deposits) reach an account without reading it, so that many transactions
/// can pay the same account in parallel. Saturating: the sum of all balances is the total
/// issuance, a `u128`, so a credit never overflows.
pub static FREE: DeltaKind =
    DeltaKind { name: "Balances.Accounts.free", apply: apply_free, independent: false };

fn apply_free(value: Option<&[u8]>, add: Balance, sub: Balance) -> Vec<u8> {
    let mut data = value.and_then(|mut v| AccountData::decode(&mut v).ok()).unwrap_or_default();
    data.free = data.free.saturating_add(add).saturating_sub(sub);
    data.encode()
}

/// An account's free balance ([`ACCOUNTS`]) is at least `a` (the second parameter is unused):
/// what a transaction that takes at most `a` needs, assumed instead of read (see
/// [`Currency::assume_free_at_least`]).
pub static FREE_AT_LEAST: Condition =
    Condition { name: "Balances.Accounts.free at least", holds: free_at_least };

fn free_at_least(value: Option<&[u8]>, amount: Balance, _: Balance) -> bool {
    value.and_then(|mut v| AccountData::decode(&mut v).ok()).unwrap_or_default().free >= amount
}

/// `+add −sub` on [`TOTAL_ISSUANCE`] or [`TOTAL_BURNED`].
fn total_delta(add: Balance, sub: Balance) -> Delta {
    Delta { add, sub, kind: &hyperion_runtime::U128 }
}

/// An account's balances.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Encode, Decode)]
pub struct AccountData {
    /// Spendable.
    pub free: Balance,
    /// Locked by other pallets.
    pub held: Balance,
}

/// Calls.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub enum Call {
    /// Moves `value` from the signer's free balance to `dest`.
    #[codec(index = 0)]
    Transfer {
        /// Recipient.
        dest: Address,
        /// Amount in the smallest unit.
        value: Balance,
    },
    /// Moves the signer's whole free balance (after the fee) to `dest`.
    #[codec(index = 1)]
    TransferAll {
        /// Recipient.
        dest: Address,
    },
}

/// Events.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode)]
pub enum Event {
    /// Funds moved.
    #[codec(index = 0)]
    Transfer {
        /// Sender.
        from: Address,
        /// Recipient.
        to: Address,
        /// Amount.
        amount: Balance,
    },
    /// Funds left the issuance (for example a fee, before it is redistributed).
    #[codec(index = 1)]
    Withdraw {
        /// Whose free balance.
        who: Address,
        /// Amount.
        amount: Balance,
    },
    /// Funds entered the issuance (a fee share, a reward).
    #[codec(index = 2)]
    Deposit {
        /// Whose free balance.
        who: Address,
        /// Amount.
        amount: Balance,
    },
    /// Funds were destroyed for good.
    #[codec(index = 3)]
    Burned {
        /// Whose free balance.
        who: Address,
        /// Amount.
        amount: Balance,
    },
    /// Funds were moved from free to held.
    #[codec(index = 4)]
    Held {
        /// Whose balance.
        who: Address,
        /// Amount.
        amount: Balance,
    },
    /// Funds were moved from held to free.
    #[codec(index = 5)]
    Released {
        /// Whose balance.
        who: Address,
        /// Amount.
        amount: Balance,
    },
    /// A free balance was set by the EVM (the issuance follows the difference).
    #[codec(index = 6)]
    BalanceSet {
        /// Whose balance.
        who: Address,
        /// The new free balance.
        free: Balance,
    },
}

/// Errors, as clients see them (by index).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Error {
    /// The free balance is lower than the amount.
    InsufficientBalance = 0,
    /// The held balance is lower than the amount.
    InsufficientHeld = 1,
    /// A balance or the issuance would overflow.
    Overflow = 2,
}

/// The genesis section: `{ "balances": [["0x<address>", "<amount>"], ...] }`.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalancesGenesis {
    /// Initial endowments; amounts as decimal strings (or `1e24` form) or numbers.
    pub balances: Vec<(Address, Amount)>,
}

/// A JSON amount (string or number).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Amount(#[serde(with = "hyperion_runtime::serde_u128")] pub Balance);

/// The balances pallet. `index` is its index in the runtime, used for the errors and events
/// it reports when other pallets call it through [`Currency`].
pub struct Balances {
    index: u8,
}

impl Balances {
    /// The pallet, to be placed at `index` in the runtime.
    pub fn new(index: u8) -> Self {
        Self { index }
    }

    fn error(&self, e: Error) -> DispatchError {
        DispatchError::Module { pallet: self.index, error: e as u8 }
    }

    fn account(s: &mut (impl StorageRead + ?Sized), who: &Address) -> AccountData {
        ACCOUNTS.get_or_default(s, who)
    }

    fn set_account(ctx: &mut Context<'_>, who: &Address, data: &AccountData) {
        ACCOUNTS.insert(ctx, who, data);
    }

    /// Changes the total issuance by `+add −sub`, as a delta (every fee changes it).
    fn change_issuance(ctx: &mut Context<'_>, add: Balance, sub: Balance) {
        TOTAL_ISSUANCE.add(ctx, total_delta(add, sub));
    }

    /// Credits `amount` to `who`'s free balance without reading it.
    fn credit(ctx: &mut Context<'_>, who: &Address, amount: Balance) {
        ACCOUNTS.add(ctx, who, Delta::add(&FREE, amount));
    }

    fn take_free(
        &self,
        ctx: &mut Context<'_>,
        who: &Address,
        amount: Balance,
    ) -> Result<AccountData, DispatchError> {
        let mut data = Self::account(ctx, who);
        data.free = data.free.checked_sub(amount).ok_or(self.error(Error::InsufficientBalance))?;
        Ok(data)
    }

    /// Removes `amount` from `who`'s free balance and from the issuance (all or nothing).
    fn destroy(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError> {
        let data = self.take_free(ctx, who, amount)?;
        Self::change_issuance(ctx, 0, amount);
        Self::set_account(ctx, who, &data);
        Ok(())
    }

    /// [`Balances::destroy`] without reading the balance, as deltas: for an amount that a granted
    /// [`Currency::assume_free_at_least`] covers.
    fn destroy_assumed(ctx: &mut Context<'_>, who: &Address, amount: Balance) {
        ACCOUNTS.add(ctx, who, Delta::sub(&FREE, amount));
        Self::change_issuance(ctx, 0, amount);
    }

    fn do_transfer(
        &self,
        ctx: &mut Context<'_>,
        from: &Address,
        to: &Address,
        amount: Balance,
    ) -> Result<(), DispatchError> {
        let from_data = self.take_free(ctx, from, amount)?;
        if from != to {
            Self::set_account(ctx, from, &from_data);
            Self::credit(ctx, to, amount);
        }
        ctx.deposit_event_of(self.index, &Event::Transfer { from: *from, to: *to, amount });
        Ok(())
    }

    fn decode(call: u8, args: &[u8]) -> Result<Call, DispatchError> {
        decode_call::<Call>(call, args)
    }
}

impl Pallet for Balances {
    fn name(&self) -> &'static str {
        "balances"
    }

    fn metadata(&self) -> PalletMetadata {
        crate::metadata::metadata()
    }

    fn call_weight(&self, call: u8, args: &[u8]) -> Result<Weight, DispatchError> {
        Ok(match Self::decode(call, args)? {
            Call::Transfer { .. } => TRANSFER_WEIGHT,
            Call::TransferAll { .. } => TRANSFER_ALL_WEIGHT,
        })
    }

    fn dispatch(&self, ctx: &mut Context<'_>, origin: Origin, call: u8, args: &[u8]) -> CallResult {
        let who = origin.ensure_signed()?;
        match Self::decode(call, args)? {
            Call::Transfer { dest, value } => self.do_transfer(ctx, &who, &dest, value)?,
            Call::TransferAll { dest } => {
                let free = Self::account(ctx, &who).free;
                self.do_transfer(ctx, &who, &dest, free)?
            }
        }
        Ok(())
    }

    fn credits(&self, call: u8, args: &[u8]) -> Option<Address> {
        match Self::decode(call, args).ok()? {
            Call::Transfer { dest, .. } | Call::TransferAll { dest } => Some(dest),
        }
    }

    fn genesis(&self, ctx: &mut Context<'_>, config: &Value) -> Result<(), GenesisError> {
        let config: BalancesGenesis = if config.is_null() {
            BalancesGenesis::default()
        } else {
            serde_json::from_value(config.clone())
                .map_err(|e| GenesisError::new("balances", e.to_string()))?
        };
        let mut seen = BTreeSet::new();
        let mut issuance: Balance = 0;
        for (i, (who, Amount(amount))) in config.balances.iter().enumerate() {
            if !seen.insert(*who) {
                return Err(GenesisError::new(format!("balances[{i}]"), format!("{who} is endowed twice")));
            }
            issuance = issuance.checked_add(*amount).ok_or_else(|| {
                GenesisError::new(format!("balances[{i}]"), "total issuance overflows u128")
            })?;
            Self::set_account(ctx, who, &AccountData { free: *amount, held: 0 });
        }
        TOTAL_ISSUANCE.put(ctx, &issuance);
        TOTAL_BURNED.put(ctx, &0);
        Ok(())
    }

    fn default_genesis(&self) -> Value {
        json!({ "balances": [] })
    }

    fn query(&self, ctx: &mut QueryContext, name: &str, args: &Value) -> Result<Value, QueryError> {
        match name {
            "account" => {
                let who = query_arg::<Address>(args, "who")?;
                let data = Self::account(ctx, &who);
                Ok(json!({ "free": data.free.to_string(), "held": data.held.to_string() }))
            }
            "totalIssuance" => Ok(json!({
                "totalIssuance": TOTAL_ISSUANCE.get_or_default(ctx).to_string(),
                "totalBurned": TOTAL_BURNED.get_or_default(ctx).to_string(),
            })),
            other => Err(QueryError::Unknown(format!("balances.{other}"))),
        }
    }
}

impl Currency for Balances {
    fn free_balance(&self, s: &mut dyn StorageRead, who: &Address) -> Balance {
        Self::account(s, who).free
    }

    fn held_balance(&self, s: &mut dyn StorageRead, who: &Address) -> Balance {
        Self::account(s, who).held
    }

    fn total_issuance(&self, s: &mut dyn StorageRead) -> Balance {
        TOTAL_ISSUANCE.get_or_default(s)
    }

    fn transfer(
        &self,
        ctx: &mut Context<'_>,
        from: &Address,
        to: &Address,
        amount: Balance,
    ) -> Result<(), DispatchError> {
        self.do_transfer(ctx, from, to, amount)
    }

    fn withdraw(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError> {
        self.destroy(ctx, who, amount)?;
        ctx.deposit_event_of(self.index, &Event::Withdraw { who: *who, amount });
        Ok(())
    }

    fn deposit(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError> {
        Self::credit(ctx, who, amount);
        Self::change_issuance(ctx, amount, 0);
        ctx.deposit_event_of(self.index, &Event::Deposit { who: *who, amount });
        Ok(())
    }

    fn burn(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError> {
        self.destroy(ctx, who, amount)?;
        TOTAL_BURNED.add(ctx, total_delta(amount, 0));
        ctx.deposit_event_of(self.index, &Event::Burned { who: *who, amount });
        Ok(())
    }

    fn assume_free_at_least(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> bool {
        ctx.assume(&ACCOUNTS.key(who), Assumption::new(&FREE_AT_LEAST, amount, 0))
    }

    fn withdraw_assumed(
        &self,
        ctx: &mut Context<'_>,
        who: &Address,
        amount: Balance,
    ) -> Result<(), DispatchError> {
        Self::destroy_assumed(ctx, who, amount);
        ctx.deposit_event_of(self.index, &Event::Withdraw { who: *who, amount });
        Ok(())
    }

    fn burn_assumed(
        &self,
        ctx: &mut Context<'_>,
        who: &Address,
        amount: Balance,
    ) -> Result<(), DispatchError> {
        Self::destroy_assumed(ctx, who, amount);
        TOTAL_BURNED.add(ctx, total_delta(amount, 0));
        ctx.deposit_event_of(self.index, &Event::Burned { who: *who, amount });
        Ok(())
    }

    fn set_free(&self, ctx: &mut Context<'_>, who: &Address, free: Balance) -> Result<(), DispatchError> {
        let mut data = Self::account(ctx, who);
        if data.free == free {
            return Ok(());
        }
        let (add, sub) = if free > data.free { (free - data.free, 0) } else { (0, data.free - free) };
        Self::change_issuance(ctx, add, sub);
        data.free = free;
        Self::set_account(ctx, who, &data);
        ctx.deposit_event_of(self.index, &Event::BalanceSet { who: *who, free });
        Ok(())
    }

    fn hold(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError> {
        let mut data = self.take_free(ctx, who, amount)?;
        data.held = data.held.checked_add(amount).ok_or(self.error(Error::Overflow))?;
        Self::set_account(ctx, who, &data);
        ctx.deposit_event_of(self.index, &Event::Held { who: *who, amount });
        Ok(())
    }

    fn release(&self, ctx: &mut Context<'_>, who: &Address, amount: Balance) -> Result<(), DispatchError> {
        let mut data = Self::account(ctx, who);
        data.held = data.held.checked_sub(amount).ok_or(self.error(Error::InsufficientHeld))?;
        data.free = data.free.checked_add(amount).ok_or(self.error(Error::Overflow))?;
        Self::set_account(ctx, who, &data);
        ctx.deposit_event_of(self.index, &Event::Released { who: *who, amount });
        Ok(())
    }
}
