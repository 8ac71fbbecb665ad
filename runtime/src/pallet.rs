//! The `Pallet` trait: what a module of the runtime provides.

use hyperion_primitives::{Address, DispatchError, Weight};
use serde_json::Value;

use crate::context::{Context, QueryContext};
use crate::metadata::PalletMetadata;

/// Who is calling.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Origin {
    /// An account that signed the extrinsic.
    Signed(Address),
    /// The chain itself, acting through governance (for calls that only governance may make).
    Root,
    /// No one: an inherent or a hook.
    None,
}

impl Origin {
    /// The signer, or [`DispatchError::BadOrigin`].
    pub fn ensure_signed(&self) -> Result<Address, DispatchError> {
        match self {
            Origin::Signed(who) => Ok(*who),
            _ => Err(DispatchError::BadOrigin),
        }
    }

    /// Ok for [`Origin::Root`], else [`DispatchError::BadOrigin`].
    pub fn ensure_root(&self) -> Result<(), DispatchError> {
        match self {
            Origin::Root => Ok(()),
            _ => Err(DispatchError::BadOrigin),
        }
    }
}

/// How a pallet's call failed: with one of its own errors (by index in its metadata) or with a
/// general dispatch error. The runtime turns `Module(i)` into
/// [`DispatchError::Module`] with the pallet's index.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CallError {
    /// The pallet's own error, by its index in the pallet's `Error` enum.
    Module(u8),
    /// A general dispatch error (bad origin, undecodable arguments, an error of another pallet).
    Dispatch(DispatchError),
}

impl From<DispatchError> for CallError {
    fn from(e: DispatchError) -> Self {
        CallError::Dispatch(e)
    }
}

/// The result of a call.
pub type CallResult = Result<(), CallError>;

/// Why a query (`state_call`) failed.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum QueryError {
    /// No such pallet or query.
    #[error("unknown query {0}")]
    Unknown(String),
    /// The arguments are malformed.
    #[error("bad arguments: {0}")]
    BadArguments(String),
}

/// Why a pallet's genesis configuration was refused. `field` is a path inside the pallet's
/// section of the chain spec, e.g. `balances[2]`.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct GenesisError {
    /// Where in the pallet's genesis section the problem is.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl GenesisError {
    /// A new error at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// A runtime module. A pallet is a plain struct; its calls, events and errors are SCALE enums
/// described by [`Pallet::metadata`], and its storage items are typed constants.
///
/// Contract:
/// - `call_weight` and `dispatch` get the same `(call, args)`; `call_weight` must not touch state
///   and must fail (with [`DispatchError::Undecodable`] or [`DispatchError::CallNotFound`]) for
///   anything `dispatch` could not decode, so that malformed calls are refused before inclusion.
/// - `dispatch` runs inside a storage transaction: when it returns an error every write and
///   event it made is discarded (the fee and the nonce are kept by the runtime).
/// - Hooks and genesis must be deterministic: same state in, same changes out.
pub trait Pallet: Send + Sync {
    /// The pallet's name, as clients address it (`balances`).
    fn name(&self) -> &'static str;

    /// Calls, events, errors, storage items and queries, as plain data.
    fn metadata(&self) -> PalletMetadata;

    /// The weight of a call, from its arguments alone.
    fn call_weight(&self, call: u8, args: &[u8]) -> Result<Weight, DispatchError>;

    /// Executes a call.
    fn dispatch(&self, ctx: &mut Context<'_>, origin: Origin, call: u8, args: &[u8]) -> CallResult;

    /// The account a call credits when it succeeds, from its arguments alone (a transfer's
    /// recipient). A later extrinsic of that account in the same block surely depends on this
    /// one, since it pays its fee from the credited balance: parallel execution runs it after
    /// this one, and a block that is mostly such a chain runs serially. Only a hint: results
    /// never depend on it.
    fn credits(&self, _call: u8, _args: &[u8]) -> Option<Address> {
        None
    }

    /// Runs at the start of every block, before any extrinsic. Returns the weight used.
    fn on_initialize(&self, _ctx: &mut Context<'_>) -> Weight {
        0
    }

    /// Runs at the end of every block, after the last extrinsic.
    fn on_finalize(&self, _ctx: &mut Context<'_>) {}

    /// Writes the initial state from this pallet's section of the chain spec's genesis
    /// (`Value::Null` when the section is absent).
    fn genesis(&self, _ctx: &mut Context<'_>, _config: &Value) -> Result<(), GenesisError> {
        Ok(())
    }

    /// This pallet's default genesis section, as `build-spec` prints it.
    fn default_genesis(&self) -> Value {
        Value::Null
    }

    /// Answers a named read-only query (`state_call`), with JSON arguments and result.
    fn query(&self, _ctx: &mut QueryContext, name: &str, _args: &Value) -> Result<Value, QueryError> {
        Err(QueryError::Unknown(format!("{}.{name}", self.name())))
    }
}
