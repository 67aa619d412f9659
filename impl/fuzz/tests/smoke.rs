//! The harnesses without libFuzzer: every target on its seeds and on a few thousand mutations
//! of them, under the counting allocator; and the allocation bound itself.

use raft_fuzz::alloc::{measure, CountingAlloc, LIMIT};
use raft_fuzz::{fuzz_one, TARGETS};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The counters are process-wide: the tests (threads of one process) take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A small deterministic generator (xorshift64*), so that the test needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn every_target_takes_its_seeds_and_their_mutations() {
    let _turn = serial();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for t in TARGETS {
        let seeds = (t.seeds)();
        assert!(!seeds.is_empty(), "{} has no seeds", t.name);
        for seed in &seeds {
            fuzz_one(t.name, seed);
        }
        for _ in 0..2000 {
            let mut input = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(4) {
                match rng.below(4) {
                    0 if !input.is_empty() => {
                        let at = rng.below(input.len());
                        input[at] ^= 1 << rng.below(8);
                    }
                    1 if !input.is_empty() => input.truncate(rng.below(input.len())),
                    2 => {
                        let at = rng.below(input.len() + 1);
                        input.insert(at, rng.next() as u8);
                    }
                    _ if input.len() >= 4 => {
                        let at = rng.below(input.len() - 3);
                        input[at..at + 4].copy_from_slice(&(rng.next() as u32).to_le_bytes());
                    }
                    _ => {}
                }
            }
            fuzz_one(t.name, &input);
        }
    }
}

#[test]
fn a_seed_decodes_under_the_bound_and_is_counted() {
    let _turn = serial();
    let seed = (raft_fuzz::target("peer_frame").seeds)().remove(2);
    let ((), usage) = measure(|| (raft_fuzz::target("peer_frame").run)(&seed));
    assert!(usage.peak_live > 0 && usage.peak_live <= LIMIT, "{usage:?}");
    assert!(
        usage.largest > 0 && usage.largest <= usage.peak_live,
        "{usage:?}"
    );
}

#[test]
#[should_panic(expected = "was refused")]
fn an_allocation_beyond_the_bound_is_refused() {
    let _turn = serial();
    measure(|| {
        let mut v: Vec<u8> = Vec::new();
        // The allocator returns null; try_reserve reports it instead of aborting.
        assert!(v.try_reserve_exact(LIMIT + 1).is_err());
    });
}

#[test]
#[should_panic(expected = "was refused")]
fn many_allocations_beyond_the_bound_together_are_refused() {
    let _turn = serial();
    measure(|| {
        let mut held: Vec<Vec<u8>> = Vec::new();
        for _ in 0..(LIMIT / (1 << 20)) + 2 {
            let mut v: Vec<u8> = Vec::new();
            if v.try_reserve_exact(1 << 20).is_err() {
                break;
            }
            held.push(v);
        }
    });
}
