//! Store-wide compression dictionaries for stored profiles (format 5).
//!
//! A stored profile is small (about a kilobyte) and on its own compresses poorly: what repeats
//! is what repeats *between* customers (the offer ids, attribute names and values, the shape
//! of the lists). A dictionary holds those common bytes once for the whole store; each
//! profile is then an LZ4 block ([`lz4_flex`]) that refers into it, about a third smaller, and
//! decompresses in about a microsecond.
//!
//! A dictionary is made ([`Dictionary::train`]) from a sample of the store's own profiles
//! (at the end of an import, or by the service from the first profiles it writes)
//! and holds only byte runs common to many of them: each run it holds occurs whole in at
//! least one in a hundred of the sampled profiles and in at least [`MIN_CUSTOMERS`] of them,
//! so no customer's own data (an event fingerprint, a rare value, a rare combination of
//! common ones) is kept there, and erasing a customer leaves nothing of theirs behind. A dictionary is named by a hash of its bytes
//! and never changes; every profile written with it names it, and every dictionary a store
//! ever had is kept, so any profile can always be read.

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// The most bytes a dictionary holds. More helps little (measured on the simulated history,
/// 1,232 bytes a profile uncompressed: 834 with 8 KB, 821 with 16 KB) and costs each
/// compression the time to index it.
pub const MAX_BYTES: usize = 16 * 1024;

/// A dictionary is only made from at least this many profiles.
pub const MIN_SAMPLES: usize = 200;

/// A byte run goes into a dictionary only when found in at least this many sampled profiles
/// (and in at least 1 % of them).
pub const MIN_CUSTOMERS: usize = 20;

/// Samples longer than this are left out of a dictionary's making.
pub const MAX_SAMPLE_BYTES: usize = 16 * 1024;

/// Length of the windows counted: an event's fingerprint, so none goes into a dictionary
/// unless [`MIN_CUSTOMERS`] profiles hold it.
const WINDOW: usize = 6;

/// A dictionary's bytes and its name.
#[derive(Debug, PartialEq, Eq)]
pub struct Dictionary {
    id: u32,
    content: Box<[u8]>,
}

impl Dictionary {
    /// A dictionary of `content`, named by its hash.
    pub fn new(content: Vec<u8>) -> Self {
        debug_assert!(Self::fits(&content));
        Self {
            id: Self::id_of(&content),
            content: content.into_boxed_slice(),
        }
    }

    /// Whether `content` can be a dictionary: LZ4 needs a few bytes, and none is made
    /// longer than [`MAX_BYTES`] (a stored one that is not is refused as damaged).
    pub fn fits(content: &[u8]) -> bool {
        (8..=MAX_BYTES).contains(&content.len())
    }

