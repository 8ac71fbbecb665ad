//! Runtime metadata: every pallet's calls, events, errors, storage items and queries as plain
//! data, served as JSON by `state_getMetadata`, and a generic codec that turns JSON arguments into
//! SCALE and SCALE fields back into JSON using only that data. Generic clients (the CLI's
//! `hyperion tx`, explorers) need nothing else.
//!
//! Types are named by strings: `bool`, `u8`, `u16`, `u32`, `u64`, `u128`, `Balance` (a u128
//! amount in the smallest unit), `Address`, `Hash`, `Bytes` (`Vec<u8>`), `String`, `Vec<T>`,
//! `Option<T>`.
//!
//! JSON forms: integers as numbers or decimal strings (u128 and `Balance` are always written as
//! strings); `Balance` also accepts `1.5e18`-style decimals; `Address`, `Hash`, `Bytes` as `0x`
//! hex; `Option` as `null` or the value.

use parity_scale_codec::{Compact, Decode, Encode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

use hyperion_primitives::{Address, Hash};

/// The largest collection the generic decoder accepts, so that a malformed length cannot make a
/// client allocate without bound.
const MAX_DECODED_ITEMS: usize = 1 << 20;

/// A SCALE type, as metadata names it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TypeDef {
    /// `bool`
    Bool,
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `u128`
    U128,
    /// `Balance`: u128 in the smallest unit (18 decimals).
    Balance,
    /// `Address`: 20 bytes.
    Address,
    /// `Hash`: 32 bytes.
    Hash,
    /// `Bytes`: `Vec<u8>`, compact length then bytes.
    Bytes,
    /// `String`: UTF-8, compact length then bytes.
    String,
    /// `Vec<T>`
    Vec(Box<TypeDef>),
    /// `Option<T>`
    Option(Box<TypeDef>),
}

impl fmt::Display for TypeDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeDef::Bool => f.write_str("bool"),
            TypeDef::U8 => f.write_str("u8"),
            TypeDef::U16 => f.write_str("u16"),
            TypeDef::U32 => f.write_str("u32"),
            TypeDef::U64 => f.write_str("u64"),
            TypeDef::U128 => f.write_str("u128"),
            TypeDef::Balance => f.write_str("Balance"),
            TypeDef::Address => f.write_str("Address"),
            TypeDef::Hash => f.write_str("Hash"),
            TypeDef::Bytes => f.write_str("Bytes"),
            TypeDef::String => f.write_str("String"),
            TypeDef::Vec(t) => write!(f, "Vec<{t}>"),
            TypeDef::Option(t) => write!(f, "Option<{t}>"),
        }
    }
}

impl FromStr for TypeDef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let inner =
            |prefix: &str| s.strip_prefix(prefix).and_then(|r| r.strip_suffix('>')).map(TypeDef::from_str);
        if let Some(t) = inner("Vec<") {
            return Ok(TypeDef::Vec(Box::new(t?)));
        }
        if let Some(t) = inner("Option<") {
            return Ok(TypeDef::Option(Box::new(t?)));
        }
        Ok(match s {
            "bool" => TypeDef::Bool,
            "u8" => TypeDef::U8,
            "u16" => TypeDef::U16,
            "u32" => TypeDef::U32,
            "u64" => TypeDef::U64,
            "u128" => TypeDef::U128,
            "Balance" => TypeDef::Balance,
            "Address" => TypeDef::Address,
            "Hash" => TypeDef::Hash,
            "Bytes" => TypeDef::Bytes,
            "String" => TypeDef::String,
            other => return Err(format!("unknown type {other:?}")),
        })
    }
}

impl Serialize for TypeDef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TypeDef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A named, typed field of a call, event or query.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Field {
    /// Field name (snake_case).
    pub name: String,
    /// Field type.
    #[serde(rename = "type")]
    pub ty: TypeDef,
}

impl Field {
    /// A field; panics on an unknown type name (metadata is written by pallet authors).
    pub fn new(name: &str, ty: &str) -> Self {
        Self { name: name.into(), ty: ty.parse().unwrap_or_else(|e| panic!("field {name}: {e}")) }
    }
}

/// A call, event or error: one variant of the pallet's SCALE enum.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct VariantMetadata {
    /// Name (snake_case for calls, CamelCase for events and errors).
    pub name: String,
    /// Index: the variant's first encoded byte.
    pub index: u8,
    /// Fields, in encoding order.
    pub fields: Vec<Field>,
    /// What it does or means.
    pub docs: String,
}

