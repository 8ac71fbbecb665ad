//! MetisDB against a reference model, across reopens, concurrent readers and crashes.

use super::*;
use crate::trie_root;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use std::collections::BTreeMap;

/// Small segments, a few of them copied in memory and the rest read from their files.
const SMALL: MetisConfig = MetisConfig { segment_bytes: 4096, retain: 4, cache_bytes: 3 * 4096 };

/// A block of writes over a small key space, so that keys are overwritten and deleted, with
/// values around the 32-byte inline limit of the trie and large enough to fill segments.
#[derive(Clone, Debug)]
struct Block(Vec<(u8, Option<Vec<u8>>)>);

impl Arbitrary for Block {
    fn arbitrary(g: &mut Gen) -> Self {
        let len = usize::arbitrary(g) % 24;
        Block(
            (0..len)
                .map(|_| {
                    let key = u8::arbitrary(g) % 40;
                    let value = (u8::arbitrary(g) % 4 != 0)
                        .then(|| vec![u8::arbitrary(g); usize::arbitrary(g) % 300]);
                    (key, value)
                })
                .collect(),
        )
    }
}

fn changes(block: &Block) -> ChangeSet {
    block.0.iter().map(|(k, v)| (vec![*k, 0x5a], v.clone())).collect()
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn apply(model: &mut Model, changes: &ChangeSet) {
    for (k, v) in changes {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
}

fn matches(db: &MetisDb, number: u64, model: &Model) -> bool {
    let Ok(snap) = db.snapshot(number) else { return false };
    let keys: Vec<Vec<u8>> = (0u8..40).map(|k| vec![k, 0x5a]).collect();
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let mut many = Vec::new();
    snap.read_many(&refs, &mut |i, value| many.push((i, value.map(<[u8]>::to_vec))));
    keys.iter().all(|k| snap.get(k) == model.get(k).cloned())
        && many.into_iter().eq(keys.iter().map(|k| model.get(k).cloned()).enumerate())
        && snap.pairs(&[], None, usize::MAX) == model.clone().into_iter().collect::<Vec<_>>()
        && db.root(number).ok() == Some(trie_root(model.iter()))
}

/// Every retained version reads like the model and has the model's root, before and after
/// reopening the store and compacting it at random points.
fn model_property(blocks: Vec<Block>, reopen_every: u8, compact_every: u8) -> TestResult {
    let dir = tempfile::tempdir().unwrap();
    let mut db = MetisDb::open(dir.path(), SMALL).unwrap();
    let mut model = Model::new();
    let mut models = Vec::new();
    for (number, block) in blocks.iter().enumerate() {
        let changes = changes(block);
        let number = number as u64;
        let predicted = (number > 0).then(|| db.compute_root(number - 1, &changes).unwrap());
        let root = db.commit(number, &changes, predicted).unwrap();
        apply(&mut model, &changes);
        if root != trie_root(model.iter()) {
            return TestResult::error(format!("root of block {number} differs from the model"));
        }
        models.push(model.clone());
        if compact_every > 0 && number.is_multiple_of(u64::from(compact_every)) {
            db.compact().unwrap();
        }
        if reopen_every > 0 && number.is_multiple_of(u64::from(reopen_every)) {
            drop(db);
            db = MetisDb::open(dir.path(), SMALL).unwrap();
        }
        for (v, m) in models.iter().enumerate().rev().take(SMALL.retain as usize) {
            if !matches(&db, v as u64, m) {
                return TestResult::error(format!("version {v} differs from the model after block {number}"));
            }
        }
    }
    TestResult::passed()
}

#[test]
fn matches_the_reference_model() {
    QuickCheck::new().tests(60).quickcheck(model_property as fn(Vec<Block>, u8, u8) -> TestResult);
}

fn put(k: &[u8], v: &[u8]) -> ChangeSet {
    ChangeSet::from([(k.to_vec(), Some(v.to_vec()))])
}

#[test]
fn pinned_snapshots_outlive_the_retention_window() {
    let dir = tempfile::tempdir().unwrap();
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    db.commit(0, &put(b"k", b"0"), None).unwrap();
    let pinned = db.snapshot(0).unwrap();
    for n in 1..20u64 {
        db.commit(n, &put(b"k", n.to_string().as_bytes()), None).unwrap();
    }
    assert_eq!(pinned.get(b"k"), Some(b"0".to_vec()));
    drop(pinned);
    db.commit(20, &put(b"k", b"20"), None).unwrap();
    assert!(db.snapshot(0).is_err(), "unpinned old versions are pruned");
    assert!(db.snapshot(16).is_ok() && db.snapshot(15).is_err());
}

#[test]
fn readers_see_stable_values_while_1000_blocks_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        MetisDb::open(dir.path(), MetisConfig { segment_bytes: 1 << 20, retain: 8, cache_bytes: 1 << 20 })
            .unwrap(),
    );
    let block =
        |n: u64| -> ChangeSet { (0u8..16).map(|k| (vec![k], Some(n.to_le_bytes().to_vec()))).collect() };
    db.commit(0, &block(0), None).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut checked = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (number, _) = db.latest().unwrap();
                    // Metrics are read while blocks commit (this deadlocked once).
                    assert!(db.stats().keys >= 16);
                    let Ok(snap) = db.snapshot(number) else { continue };
                    for _ in 0..3 {
                        for k in 0u8..16 {
                            assert_eq!(
                                snap.get(&[k]),
                                Some(number.to_le_bytes().to_vec()),
                                "snapshot {number} changed"
                            );
                        }
                    }
                    checked += 1;
                }
                checked
            })
        })
        .collect();
    for n in 1..=1000u64 {
        db.commit(n, &block(n), None).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("segments")).unwrap();
    for entry in std::fs::read_dir(from.join("segments")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join("segments").join(entry.file_name())).unwrap();
    }
    std::fs::copy(from.join("meta"), to.join("meta")).unwrap();
}