    /// The name of a dictionary with this content.
    pub fn id_of(content: &[u8]) -> u32 {
        xxhash_rust::xxh3::xxh3_64(content) as u32
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn content(&self) -> &[u8] {
        &self.content
    }

    /// A dictionary of what the `samples` (encoded profiles) have in common: the byte runs
    /// that occur whole, as every window of them, in at least [`MIN_CUSTOMERS`] of them and
    /// 1 % of them,
    /// chosen greedily by what they add (the windows not yet in the dictionary, each
    /// weighed by the samples it occurs in, per byte of the run), up to [`MAX_BYTES`], as
    /// zstd's COVER dictionary builder chooses segments. `None` from fewer than
    /// [`MIN_SAMPLES`] samples or when they have nothing in common.
    pub fn train(samples: &[Vec<u8>]) -> Option<Self> {
        // A sample past a few kilobytes (a customer of unusual activity) says little of the
        // others and costs the counting most.
        let samples: Vec<&[u8]> = samples
            .iter()
            .map(Vec::as_slice)
            .filter(|s| s.len() <= MAX_SAMPLE_BYTES)
            .collect();
        if samples.len() < MIN_SAMPLES {
            return None;
        }
        let min_docs = MIN_CUSTOMERS.max(samples.len() / 100) as u32;
        // In how many samples each window occurs.
        let mut docs: HashMap<&[u8], u32> = HashMap::new();
        for s in &samples {
            let distinct: HashSet<&[u8]> = s.windows(WINDOW).collect();
            for w in distinct {
                *docs.entry(w).or_default() += 1;
            }
        }
        // The maximal runs of common windows.
        let mut runs: HashSet<&[u8]> = HashSet::new();
        for s in &samples {
            let mut start = None;
            let common = s
                .windows(WINDOW)
                .map(|w| docs.get(w).is_some_and(|&d| d >= min_docs));
            for (i, c) in common.chain(std::iter::once(false)).enumerate() {
                match (c, start) {
                    (true, None) => start = Some(i),
                    (false, Some(from)) => {
                        runs.insert(&s[from..i - 1 + WINDOW]);
                        start = None;
                    }
                    (true, Some(_)) | (false, None) => {}
                }
            }
        }
        let mut runs: Vec<&[u8]> = runs.into_iter().collect();
        runs.sort_unstable(); // the same samples, the same dictionary
        // Lazy greedy: a run's gain only falls as others are chosen, so one whose gain,
        // computed again, still tops the heap is the best.
        let mut covered: HashSet<&[u8]> = HashSet::new();
        let gain = |run: &[u8], covered: &HashSet<&[u8]>| -> u64 {
            let weight: u64 = run
                .windows(WINDOW)
                .filter(|w| !covered.contains(w))
                .map(|w| u64::from(docs[w]))
                .sum();
            weight * 1024 / run.len() as u64
        };
        let mut heap: BinaryHeap<(u64, usize)> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| (gain(r, &covered), i))
            .collect();
        let mut chosen: Vec<&[u8]> = Vec::new();
        let mut len = 0;
        // A run is a piece of one sample whose windows are each common; as a whole it must be
        // common too (common windows can chain into one customer's own sequence).
        let common_run = |run: &[u8]| {
            let finder = memchr::memmem::Finder::new(run);
            samples
                .iter()
                .filter(|s| finder.find(s).is_some())
                .take(min_docs as usize)
                .count()
                >= min_docs as usize
        };
        while let Some((was, i)) = heap.pop() {
            let now = gain(runs[i], &covered);
            if now == 0 || len + runs[i].len() > MAX_BYTES {
                continue;
            }
            if now < was {
                heap.push((now, i));
                continue;
            }
            if !common_run(runs[i]) {
                continue;
            }
            len += runs[i].len();
            covered.extend(runs[i].windows(WINDOW));
            chosen.push(runs[i]);
        }
        if chosen.is_empty() {
            return None;
        }
        // The matcher prefers the later of two equal windows: the best runs go last.
        chosen.reverse();
        Some(Self::new(chosen.concat()))
    }

    /// `raw` compressed against this dictionary.
    pub fn compress(&self, raw: &[u8]) -> Vec<u8> {
        lz4_flex::block::compress_with_dict(raw, &self.content)
    }

    /// What [`Dictionary::compress`] made of `len` bytes.
    pub fn decompress(&self, compressed: &[u8], len: usize) -> Option<Vec<u8>> {
        lz4_flex::block::decompress_with_dict(compressed, len, &self.content)
            .ok()
            .filter(|raw| raw.len() == len)
    }
}

/// The dictionaries a store knows, and the one it writes with. Shared by every copy of the
/// store in a process.
#[derive(Debug, Default)]
pub struct Dictionaries {
    inner: RwLock<Known>,
}

#[derive(Debug, Default)]
struct Known {
    by_id: BTreeMap<u32, Arc<Dictionary>>,
    current: Option<Arc<Dictionary>>,
    /// Names profiles carry that the store did not have when last asked, and when.
    missing: BTreeMap<u32, std::time::Instant>,
}

/// A dictionary the store did not have is asked for again after this long.
const ASK_AGAIN: std::time::Duration = std::time::Duration::from_secs(10);

impl Dictionaries {
    /// None known.
    pub const fn new() -> Self {
        Self {
            inner: RwLock::new(Known {
                by_id: BTreeMap::new(),
                current: None,
                missing: BTreeMap::new(),
            }),
        }
    }

    pub fn get(&self, id: u32) -> Option<Arc<Dictionary>> {
        self.read().by_id.get(&id).cloned()
    }

    pub fn knows(&self, id: u32) -> bool {
        self.read().by_id.contains_key(&id)
    }

    /// Whether the store should be asked for dictionary `id`: not known, and not found
    /// there within the last [`ASK_AGAIN`] (a profile naming a lost dictionary then costs
    /// a round trip every ten seconds, not one per read).
    pub fn worth_asking_for(&self, id: u32) -> bool {
        let known = self.read();
        !known.by_id.contains_key(&id)
            && known
                .missing
                .get(&id)
                .is_none_or(|at| at.elapsed() >= ASK_AGAIN)
    }

