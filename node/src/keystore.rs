//! The validator keystore: `<chain dir>/keystore/<public key hex>`, one file per key, holding
//! its 32-byte ed25519 seed as `0x` hex (readable by the owner only).
//!
//! `hyperion key insert --suri <secret URI>` adds a key; a node started with `--validator`
//! signs with the keystore's key that is a validator of its chain.

use std::path::{Path, PathBuf};

use hyperion_primitives::{Pair, Public};

use crate::{Error, Result};

/// Most key files looked at (a keystore holds a handful).
const MAX_KEYS: usize = 256;

/// The keystore of a chain.
pub struct Keystore {
    dir: PathBuf,
}

impl Keystore {
    /// The keystore in `<chain dir>/keystore`.
    pub fn open(chain_dir: &Path) -> Self {
        Self { dir: chain_dir.join("keystore") }
    }

    /// Where the keys are.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Stores `pair` (replacing the file of the same public key); returns the file's path.
    pub fn insert(&self, pair: &Pair) -> Result<PathBuf> {
        let io = |e: std::io::Error| Error::Io(format!("keystore {}: {e}", self.dir.display()));
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let name = file_name(&pair.public());
        let contents = format!("0x{}\n", hex::encode(pair.seed()));
        crate::consensus::replace_file(&self.dir, &name, contents.as_bytes())?;
        let path = self.dir.join(&name);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        Ok(path)
    }

    /// Every key in the keystore, in file name order. A file that is not a key, or whose seed
    /// does not give the public key in its name, is an error naming it.
    pub fn keys(&self) -> Result<Vec<Pair>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::Io(format!("keystore {}: {e}", self.dir.display()))),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_none() && path.is_file())
            .take(MAX_KEYS + 1)
            .collect();
        if paths.len() > MAX_KEYS {
            return Err(Error::Io(format!(
                "keystore {} holds more than {MAX_KEYS} files",
                self.dir.display()
            )));
        }
        paths.sort();
        paths.iter().map(|path| read_key(path)).collect()
    }

    /// The keystore's key that is one of `validators`: an error when there is none, or more
    /// than one (which would sign for two validators from one node).
    pub fn validator_key(&self, validators: &[Public]) -> Result<Pair> {
        let mut keys = self.keys()?.into_iter().filter(|pair| validators.contains(&pair.public()));
        match (keys.next(), keys.next()) {
            (Some(pair), None) => Ok(pair),
            (None, _) => Err(Error::Io(format!(
                "no key in the keystore {} is a validator or a registered sequencer of this chain; add one with \
                 `hyperion key insert --suri <secret> --chain <chain> --base-path <path>`",
                self.dir.display()
            ))),
            (Some(_), Some(_)) => Err(Error::Io(format!(
                "the keystore {} holds keys of more than one validator; keep one",
                self.dir.display()
            ))),
        }
    }
}

fn file_name(public: &Public) -> String {
    public.to_hex().trim_start_matches("0x").to_string()
}

fn read_key(path: &Path) -> Result<Pair> {
    let bad = |why: &str| Error::Io(format!("keystore file {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(&e.to_string()))?;
    let bytes = hex::decode(text.trim().trim_start_matches("0x")).map_err(|_| bad("not hex"))?;
    let seed: [u8; 32] = bytes.try_into().map_err(|_| bad("not a 32-byte seed"))?;
    let pair = Pair::from_seed(&seed);
    let named = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if file_name(&pair.public()) != named {
        return Err(bad("the seed is not the key the file is named after"));
    }
    Ok(pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kept_and_the_validator_key_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let keystore = Keystore::open(dir.path());
        assert!(keystore.keys().unwrap().is_empty());
        let alice = Pair::from_string("//Alice").unwrap();
        let bob = Pair::from_string("//Bob").unwrap();
        let path = keystore.insert(&alice).unwrap();
        keystore.insert(&alice).unwrap();
        assert_eq!(keystore.keys().unwrap().len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let found = keystore.validator_key(&[bob.public(), alice.public()]).unwrap();
        assert_eq!(found.public(), alice.public());
        assert!(keystore.validator_key(&[bob.public()]).is_err(), "Alice is not a validator");

        keystore.insert(&bob).unwrap();
        let error = keystore.validator_key(&[bob.public(), alice.public()]).err().unwrap().to_string();
        assert!(error.contains("more than one"), "{error}");

        // A file whose seed does not match its name is refused, with its path.
        std::fs::write(&path, format!("0x{}\n", hex::encode(bob.seed()))).unwrap();
        let error = keystore.keys().err().unwrap().to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
    }
}