/// A power cut after a block's records reached the disk but before its meta slot did: the store
/// opens at the previous block, and the next commit overwrites the orphaned records.
#[test]
fn lost_meta_write_opens_at_the_previous_block() {
    let dir = tempfile::tempdir().unwrap();
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    let mut model = Model::new();
    for n in 0..30u64 {
        let c = put(&[n as u8 % 7], &[n as u8; 200]);
        db.commit(n, &c, None).unwrap();
        apply(&mut model, &c);
    }
    let before = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), before.path());
    db.commit(30, &put(b"lost", &[1; 500]), None).unwrap();
    drop(db);
    std::fs::copy(before.path().join("meta"), dir.path().join("meta")).unwrap();
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    assert_eq!(db.latest().map(|l| l.0), Some(29));
    assert!(matches(&db, 29, &model));
    let c = put(b"kept", &[2; 500]);
    db.commit(30, &c, None).unwrap();
    apply(&mut model, &c);
    drop(db);
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    assert!(matches(&db, 30, &model));
}

/// Garbage after the committed head (a torn append) and a torn meta slot are ignored.
#[test]
fn torn_appends_and_torn_meta_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    db.commit(0, &put(b"a", b"1"), None).unwrap();
    db.commit(1, &put(b"b", b"2"), None).unwrap();
    let (_, root) = db.latest().unwrap();
    drop(db);
    let seg = segment::segment_path(&dir.path().join("segments"), 1);
    let mut bytes = std::fs::read(&seg).unwrap();
    let head = meta::MetaFile::open(dir.path()).unwrap().load().unwrap().unwrap().head_offset as usize;
    bytes[head..head + 50].fill(0xab);
    std::fs::write(&seg, &bytes).unwrap();
    // The next commit (seq 3) goes to slot 1: a torn write there leaves slot 0 (block 1).
    let mut meta = std::fs::read(dir.path().join("meta")).unwrap();
    let slot = meta.len() / 2;
    meta[slot..].iter_mut().for_each(|b| *b ^= 0x11);
    std::fs::write(dir.path().join("meta"), &meta).unwrap();
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    assert_eq!(db.latest(), Some((1, root)));
    db.commit(2, &put(b"c", b"3"), None).unwrap();
    drop(db);
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    let snap = db.snapshot(2).unwrap();
    assert_eq!((snap.get(b"a"), snap.get(b"c")), (Some(b"1".to_vec()), Some(b"3".to_vec())));
    // A value that can never fit a segment is refused, not a panic.
    assert!(matches!(db.commit(3, &put(b"x", &[0; 5000]), None), Err(Error::TooLarge { .. })));
}

