//! How a swarm walk chooses its steps: a deterministic random number generator, the kinds of
//! action the model offers, and one weight per kind drawn afresh for every walk (Holzmann's
//! swarm verification: many searches, each biased differently, so that one crashes a lot,
//! another never, another loses most messages).

use raft_core::Message;
use raft_model::model::{Msg, RaftAction, Timer};
use stateright::actor::ActorModelAction;

/// SplitMix64 (Steele, Lea, Flood 2014): a few lines, no dependency, and its output is fixed by
/// its definition, so a walk's seed replays the same walk with every build of the checker
/// (`rand`'s `StdRng` promises no such stability across versions).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`); the modulo bias is below 2^-40 for the small `n` used here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The seed of walk `walk` of a swarm run with seed `seed`: a function of the two alone, so
/// any walk can be replayed on its own (`--walk K`).
pub fn walk_seed(seed: u64, walk: u64) -> u64 {
    let mut outer = SplitMix64::new(seed);
    let base = outer.next_u64();
    SplitMix64::new(base ^ walk.wrapping_mul(0xd1b5_4a32_d192_ed03)).next_u64()
}

/// The kinds of action a walk weighs separately.
pub const KINDS: [&str; 21] = [
    "deliver RequestVote",
    "deliver RequestVote reply",
    "deliver AppendEntries",
    "deliver AppendEntries reply",
    "deliver PreVote",
    "deliver PreVote reply",
    "deliver TimeoutNow",
    "deliver InstallSnapshot",
    "deliver client request",
    "deliver client reply",
    "lose a message",
    "election timeout",
    "send timer (RequestVote/AppendEntries)",
    "client retry timer",
    "leader's disk write",
    "leadership transfer",
    "membership change",
    "snapshot",
    "crash",
    "restart",
    "forged frame",
];

/// The index in [`KINDS`] of the delivery of a message of this type.
pub fn message_kind(msg: &Msg) -> usize {
    match msg {
        Msg::Raft(Message::RequestVote(_)) => 0,
        Msg::Raft(Message::RequestVoteResponse(_)) => 1,
        Msg::Raft(Message::AppendEntries(_)) => 2,
        Msg::Raft(Message::AppendEntriesResponse(_)) => 3,
        Msg::Raft(Message::PreVote(_)) => 4,
        Msg::Raft(Message::PreVoteResponse(_)) => 5,
        Msg::Raft(Message::TimeoutNow(_)) => 6,
        Msg::Raft(Message::InstallSnapshot(_)) => 7,
        Msg::Request { .. } => 8,
        Msg::Reply { .. } => 9,
    }
}

/// The index in [`KINDS`] of an action's kind.
pub fn kind(action: &RaftAction) -> usize {
    match action {
        ActorModelAction::Deliver { msg, .. } => message_kind(msg),
        ActorModelAction::Drop(_) => 10,
        ActorModelAction::Timeout(_, timer) => match timer {
            Timer::Election => 11,
            Timer::Send(_) => 12,
            Timer::Request(_) => 13,
            Timer::Persist => 14,
            Timer::Transfer(_) => 15,
            Timer::Reconfigure(_) => 16,
            Timer::Compact => 17,
            Timer::Forge => 20,
        },
        ActorModelAction::Crash(_) => 18,
        ActorModelAction::Recover(_) => 19,
        // The model never offers it (its actors make no random choices).
        ActorModelAction::SelectRandom { .. } => 10,
    }
}

/// The actor an action happens at: the receiver of a delivery or loss, the owner of a timer,
/// the server that crashes or restarts.
fn actor(action: &RaftAction) -> usize {
    match action {
        ActorModelAction::Deliver { dst, .. } => usize::from(*dst),
        ActorModelAction::Drop(env) => usize::from(env.dst),
        ActorModelAction::Timeout(id, _)
        | ActorModelAction::Crash(id)
        | ActorModelAction::Recover(id) => usize::from(*id),
        ActorModelAction::SelectRandom { actor, .. } => usize::from(*actor),
    }
}

/// One walk's weights: per kind, off (0) with probability 1/4, else 1, 2, 4, 8 or 16 with
/// equal probability; per actor, 1, 2, 4 or 8 (never off: a server that never acts is a
/// crashed one, which the crash bound decides), so that in some walks one server is slow to
/// hear and to time out. An action weighs its kind's weight times its actor's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Weights {
    pub kinds: [u64; KINDS.len()],
    pub actors: Vec<u64>,
}

impl Weights {
    /// The weights of a walk over `actors` actors, drawn first from its generator.
    pub fn draw(rng: &mut SplitMix64, actors: usize) -> Self {
        let mut kinds = [0; KINDS.len()];
        for slot in &mut kinds {
            *slot = if rng.below(4) == 0 {
                0
            } else {
                1 << rng.below(5)
            };
        }
        let actors = (0..actors).map(|_| 1 << rng.below(4)).collect();
        Weights { kinds, actors }
    }

    pub fn of(&self, action: &RaftAction) -> u64 {
        self.kinds[kind(action)] * self.actors.get(actor(action)).copied().unwrap_or(1)
    }

    /// The kinds switched off, for the report of a walk.
    pub fn off(&self) -> Vec<&'static str> {
        KINDS
            .iter()
            .zip(self.kinds)
            .filter(|(_, w)| *w == 0)
            .map(|(k, _)| *k)
            .collect()
    }
}

/// Pick an index by weight; `None` if every weight is 0. Weighs the candidates in their order.
pub fn pick(rng: &mut SplitMix64, weights: &[u64]) -> Option<usize> {
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return None;
    }
    let mut r = rng.below(total);
    for (i, &w) in weights.iter().enumerate() {
        if r < w {
            return Some(i);
        }
        r -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published first outputs of SplitMix64 from seed 0: a changed generator would
    // silently change every recorded walk.
    #[test]
    fn splitmix64_is_the_published_generator() {
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn walk_seeds_differ_per_walk_and_per_seed() {
        assert_ne!(walk_seed(0, 0), walk_seed(0, 1));
        assert_ne!(walk_seed(0, 1), walk_seed(1, 1));
        assert_eq!(walk_seed(7, 3), walk_seed(7, 3));
    }

    #[test]
    fn pick_never_chooses_a_zero_weight() {
        let mut r = SplitMix64::new(1);
        for _ in 0..1000 {
            assert_eq!(pick(&mut r, &[0, 3, 0]), Some(1));
        }
        assert_eq!(pick(&mut r, &[0, 0]), None);
    }
}