impl VariantMetadata {
    /// A variant.
    pub fn new(index: u8, name: &str, fields: Vec<Field>, docs: &str) -> Self {
        Self { name: name.into(), index, fields, docs: docs.into() }
    }
}

/// A storage item.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StorageMetadata {
    /// The item's name (the second half of its key prefix).
    pub name: String,
    /// Map keys, each with its hasher; empty for a value.
    pub keys: Vec<StorageKeyMetadata>,
    /// The value's type.
    pub value: TypeDef,
    /// What it holds.
    pub docs: String,
}

/// One key of a storage map.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StorageKeyMetadata {
    /// The key's type.
    #[serde(rename = "type")]
    pub ty: TypeDef,
    /// The hasher's name (`Blake2_128Concat`, `Identity`).
    pub hasher: String,
}

/// A read-only query served by `state_call`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct QueryMetadata {
    /// Name, called as `pallet_query` (e.g. `balances_account`).
    pub name: String,
    /// Arguments, passed as a JSON object.
    pub args: Vec<Field>,
    /// What it returns.
    pub docs: String,
}

/// Everything a client needs to know about one pallet.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, Default)]
pub struct PalletMetadata {
    /// The pallet's name.
    pub name: String,
    /// Its index in the runtime (the first byte of its calls); set by the runtime.
    pub index: u8,
    /// The name its storage keys are prefixed with.
    pub storage_prefix: String,
    /// Calls.
    pub calls: Vec<VariantMetadata>,
    /// Events.
    pub events: Vec<VariantMetadata>,
    /// Errors (fieldless).
    pub errors: Vec<VariantMetadata>,
    /// Storage items.
    pub storage: Vec<StorageMetadata>,
    /// Queries.
    pub queries: Vec<QueryMetadata>,
    /// Overview.
    pub docs: String,
}

/// The metadata of a whole runtime.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RuntimeMetadata {
    /// Format version of this structure.
    pub version: u32,
    /// Pallets in index order.
    pub pallets: Vec<PalletMetadata>,
}

impl RuntimeMetadata {
    /// A pallet by name.
    pub fn pallet(&self, name: &str) -> Option<&PalletMetadata> {
        self.pallets.iter().find(|p| p.name == name)
    }

    /// A pallet by index.
    pub fn pallet_by_index(&self, index: u8) -> Option<&PalletMetadata> {
        self.pallets.iter().find(|p| p.index == index)
    }

    /// Decodes an event record into `{pallet, event, fields}` JSON.
    pub fn decode_event(&self, pallet: u8, event: u8, data: &[u8]) -> Value {
        let meta = self.pallet_by_index(pallet);
        let variant = meta.and_then(|p| p.events.iter().find(|e| e.index == event));
        match (meta, variant) {
            (Some(p), Some(v)) => {
                let fields = decode_fields(&v.fields, data).unwrap_or_else(
                    |e| serde_json::json!({ "undecodable": e, "data": format!("0x{}", hex::encode(data)) }),
                );
                serde_json::json!({ "pallet": p.name, "event": v.name, "fields": fields })
            }
            _ => serde_json::json!({
                "pallet": pallet, "event": event, "data": format!("0x{}", hex::encode(data))
            }),
        }
    }

    /// A dispatch error as `{pallet, error, docs}` JSON when it is a pallet's error.
    pub fn describe_error(&self, error: &hyperion_primitives::DispatchError) -> Value {
        use hyperion_primitives::DispatchError as E;
        match error {
            E::Module { pallet, error } => {
                let meta = self.pallet_by_index(*pallet);
                let variant = meta.and_then(|p| p.errors.iter().find(|e| e.index == *error));
                match (meta, variant) {
                    (Some(p), Some(v)) => {
                        serde_json::json!({ "pallet": p.name, "error": v.name, "docs": v.docs })
                    }
                    _ => serde_json::json!({ "pallet": pallet, "error": error }),
                }
            }
            other => serde_json::json!({ "error": format!("{other:?}") }),
        }
    }
}

/// Encodes the JSON object `args` as the SCALE fields `fields`, in order.
pub fn encode_fields(fields: &[Field], args: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for field in fields {
        let value = args.get(&field.name).unwrap_or(&Value::Null);
        encode_value(&field.ty, value, &mut out).map_err(|e| format!("{}: {e}", field.name))?;
    }
    Ok(out)
}