#[test]
fn damage_in_committed_data_is_reported_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    db.commit(0, &put(b"a", b"value"), None).unwrap();
    db.commit(1, &put(b"b", b"value"), None).unwrap();
    drop(db);
    let seg = segment::segment_path(&dir.path().join("segments"), 1);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&seg, &bytes).unwrap();
    let err = MetisDb::open(dir.path(), SMALL).err().expect("damage must be reported").to_string();
    assert!(err.contains("00000001.seg") && err.contains("damaged"), "{err}");
}

#[test]
fn refused_commits_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    db.commit(0, &put(b"a", b"1"), None).unwrap();
    let huge = put(b"big", &vec![0; MAX_VALUE_BYTES + 1]);
    assert!(matches!(db.commit(1, &huge, None), Err(Error::TooLarge { .. })));
    assert!(matches!(db.commit(1, &put(b"a", b"2"), Some(Hash([1; 32]))), Err(Error::RootMismatch { .. })));
    assert!(matches!(db.commit(5, &put(b"a", b"2"), None), Err(Error::NotNext { .. })));
    drop(db);
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    assert_eq!(db.latest().unwrap().0, 0);
    assert_eq!(db.snapshot(0).unwrap().get(b"a"), Some(b"1".to_vec()));
}

#[test]
fn proofs_verify_at_retained_versions_and_fail_when_tampered() {
    let dir = tempfile::tempdir().unwrap();
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    let key = |i: u8| vec![i; 32];
    let value = |n: u64, i: u8| vec![n as u8 ^ i; 20 + i as usize * 3];
    for n in 0..10u64 {
        let c: ChangeSet =
            (0..12u8).filter(|i| (u64::from(*i) + n) % 3 == 0).map(|i| (key(i), Some(value(n, i)))).collect();
        db.commit(n, &c, None).unwrap();
    }
    let keys: Vec<Vec<u8>> = vec![key(1), key(5), key(200)];
    for number in 6..10u64 {
        let root = db.root(number).unwrap();
        let proof = db.prove(number, &keys).unwrap();
        let snap = db.snapshot(number).unwrap();
        let proven = crate::verify_proof(root, &proof, &keys).unwrap();
        assert_eq!(proven, keys.iter().map(|k| snap.get(k)).collect::<Vec<_>>(), "version {number}");
        assert!(proven[2].is_none(), "absence is proven too");
        assert!(crate::verify_proof(db.root(number - 1).unwrap(), &proof, &keys).is_err(), "wrong root");
        for i in 0..proof.len() {
            let mut tampered = proof.clone();
            let last = tampered[i].len() - 1;
            tampered[i][last] ^= 1;
            let result = crate::verify_proof(root, &tampered, &keys);
            assert!(result.is_err() || result.unwrap() != proven, "tampered node {i} went unnoticed");
        }
    }
    assert!(matches!(db.prove(2, &keys), Err(Error::UnknownVersion(2))));
    // The trie nodes are stored: after a reopen, retained versions are proven as before.
    let expected: Vec<_> = (6..10u64).map(|n| db.prove(n, &keys).unwrap()).collect();
    drop(db);
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    for (number, expected) in (6..10u64).zip(expected) {
        assert_eq!(db.prove(number, &keys).unwrap(), expected, "version {number} after reopening");
    }
}

