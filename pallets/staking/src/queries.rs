//! Read-only queries (`state_call staking_<name>`). Amounts are decimal strings.

use hyperion_primitives::Address;
use hyperion_runtime::{holders_pool_account, query_arg, QueryContext, QueryError, StorageRead};
use serde_json::{json, Value};

use crate::pallet::{
    bonded_pot, reward_pot, unbonding_pot, Staking, DELEGATIONS, EPOCH, HOLDER_SEQUENCERS, SEQUENCERS,
    SEQUENCER_LIST, TOTAL_BONDED, TOTAL_UNBONDING, UNBONDING, VALIDATORS,
};
use crate::types::{Elected, Sequencer, Status};

pub(crate) fn query(
    staking: &Staking,
    ctx: &mut QueryContext,
    name: &str,
    args: &Value,
) -> Result<Value, QueryError> {
    match name {
        "config" => Ok(serde_json::to_value(Staking::config(ctx)).expect("serializable")),
        "sequencers" => {
            let list = SEQUENCER_LIST.get_or_default(ctx);
            Ok(Value::Array(list.iter().map(|operator| sequencer(ctx, operator)).collect()))
        }
        "sequencer" => {
            let operator = query_arg::<Address>(args, "operator")?;
            if SEQUENCERS.get(ctx, &operator).is_none() {
                return Ok(Value::Null);
            }
            Ok(sequencer(ctx, &operator))
        }
        "holder" => {
            let who = query_arg::<Address>(args, "who")?;
            Ok(holder(ctx, &who))
        }
        "validators" => {
            let epoch = EPOCH.get_or_default(ctx);
            let set = |ctx: &mut QueryContext, e: u64| VALIDATORS.get(ctx, &e).map(|s| elected(&s));
            Ok(json!({ "epoch": epoch, "current": set(ctx, epoch), "next": set(ctx, epoch + 1) }))
        }
        "totals" => {
            let mut balance = |who: Address| staking.currency.free_balance(ctx, &who).to_string();
            let pots = json!({
                "bondedPot": balance(bonded_pot()),
                "unbondingPot": balance(unbonding_pot()),
                "rewardPot": balance(reward_pot()),
                "holdersPool": balance(holders_pool_account()),
            });
            let mut totals = json!({
                "bonded": TOTAL_BONDED.get_or_default(ctx).to_string(),
                "unbonding": TOTAL_UNBONDING.get_or_default(ctx).to_string(),
            });
            totals.as_object_mut().expect("an object").extend(pots.as_object().expect("an object").clone());
            Ok(totals)
        }
        _ => Err(QueryError::Unknown(format!("staking.{name}"))),
    }
}

fn elected(set: &[Elected]) -> Value {
    set.iter().map(|v| json!({ "operator": v.operator, "key": v.key, "power": v.power })).collect()
}

fn sequencer(ctx: &mut QueryContext, operator: &Address) -> Value {
    let seq: Sequencer = SEQUENCERS.get(ctx, operator).expect("listed sequencers exist");
    let jailed_until = match seq.status {
        Status::Jailed { until } => Some(until),
        _ => None,
    };
    json!({
        "operator": operator,
        "key": seq.key,
        "status": seq.status.name(),
        "jailedUntil": jailed_until,
        "commission": seq.commission.0,
        "stake": seq.tokens.to_string(),
        "selfBond": Staking::self_bond(ctx, operator, &seq).to_string(),
        "unbonding": seq.unbonding_tokens.to_string(),
        "commissionEarned": seq.commission_earned.to_string(),
        "slashed": seq.slashed.to_string(),
    })
}

/// A holder's stake, pending rewards and unbonding entries.
pub(crate) fn holder(s: &mut (impl StorageRead + ?Sized), who: &Address) -> Value {
    let epoch = EPOCH.get_or_default(s);
    let mut delegations = Vec::new();
    let mut claimable: u128 = 0;
    for operator in HOLDER_SEQUENCERS.get_or_default(s, who) {
        let (Some(seq), Some(d)) = (SEQUENCERS.get(s, &operator), DELEGATIONS.get(s, who, &operator)) else {
            continue;
        };
        let pending = d.pending(&seq, epoch);
        claimable += pending;
        delegations.push(json!({
            "sequencer": operator,
            "stake": seq.value_of(d.total_shares()).to_string(),
            "earningFromNextEpoch": seq.value_of(if d.incoming_epoch >= epoch { d.incoming } else { 0 }).to_string(),
            "pendingRewards": pending.to_string(),
        }));
    }
    let unbonding: Vec<Value> = UNBONDING
        .get_or_default(s, who)
        .iter()
        .map(|entry| {
            let value = SEQUENCERS.get(s, &entry.sequencer).map_or(0, |seq| seq.unbonding_value_of(entry.shares));
            json!({ "sequencer": entry.sequencer, "amount": value.to_string(), "releaseBlock": entry.release_block })
        })
        .collect();
    let commission = SEQUENCERS.get(s, who).map_or(0, |seq| seq.commission_earned);
    claimable += commission;
    json!({
        "delegations": delegations,
        "unbonding": unbonding,
        "commissionEarned": commission.to_string(),
        "claimable": claimable.to_string(),
    })
}