/// Decodes SCALE `data` as `fields` into a JSON object; all bytes must be used.
pub fn decode_fields(fields: &[Field], mut data: &[u8]) -> Result<Value, String> {
    let mut out = serde_json::Map::new();
    for field in fields {
        let value = decode_value(&field.ty, &mut data).map_err(|e| format!("{}: {e}", field.name))?;
        out.insert(field.name.clone(), value);
    }
    if !data.is_empty() {
        return Err(format!("{} trailing bytes", data.len()));
    }
    Ok(Value::Object(out))
}

fn int_of(value: &Value) -> Result<u128, String> {
    match value {
        Value::Number(n) => {
            n.as_u64().map(u128::from).ok_or_else(|| format!("{n} is not an unsigned integer"))
        }
        Value::String(s) => s.trim().parse().map_err(|_| format!("{s:?} is not an unsigned integer")),
        other => Err(format!("expected an integer, got {other}")),
    }
}

/// Parses `12`, `1.5e18`, `2e3` exactly into a u128; anything fractional or too large is refused.
pub fn parse_amount(s: &str) -> Result<u128, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not an amount (examples: 1000, 1.5e18)");
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<u32>().map_err(|_| bad())?),
        None => (s, 0),
    };
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && frac.is_empty() || !(whole.chars().chain(frac.chars())).all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac_len = frac.len() as u32;
    let digits: u128 = format!("{whole}{frac}").parse().map_err(|_| bad())?;
    if frac_len > exp {
        let divisor = 10u128.checked_pow(frac_len - exp).ok_or_else(bad)?;
        if !digits.is_multiple_of(divisor) {
            return Err(format!("{s:?} is not a whole number of the smallest unit"));
        }
        return Ok(digits / divisor);
    }
    10u128.checked_pow(exp - frac_len).and_then(|m| digits.checked_mul(m)).ok_or_else(bad)
}

fn hex_of(value: &Value) -> Result<Vec<u8>, String> {
    let s = value.as_str().ok_or_else(|| format!("expected a 0x hex string, got {value}"))?;
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|e| format!("{s:?}: {e}"))
}

fn encode_value(ty: &TypeDef, value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    let ranged = |max: u128| -> Result<u128, String> {
        let n = int_of(value)?;
        if n > max {
            Err(format!("{n} does not fit {ty}"))
        } else {
            Ok(n)
        }
    };
    match ty {
        TypeDef::Bool => {
            value.as_bool().ok_or_else(|| format!("expected a bool, got {value}"))?.encode_to(out)
        }
        TypeDef::U8 => (ranged(u8::MAX.into())? as u8).encode_to(out),
        TypeDef::U16 => (ranged(u16::MAX.into())? as u16).encode_to(out),
        TypeDef::U32 => (ranged(u32::MAX.into())? as u32).encode_to(out),
        TypeDef::U64 => (ranged(u64::MAX.into())? as u64).encode_to(out),
        TypeDef::U128 => int_of(value)?.encode_to(out),
        TypeDef::Balance => match value {
            Value::String(s) => parse_amount(s)?.encode_to(out),
            other => int_of(other)?.encode_to(out),
        },
        TypeDef::Address => {
            let s = value.as_str().ok_or_else(|| format!("expected an address, got {value}"))?;
            Address::from_str(s).map_err(|e| e.to_string())?.encode_to(out)
        }
        TypeDef::Hash => {
            let s = value.as_str().ok_or_else(|| format!("expected a hash, got {value}"))?;
            Hash::from_str(s).map_err(|e| e.to_string())?.encode_to(out)
        }
        TypeDef::Bytes => hex_of(value)?.encode_to(out),
        TypeDef::String => {
            value.as_str().ok_or_else(|| format!("expected a string, got {value}"))?.encode_to(out)
        }
        TypeDef::Option(inner) => match value {
            Value::Null => out.push(0),
            v => {
                out.push(1);
                encode_value(inner, v, out)?;
            }
        },
        TypeDef::Vec(inner) => {
            let items = value.as_array().ok_or_else(|| format!("expected an array, got {value}"))?;
            Compact(items.len() as u32).encode_to(out);
            for item in items {
                encode_value(inner, item, out)?;
            }
        }
    }
    Ok(())
}