const CRASH_CONFIG: MetisConfig =
    MetisConfig { segment_bytes: 64 * 1024, retain: 8, cache_bytes: 128 * 1024 };
const CRASH_DIR_VAR: &str = "METISDB_CRASH_DIR";

/// The crash workload: block `n`'s changes, a pure function of `n`.
fn crash_block(n: u64) -> ChangeSet {
    let mut changes: ChangeSet = (0..20u64)
        .map(|i| {
            (((n * 7 + i) % 97).to_le_bytes().to_vec(), Some(vec![n as u8; 40 + (i as usize * 13) % 200]))
        })
        .collect();
    if n.is_multiple_of(3) {
        changes.insert(((n * 5) % 97).to_le_bytes().to_vec(), None);
    }
    changes
}

/// Not a test on its own: the writer process that `sigkill_during_commits_loses_nothing` kills.
/// It commits the crash workload from where the store is, reporting each commit on stdout.
#[test]
#[ignore = "a child process of sigkill_during_commits_loses_nothing"]
fn crash_writer() {
    let Ok(dir) = std::env::var(CRASH_DIR_VAR) else { return };
    let db = MetisDb::open(Path::new(&dir), CRASH_CONFIG).unwrap();
    let mut next = db.latest().map_or(0, |(n, _)| n + 1);
    loop {
        db.commit(next, &crash_block(next), None).unwrap();
        println!("committed {next}");
        // Compactions too get killed part way.
        if next % 4 == 3 && db.should_compact() {
            db.compact().unwrap();
        }
        next += 1;
    }
}

