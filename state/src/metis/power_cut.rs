//! Simulated power cuts: what reaches the disk of an interrupted commit is any mix of its
//! unsynced writes, constrained only by the syncs the commit made before the cut. For each cut
//! the store must open at the last commit whose meta slot is intact, with that block's state.

use super::*;
use crate::test_rng::Rng;
use crate::trie_root;
use std::collections::BTreeMap;

const CONFIG: MetisConfig = MetisConfig { segment_bytes: 8192, retain: 4, cache_bytes: 2 * 8192 };
const PAGE: usize = 4096;

type Image = BTreeMap<PathBuf, Vec<u8>>;

/// Every file of a store, by path relative to its folder.
fn image(dir: &Path) -> Image {
    let mut out = Image::new();
    for sub in ["", "segments"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn write_image(dir: &Path, image: &Image) {
    std::fs::create_dir_all(dir.join("segments")).unwrap();
    for (path, bytes) in image {
        std::fs::write(dir.join(path), bytes).unwrap();
    }
}

/// Where the cut falls within the commit.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// Before the segments were synced: any mix of old and new pages; the meta is old.
    BeforeDataSync,
    /// After the data sync, during the meta write: the meta slot is old, torn or new.
    DuringMetaWrite,
    /// After everything was synced.
    AfterMetaSync,
}

/// The disk after a cut of the commit that took `before` to `after`.
fn cut_image(before: &Image, after: &Image, cut: Cut, rng: &mut Rng) -> Image {
    let mut out = Image::new();
    for (path, new) in after {
        let old = before.get(path).cloned().unwrap_or_else(|| vec![0; new.len()]);
        let is_meta = path == Path::new("meta");
        let bytes = match (cut, is_meta) {
            (Cut::AfterMetaSync, _) | (Cut::DuringMetaWrite, false) => new.clone(),
            (Cut::BeforeDataSync, true) => old,
            (Cut::BeforeDataSync, false) => mix_pages(&old, new, rng),
            (Cut::DuringMetaWrite, true) => tear(&old, new, rng),
        };
        out.insert(path.clone(), bytes);
    }
    out
}

/// Each differing page is either written or not.
fn mix_pages(old: &[u8], new: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = new.to_vec();
    for (i, chunk) in out.chunks_mut(PAGE).enumerate() {
        let start = i * PAGE;
        if rng.next().is_multiple_of(2) {
            let end = (start + chunk.len()).min(old.len());
            if start < end {
                chunk[..end - start].copy_from_slice(&old[start..end]);
            }
        }
    }
    out
}

/// A torn write: a random contiguous range of the new bytes reached the disk.
fn tear(old: &[u8], new: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = old.to_vec();
    out.resize(new.len(), 0);
    let a = rng.next() as usize % (new.len() + 1);
    let b = rng.next() as usize % (new.len() + 1);
    let (from, to) = (a.min(b), a.max(b));
    out[from..to].copy_from_slice(&new[from..to]);
    out
}

fn block(n: u64, rng: &mut Rng) -> ChangeSet {
    (0..1 + rng.next() % 12)
        .map(|_| {
            let key = (rng.next() % 40).to_le_bytes().to_vec();
            let value = (!rng.next().is_multiple_of(5)).then(|| vec![n as u8; (rng.next() % 700) as usize]);
            (key, value)
        })
        .collect()
}

fn apply(model: &mut BTreeMap<Vec<u8>, Vec<u8>>, changes: &ChangeSet) {
    for (k, v) in changes {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
}

#[test]
fn power_cuts_keep_the_last_synced_commit() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let cuts = [Cut::BeforeDataSync, Cut::DuringMetaWrite, Cut::AfterMetaSync];
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let mut model = BTreeMap::new();
        let blocks = 1 + rng.next() % 12;
        let db = MetisDb::open(dir.path(), CONFIG).unwrap();
        for n in 0..blocks {
            let changes = block(n, &mut rng);
            db.commit(n, &changes, None).unwrap();
            apply(&mut model, &changes);
        }
        drop(db);
        let before = image(dir.path());
        let next = block(blocks, &mut rng);
        let db = MetisDb::open(dir.path(), CONFIG).unwrap();
        db.commit(blocks, &next, None).unwrap();
        drop(db);
        let after = image(dir.path());
        let mut next_model = model.clone();
        apply(&mut next_model, &next);
        for trial in 0..8 {
            let cut = cuts[(rng.next() % 3) as usize];
            let disk = cut_image(&before, &after, cut, &mut rng);
            let restored = tempfile::tempdir().unwrap();
            write_image(restored.path(), &disk);
            let db = MetisDb::open(restored.path(), CONFIG)
                .unwrap_or_else(|e| panic!("round {round} trial {trial} {cut:?}: {e}"));
            let (latest, root) = db.latest().unwrap();
            let expected = if latest == blocks { &next_model } else { &model };
            assert!(latest == blocks || latest + 1 == blocks, "round {round} {cut:?}: opened at {latest}");
            if matches!(cut, Cut::AfterMetaSync) || disk[Path::new("meta")] == after[Path::new("meta")] {
                assert_eq!(latest, blocks, "round {round} {cut:?}: a synced commit was lost");
            }
            if matches!(cut, Cut::BeforeDataSync) {
                assert_eq!(latest + 1, blocks, "round {round}: an unsynced commit appeared");
            }
            assert_eq!(root, trie_root(expected.iter()), "round {round} trial {trial} {cut:?}");
            let snap = db.snapshot(latest).unwrap();
            assert_eq!(snap.pairs(&[], None, usize::MAX), expected.clone().into_iter().collect::<Vec<_>>());
            // The store takes new commits after the cut.
            db.commit(latest + 1, &block(latest + 1, &mut rng), None).unwrap();
        }
    }
}
