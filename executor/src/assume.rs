//! Assumptions: a transaction that needs a condition on a value, not the value itself.
//!
//! A transfer needs its sender's nonce to be its own and the balance to cover its cost; what
//! it then does to the sender's record (one more nonce, the cost taken off) does not depend on
//! the exact balance. Read exactly, every transaction of a sender that sends many in one block
//! (an exchange's hot wallet, a mining pool paying out) would depend on the one before it. With
//! an assumption ([`crate::View::assume`]) and the change written as a [`crate::Delta`], they do
//! not: parallel execution checks the condition on the value the transaction would have read
//! when it validates the transaction, instead of comparing values.

use std::fmt;

/// A condition on the encoded value of a key, with two parameters.
pub struct Condition {
    /// A name for logs and errors.
    pub name: &'static str,
    /// Whether `value` (`None`: the key is absent) satisfies the condition for parameters `a`
    /// and `b`. Must be a pure function: the executor may call it several times for the same
    /// inputs, from several threads.
    pub holds: fn(value: Option<&[u8]>, a: u128, b: u128) -> bool,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A [`Condition`] with its parameters: what a transaction assumes of a key's value.
#[derive(Clone, Copy, Debug)]
pub struct Assumption {
    /// The condition.
    pub condition: &'static Condition,
    /// Its first parameter.
    pub a: u128,
    /// Its second parameter.
    pub b: u128,
}

impl Assumption {
    /// `condition` with parameters `a` and `b`.
    pub fn new(condition: &'static Condition, a: u128, b: u128) -> Self {
        Self { condition, a, b }
    }

    /// Whether `value` satisfies it.
    pub fn holds(&self, value: Option<&[u8]>) -> bool {
        (self.condition.holds)(value, self.a, self.b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static AT_LEAST: Condition = Condition {
        name: "at least",
        holds: |value, a, _| {
            value.and_then(|v| <[u8; 16]>::try_from(v).ok()).map_or(0, u128::from_le_bytes) >= a
        },
    };

    #[test]
    fn an_assumption_applies_its_condition_with_its_parameters() {
        let five = 5u128.to_le_bytes();
        assert!(Assumption::new(&AT_LEAST, 5, 0).holds(Some(&five)));
        assert!(!Assumption::new(&AT_LEAST, 6, 0).holds(Some(&five)));
        assert!(!Assumption::new(&AT_LEAST, 1, 0).holds(None));
        assert!(Assumption::new(&AT_LEAST, 0, 0).holds(None));
    }
}