/// 200 times: a writer process is killed with SIGKILL at a varying point of its commits; the
/// store then opens at a block no older than the last one the writer saw committed, with the
/// model's root and values.
#[test]
fn sigkill_during_commits_loses_nothing() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let (mut model, mut model_version) = (Model::new(), None::<u64>);
    for cycle in 0..200 {
        let mut child = Command::new(&exe)
            .args(["--exact", "metis::tests::crash_writer", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CRASH_DIR_VAR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let commits_before_kill = 1 + rng % 6;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acknowledged = None;
        let mut seen = 0;
        while seen < commits_before_kill {
            let line = lines.next().expect("the writer stopped early").unwrap();
            if let Some(n) = line.strip_prefix("committed ") {
                acknowledged = Some(n.parse::<u64>().unwrap());
                seen += 1;
            }
        }
        // Let the next commit get under way by a varying amount before the kill.
        std::thread::sleep(std::time::Duration::from_micros(rng % 3000));
        child.kill().unwrap();
        child.wait().unwrap();
        for line in lines.map_while(|l| l.ok()) {
            if let Some(n) = line.strip_prefix("committed ") {
                acknowledged = Some(n.parse::<u64>().unwrap());
            }
        }
        let db = MetisDb::open(dir.path(), CRASH_CONFIG).unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        let (latest, root) = db.latest().unwrap();
        assert!(
            Some(latest) >= acknowledged,
            "cycle {cycle}: block {acknowledged:?} was acknowledged, store has {latest}"
        );
        while model_version.is_none_or(|v| v < latest) {
            let next = model_version.map_or(0, |v| v + 1);
            apply(&mut model, &crash_block(next));
            model_version = Some(next);
        }
        assert_eq!(root, trie_root(model.iter()), "cycle {cycle}: root of block {latest}");
        let snap = db.snapshot(latest).unwrap();
        assert_eq!(
            snap.pairs(&[], None, usize::MAX),
            model.clone().into_iter().collect::<Vec<_>>(),
            "cycle {cycle}"
        );
    }
}

/// Released trie nodes are dropped once their versions are pruned: memory does not grow with
/// the number of blocks.
#[test]
fn trie_nodes_do_not_accumulate() {
    let dir = tempfile::tempdir().unwrap();
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    let sizes = |db: &MetisDb| {
        let inner = db.shared.inner.read();
        inner.nodes.counts()
    };
    let block = |n: u64| -> ChangeSet { (0u8..20).map(|k| (vec![k; 8], Some(vec![n as u8; 40]))).collect() };
    for n in 0..50 {
        db.commit(n, &block(n), None).unwrap();
    }
    let after_50 = sizes(&db);
    for n in 50..500 {
        db.commit(n, &block(n), None).unwrap();
    }
    assert_eq!(sizes(&db), after_50, "live and retained nodes stay the same size");
}

/// Values over 32 bytes are value nodes of the trie, which MetisDB does not store as nodes. A
/// value equal to a trie node's encoding has that node's hash: writing and deleting such values
/// must not change the node's reference count, or the node would be dropped while in use.
#[test]
fn values_equal_to_trie_nodes_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let config = MetisConfig { segment_bytes: 64 * 1024, retain: 4, cache_bytes: 0 };
    let db = MetisDb::open(dir.path(), config).unwrap();
    let mut model = Model::new();
    let mut number = 0;
    let mut commit = |db: &MetisDb, model: &mut Model, changes: ChangeSet| {
        apply(model, &changes);
        let root = db.commit(number, &changes, None).unwrap();
        assert_eq!(root, crate::trie_root(model.iter()), "block {number}");
        number += 1;
    };
    commit(&db, &mut model, (0..40u8).map(|i| (vec![i, 0x5a], Some(vec![i; 50]))).collect());
    let originals: Vec<Vec<u8>> = model.keys().cloned().collect();
    let nodes = db.prove(0, &originals).unwrap();
    let copies: ChangeSet =
        nodes.iter().enumerate().map(|(i, node)| (vec![0xee, i as u8], Some(node.clone()))).collect();
    assert!(copies.values().flatten().filter(|n| n.len() > 32).count() > 40, "branch and leaf nodes copied");
    commit(&db, &mut model, copies.clone());
    commit(&db, &mut model, copies.keys().map(|k| (k.clone(), None)).collect());
    // Past the retained window, so that a node wrongly released would be gone.
    for n in 0..config.retain + 2 {
        commit(&db, &mut model, [(b"other".to_vec(), Some(vec![n as u8; 40]))].into());
    }
    let latest = db.latest().unwrap().0;
    let proof = db.prove(latest, &originals).unwrap();
    let proven = crate::verify_proof(db.root(latest).unwrap(), &proof, &originals).unwrap();
    assert_eq!(proven, originals.iter().map(|k| model.get(k).cloned()).collect::<Vec<_>>());
    commit(&db, &mut model, originals.iter().map(|k| (k.clone(), Some(vec![k[0] ^ 0xff; 60]))).collect());
    drop(db);
    let db = MetisDb::open(dir.path(), config).unwrap();
    commit(&db, &mut model, originals.iter().map(|k| (k.clone(), None)).collect());
}