fn decode_value(ty: &TypeDef, input: &mut &[u8]) -> Result<Value, String> {
    fn dec<T: Decode>(input: &mut &[u8]) -> Result<T, String> {
        T::decode(input).map_err(|e| e.to_string())
    }
    let bounded_len = |input: &mut &[u8]| -> Result<usize, String> {
        let len = dec::<Compact<u32>>(input)?.0 as usize;
        if len > MAX_DECODED_ITEMS || len > input.len() {
            return Err(format!("length {len} exceeds the remaining input"));
        }
        Ok(len)
    };
    Ok(match ty {
        TypeDef::Bool => Value::Bool(dec(input)?),
        TypeDef::U8 => dec::<u8>(input)?.into(),
        TypeDef::U16 => dec::<u16>(input)?.into(),
        TypeDef::U32 => dec::<u32>(input)?.into(),
        TypeDef::U64 => dec::<u64>(input)?.into(),
        TypeDef::U128 | TypeDef::Balance => Value::String(dec::<u128>(input)?.to_string()),
        TypeDef::Address => Value::String(dec::<Address>(input)?.to_hex()),
        TypeDef::Hash => Value::String(dec::<Hash>(input)?.to_hex()),
        TypeDef::Bytes => {
            let len = bounded_len(input)?;
            let (bytes, rest) = input.split_at(len);
            *input = rest;
            Value::String(format!("0x{}", hex::encode(bytes)))
        }
        TypeDef::String => {
            let len = bounded_len(input)?;
            let (bytes, rest) = input.split_at(len);
            *input = rest;
            Value::String(String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())?)
        }
        TypeDef::Option(inner) => match dec::<u8>(input)? {
            0 => Value::Null,
            1 => decode_value(inner, input)?,
            b => return Err(format!("bad option tag {b}")),
        },
        TypeDef::Vec(inner) => {
            let len = bounded_len(input)?;
            (0..len).map(|_| decode_value(inner, input)).collect::<Result<Vec<_>, _>>()?.into()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_names_round_trip() {
        for name in ["bool", "u128", "Balance", "Vec<Address>", "Option<Vec<Hash>>", "Bytes"] {
            assert_eq!(name.parse::<TypeDef>().unwrap().to_string(), name);
        }
        assert!("Vec<u7>".parse::<TypeDef>().is_err());
    }

    #[test]
    fn json_scale_round_trip() {
        let fields = vec![
            Field::new("dest", "Address"),
            Field::new("value", "Balance"),
            Field::new("memo", "Option<Bytes>"),
            Field::new("ids", "Vec<u32>"),
        ];
        let args = json!({
            "dest": "0x0101010101010101010101010101010101010101",
            "value": "1.5e18",
            "memo": "0xbeef",
            "ids": [1, "2"],
        });
        let encoded = encode_fields(&fields, &args).unwrap();
        let mut expected = Address([1; 20]).encode();
        1_500_000_000_000_000_000u128.encode_to(&mut expected);
        Some(vec![0xbeu8, 0xef]).encode_to(&mut expected);
        vec![1u32, 2].encode_to(&mut expected);
        assert_eq!(encoded, expected);
        let decoded = decode_fields(&fields, &encoded).unwrap();
        assert_eq!(decoded["value"], json!("1500000000000000000"));
        assert_eq!(decoded["ids"], json!([1, 2]));
        assert!(decode_fields(&fields, &encoded[..encoded.len() - 1]).is_err());
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("10").unwrap(), 10);
        assert_eq!(parse_amount("1.5e18").unwrap(), 1_500_000_000_000_000_000);
        assert_eq!(parse_amount("2e0").unwrap(), 2);
        assert!(parse_amount("1.5").is_err());
        assert!(parse_amount("1e40").is_err());
        assert!(parse_amount("-1").is_err());
        assert!(parse_amount("").is_err());
        assert!(encode_fields(&[Field::new("x", "u8")], &json!({"x": 256})).is_err());
        assert!(encode_fields(&[Field::new("x", "u8")], &json!({})).is_err());
    }

    #[test]
    fn hostile_lengths_are_refused() {
        // A compact length of 2^30 with no data behind it.
        let data = Compact(1u32 << 30).encode();
        assert!(decode_fields(&[Field::new("v", "Vec<u8>")], &data).is_err());
        assert!(decode_fields(&[Field::new("v", "Bytes")], &data).is_err());
    }
}