    /// Notes that the store did not have `id` when asked.
    pub fn not_found(&self, id: u32) {
        let mut known = self.inner.write().unwrap_or_else(|e| e.into_inner());
        known.missing.insert(id, std::time::Instant::now());
    }

    /// Every dictionary known, for writing back one the store lost.
    pub fn all(&self) -> Vec<Arc<Dictionary>> {
        self.read().by_id.values().cloned().collect()
    }

    /// The dictionary new profiles are written with, if any.
    pub fn current(&self) -> Option<Arc<Dictionary>> {
        self.read().current.clone()
    }

    /// Learns `dictionaries`; `current` (when one of them or already known) becomes the one
    /// written with.
    pub fn learn(&self, dictionaries: Vec<Dictionary>, current: Option<u32>) {
        let mut known = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for d in dictionaries {
            known.missing.remove(&d.id);
            known.by_id.entry(d.id).or_insert_with(|| Arc::new(d));
        }
        if let Some(d) = current.and_then(|id| known.by_id.get(&id).cloned()) {
            known.current = Some(d);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Known> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples alike in a common frame around bytes of their own.
    fn samples(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let own = xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()).to_le_bytes();
                let mut s = b"offer:savings-boost;offer:travel-insurance;".to_vec();
                s.extend_from_slice(&own);
                s.extend_from_slice(b"age_band=25-34;region=north;tenure_years");
                s.extend_from_slice(&own[..5]);
                s
            })
            .collect()
    }

    #[test]
    fn a_dictionary_holds_what_many_profiles_share_and_nothing_of_one() {
        let samples = samples(400);
        let d = Dictionary::train(&samples).unwrap();
        let text = String::from_utf8_lossy(d.content());
        assert!(
            text.contains("offer:savings-boost;offer:travel-insurance;"),
            "{text}"
        );
        assert!(
            text.contains("age_band=25-34;region=north;tenure_years"),
            "{text}"
        );
        // No sample's own bytes: no window found in fewer than 20 samples.
        for s in &samples {
            for w in s[43..51].windows(WINDOW) {
                assert!(!d.content().windows(WINDOW).any(|c| c == w));
            }
        }
        // Compressed against it, a sample is about its own bytes.
        let s = &samples[7];
        let packed = d.compress(s);
        assert!(
            packed.len() < s.len() / 2,
            "{} of {}",
            packed.len(),
            s.len()
        );
        assert_eq!(d.decompress(&packed, s.len()).unwrap(), *s);
        // The wrong length, or damaged bytes, do not decode as something else.
        assert_eq!(d.decompress(&packed, s.len() + 1), None);
        assert_eq!(d.id(), Dictionary::id_of(d.content()));
    }

    #[test]
    fn too_few_samples_make_no_dictionary() {
        assert_eq!(Dictionary::train(&samples(MIN_SAMPLES - 1)), None);
        // Nothing in common: nothing to keep.
        let random: Vec<Vec<u8>> = (0..300u64)
            .map(|i| {
                (0..8)
                    .flat_map(|j| {
                        xxhash_rust::xxh3::xxh3_64(&[i, j].map(u64::to_le_bytes).concat())
                            .to_le_bytes()
                    })
                    .collect()
            })
            .collect();
        assert_eq!(Dictionary::train(&random), None);
    }

    #[test]
    fn the_current_dictionary_is_the_one_named() {
        let known = Dictionaries::new();
        assert!(known.current().is_none());
        let a = Dictionary::new(b"aaaaaaaa".to_vec());
        let (a_id, b) = (a.id(), Dictionary::new(b"bbbbbbbb".to_vec()));
        let b_id = b.id();
        known.learn(vec![a, b], Some(a_id));
        assert_eq!(known.current().unwrap().id(), a_id);
        assert!(known.knows(b_id));
        known.learn(Vec::new(), Some(b_id));
        assert_eq!(known.current().unwrap().id(), b_id);
        known.learn(Vec::new(), Some(12345)); // unknown: no change
        assert_eq!(known.current().unwrap().id(), b_id);
        // A name the store did not have is not asked for again at once.
        assert!(known.worth_asking_for(12345));
        known.not_found(12345);
        assert!(!known.worth_asking_for(12345));
        assert!(!known.worth_asking_for(a_id), "known");
        assert_eq!(known.all().len(), 2);
        assert!(!Dictionary::fits(b"short") && !Dictionary::fits(&vec![0; MAX_BYTES + 1]));
    }
}