/// Compaction keeps every retained version readable (and provable), bounds the files on disk
/// while blocks keep coming, and what it wrote opens again.
#[test]
fn compaction_bounds_the_store_and_keeps_retained_versions() {
    let dir = tempfile::tempdir().unwrap();
    let config = MetisConfig { segment_bytes: 8192, retain: 6, cache_bytes: 4 * 8192 };
    let mut db = MetisDb::open(dir.path(), config).unwrap();
    let mut models: Vec<Model> = Vec::new();
    let mut model = Model::new();
    let files = |dir: &Path| walk_files(dir).len();
    let mut compactions = 0;
    let mut most_files = 0;
    for n in 0..400u64 {
        let changes: ChangeSet = (0..12u64)
            .map(|i| {
                let key = ((n * 13 + i * 7) % 60).to_le_bytes().to_vec();
                let value = (i % 5 != 4).then(|| vec![(n + i) as u8; 20 + ((n * i) % 90) as usize]);
                (key, value)
            })
            .collect();
        apply(&mut model, &changes);
        db.commit(n, &changes, None).unwrap();
        models.push(model.clone());
        if db.should_compact() {
            let stats = db.compact().unwrap().expect("a compaction when one is due");
            assert!(stats.segments_removed > 0 && stats.base_version <= n);
            compactions += 1;
            for v in n + 1 - config.retain.min(n + 1)..=n {
                assert!(matches(&db, v, &models[v as usize]), "version {v} after compacting at {n}");
            }
            let keys: Vec<Vec<u8>> = (0..60u64).map(|k| k.to_le_bytes().to_vec()).collect();
            let oldest = stats.base_version;
            let proof = db.prove(oldest, &keys).unwrap();
            let proven = crate::verify_proof(db.root(oldest).unwrap(), &proof, &keys).unwrap();
            assert_eq!(
                proven,
                keys.iter().map(|k| models[oldest as usize].get(k).cloned()).collect::<Vec<_>>()
            );
        }
        if n > 100 {
            most_files = most_files.max(files(dir.path()));
        }
        if n % 97 == 0 {
            drop(db);
            db = MetisDb::open(dir.path(), config).unwrap();
            assert!(matches(&db, n, &model), "block {n} after reopening");
        }
    }
    assert!(compactions >= 5, "{compactions} compactions");
    assert!(most_files < 80, "{most_files} files on disk: the store keeps growing");
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Segment copies in memory stay within their budget, serve the same reads as the files, and
/// survive a commit refused after part of it was written (the retry writes over those bytes).
#[test]
fn memory_copies_stay_in_budget_and_agree_with_the_files() {
    let dir = tempfile::tempdir().unwrap();
    // Room for every segment, so that the refused commit writes into copies.
    let config = MetisConfig { segment_bytes: 4096, retain: 4, cache_bytes: 64 * 4096 };
    let db = MetisDb::open(dir.path(), config).unwrap();
    let mut model = Model::new();
    for n in 0..40u64 {
        let changes: ChangeSet = (0..6u8).map(|k| (vec![k, n as u8 % 3], Some(vec![n as u8; 100]))).collect();
        apply(&mut model, &changes);
        db.commit(n, &changes, None).unwrap();
        assert!(db.stats().cache_bytes <= config.cache_bytes);
    }
    let copied = db.stats().cache_bytes;
    assert_eq!(copied, db.stats().segments * 4096, "every segment is copied");
    // Refused after records of it reached a new segment: 30 values fill more than one segment.
    let mut refused: ChangeSet = (0..30u8).map(|k| (vec![0x10, k], Some(vec![k; 200]))).collect();
    refused.insert(vec![0xff; 70_000], Some(vec![1]));
    assert!(matches!(db.commit(40, &refused, None), Err(Error::TooLarge { .. })));
    let changes: ChangeSet = (0..30u8).map(|k| (vec![0x20, k], Some(vec![k ^ 0x55; 150]))).collect();
    apply(&mut model, &changes);
    db.commit(40, &changes, None).unwrap();
    assert!(matches_all(&db, 40, &model));
    drop(db);
    let two = MetisDb::open(dir.path(), MetisConfig { cache_bytes: 2 * 4096, ..config }).unwrap();
    assert_eq!(two.stats().cache_bytes, 2 * 4096, "the newest segments take the budget");
    assert!(matches_all(&two, 40, &model));
    drop(two);
    let uncached = MetisDb::open(dir.path(), MetisConfig { cache_bytes: 0, ..config }).unwrap();
    assert_eq!(uncached.stats().cache_bytes, 0);
    assert!(matches_all(&uncached, 40, &model));
}

fn matches_all(db: &MetisDb, number: u64, model: &Model) -> bool {
    let snap = db.snapshot(number).unwrap();
    model.iter().all(|(k, v)| snap.get(k).as_ref() == Some(v))
        && snap.pairs(&[], None, usize::MAX) == model.clone().into_iter().collect::<Vec<_>>()
        && db.root(number).unwrap() == trie_root(model.iter())
}

/// A subtree that appears twice in the trie has its nodes counted twice, in the log and in a
/// base alike: after a compaction and a reopen, changing one copy keeps the other readable.
#[test]
fn repeated_subtrees_keep_their_counts_through_a_base() {
    let dir = tempfile::tempdir().unwrap();
    let config = MetisConfig { segment_bytes: 4096, retain: 2, cache_bytes: 0 };
    let mut db = MetisDb::open(dir.path(), config).unwrap();
    let mut model = Model::new();
    let mut number = 0u64;
    let mut commit = |db: &MetisDb, model: &mut Model, changes: ChangeSet| {
        apply(model, &changes);
        assert_eq!(db.commit(number, &changes, None).unwrap(), trie_root(model.iter()), "block {number}");
        number += 1;
    };
    let other = |n: u64| -> ChangeSet { [(b"other".to_vec(), Some(vec![n as u8; 40]))].into() };
    // Keys 0x10 x and 0x20 x with equal values: the subtrees under nibbles 1 and 2 are equal.
    let twins: ChangeSet = (0..16u8)
        .flat_map(|x| [(vec![0x10, x], Some(vec![x; 40])), (vec![0x20, x], Some(vec![x; 40]))])
        .collect();
    commit(&db, &mut model, twins.clone());
    for n in 0..200 {
        commit(&db, &mut model, other(n));
        if db.should_compact() {
            break;
        }
    }
    assert!(db.compact().unwrap().is_some_and(|stats| stats.base_version > 0));
    drop(db);
    db = MetisDb::open(dir.path(), config).unwrap();
    commit(&db, &mut model, [(vec![0x10, 3], Some(vec![0xee; 40]))].into());
    for n in 0..config.retain + 2 {
        commit(&db, &mut model, other(n + 1000));
    }
    drop(db);
    db = MetisDb::open(dir.path(), config).unwrap();
    let keys: Vec<Vec<u8>> = twins.keys().cloned().collect();
    let latest = db.latest().unwrap().0;
    let proof = db.prove(latest, &keys).unwrap();
    let proven = crate::verify_proof(db.root(latest).unwrap(), &proof, &keys).unwrap();
    assert_eq!(proven, keys.iter().map(|k| model.get(k).cloned()).collect::<Vec<_>>());
    commit(&db, &mut model, (0..16u8).map(|x| (vec![0x20, x], Some(vec![0x77; 50]))).collect());
}

/// Blocks large enough that their root is computed subtrie by subtrie (see `trie::split`), one
/// of them emptying a subtrie: every root is the model's, and through compactions and a reopen
/// the retained versions read and prove like the model.
#[test]
fn large_blocks_match_the_model_through_compaction_and_reopen() {
    use hash_db::Hasher;
    use sp_core::Blake2Hasher;
    let dir = tempfile::tempdir().unwrap();
    let config = MetisConfig { segment_bytes: 1 << 20, retain: 3, cache_bytes: 2 << 20 };
    let mut db = MetisDb::open(dir.path(), config).unwrap();
    let key = |i: u64| Blake2Hasher::hash(&i.to_le_bytes()).0.to_vec();
    let value = |i: u64, n: u64| vec![(i + n) as u8; 20 + ((i * 7 + n) % 60) as usize];
    let mut model = Model::new();
    let mut models = Vec::new();
    for n in 0..12u64 {
        let mut changes: ChangeSet = if n == 0 {
            (0..4000).map(|i| (key(i), Some(value(i, 0)))).collect()
        } else {
            (0..600).map(|j| (n * 600 + j) * 7919 % 4500).map(|i| (key(i), Some(value(i, n)))).collect()
        };
        if n == 5 {
            changes.extend(model.keys().filter(|k| k[0] == 0x42).map(|k| (k.clone(), None)));
        }
        apply(&mut model, &changes);
        assert_eq!(db.commit(n, &changes, None).unwrap(), trie_root(model.iter()), "block {n}");
        models.push(model.clone());
        if n % 4 == 3 {
            db.compact().unwrap();
        }
        if n == 8 {
            drop(db);
            db = MetisDb::open(dir.path(), config).unwrap();
        }
    }
    let sample: Vec<Vec<u8>> = (0..4500).step_by(97).map(key).collect();
    for (n, m) in models.iter().enumerate().rev().take(config.retain as usize) {
        assert!(matches_all(&db, n as u64, m), "version {n}");
        let proof = db.prove(n as u64, &sample).unwrap();
        let proven = crate::verify_proof(db.root(n as u64).unwrap(), &proof, &sample).unwrap();
        assert_eq!(proven, sample.iter().map(|k| m.get(k).cloned()).collect::<Vec<_>>(), "version {n}");
    }
}

/// `commit` reuses the trie changes of the `compute_root` just before it only for the same
/// changes on the same block.
#[test]
fn commit_reuses_a_computed_root_only_for_the_same_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    let mut model = Model::new();
    let a = put(b"a", &[1; 40]);
    apply(&mut model, &a);
    db.commit(0, &a, None).unwrap();
    let b = put(b"b", &[2; 40]);
    let c = put(b"c", &[3; 40]);
    let root_b = db.compute_root(0, &b).unwrap();
    // Other changes than the ones computed.
    apply(&mut model, &c);
    assert_eq!(db.commit(1, &c, None).unwrap(), trie_root(model.iter()));
    assert_ne!(db.root(1).unwrap(), root_b);
    // The same changes, computed on the latest block.
    let predicted = db.compute_root(1, &b).unwrap();
    apply(&mut model, &b);
    assert_eq!(db.commit(2, &b, Some(predicted)).unwrap(), trie_root(model.iter()));
    // Computed on a block that is no longer the latest: not used.
    let a2 = put(b"a", &[9; 40]);
    let stale = db.compute_root(2, &a2).unwrap();
    let d = put(b"d", &[4; 40]);
    apply(&mut model, &d);
    db.commit(3, &d, None).unwrap();
    assert!(
        matches!(db.commit(4, &a2, Some(stale)), Err(Error::RootMismatch { .. })),
        "a root computed on other state is refused"
    );
    drop(db);
    let db = MetisDb::open(dir.path(), SMALL).unwrap();
    assert_eq!(db.root(3).unwrap(), trie_root(model.iter()));
}

#[test]
fn read_many_reads_each_key_in_order_across_lock_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let db = MetisDb::open(dir.path(), MetisConfig::default()).unwrap();
    let key = |i: u32| i.to_be_bytes().to_vec();
    db.commit(0, &(0..1000).map(|i| (key(i), Some(key(i * 3)))).collect(), None).unwrap();
    db.commit(1, &(0..500).map(|i| (key(i), None)).collect(), None).unwrap();
    let keys: Vec<Vec<u8>> = (0..1200).rev().map(key).collect();
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    for version in [0, 1] {
        let snap = db.snapshot(version).unwrap();
        let mut seen = Vec::new();
        snap.read_many(&refs, &mut |i, value| seen.push((i, value.map(<[u8]>::to_vec))));
        let expected: Vec<_> = keys.iter().map(|k| snap.get(k)).enumerate().collect();
        assert_eq!(seen, expected, "version {version}");
        assert_eq!(seen.iter().filter(|(_, v)| v.is_some()).count(), [1000, 500][version as usize]);
    }
    assert_eq!(db.stats().reads, 2 * 2 * 1200, "every key read counts once");
}
