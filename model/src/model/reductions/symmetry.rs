//! Symmetry reduction over server ids.
//!
//! Every server runs the same rules and no rule, property or bound singles out a server by its
//! id, so renaming the servers of a reachable state gives a reachable state with the same
//! verdicts. The checker may therefore keep one state per renaming class: [`representative`]
//! maps a state to a fixed member of its class (servers sorted by what they are, not by who
//! they are; servers alike in all that are ordered by trying each order), and the checker
//! deduplicates on that member's fingerprint while it goes on
//! exploring the state it actually reached (so its paths stay real paths).
//!
//! Clients are not renamed: they are the observers of linearizability, their ids key the
//! history, and each writes its own value.
//!
//! Why stateright's own `Representative` is not used: it sorts actor states by their raw value
//! (which holds ids such as `voted_for`, so equal servers are told apart by id), and it moves
//! each actor's timer set to its new index without renaming the timers inside it, while our
//! timers name servers (`Timer::Send(peer)`, `Timer::Request(server)`).
//!
//! Soundness needs every transition to commute with renaming. That is why a client that gets a
//! not-leader reply without a hint does not pick "the next server" (an order among ids): its
//! request timers already let it try any server (`client.rs`).

use crate::model::adapter::node::{NodeState, ServerState, ServerStorage, Timer};
use crate::model::adapter::state::Slot;
use crate::model::judge::ghost::{Ghost, GhostIds};
use crate::model::judge::register::{ClientReply, Msg};
use crate::model::shared::{hash_of, Shared};
use crate::model::{ActorSlot, RaftState, TimerSet};
use raft_core::{NodeId, Progress, Server};
use stateright::actor::Id;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering as AtomicOrdering;

/// A renaming of the servers: `to[i]` is the new index of server `i`. Clients keep theirs.
struct Renaming {
    to: Vec<usize>,
}

impl Renaming {
    fn index(&self, i: usize) -> usize {
        self.to.get(i).copied().unwrap_or(i)
    }
    fn id(&self, id: Id) -> Id {
        Id::from(self.index(usize::from(id)))
    }
    fn node(&self, n: NodeId) -> NodeId {
        NodeId(self.index(n.0 as usize) as u64)
    }
    /// `v` reordered so that the element at old index `i` lands at `to[i]`.
    fn reindex<T: Clone>(&self, v: &[T]) -> Vec<T> {
        let mut out = v.to_vec();
        for (i, x) in v.iter().enumerate() {
            out[self.index(i)] = x.clone();
        }
        out
    }
}

/// The representative of `state`'s renaming class. Pass it to stateright's
/// `CheckerBuilder::symmetry_fn` (DFS and simulation honour it; stateright 0.31's BFS ignores
/// it).
pub fn representative(state: &RaftState) -> RaftState {
    rename_to_order(state, &canonical_order(state))
}

/// The order of the servers in `state`'s representative: `order[new]` is the server that
/// [`representative`] moves to index `new`.
pub fn canonical_order(state: &RaftState) -> Vec<usize> {
    order_in(state, Scope::State)
}

/// A canonical order of what "Progress When Faults Stop" reads of `state` (each server's core
/// state and whether it stopped, the deliverable Raft messages between servers): a function
/// of that alone, the same for every renaming of it. Its memo can then look a state up by
/// what the continuation reads, before any order is computed.
pub fn continuation_order(state: &RaftState) -> Vec<usize> {
    order_in(state, Scope::Continuation)
}

/// What an order looks at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The whole state (the representative).
    State,
    /// Only what the liveness continuation reads.
    Continuation,
}

fn order_in(state: &RaftState, scope: Scope) -> Vec<usize> {
    let n = state.servers().count();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| compare(state, a, b, scope));
    // Servers that look alike (equal under `compare`) form a tie group. Their order is settled
    // by trying every order within every group and keeping the one with the smallest
    // `Signature`: every member of a class then yields the same representative.
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    for i in 1..=n {
        if i == n || compare(state, order[i - 1], order[i], scope) != Ordering::Equal {
            if i - start > 1 {
                groups.push(start..i);
            }
            start = i;
        }
    }
    let candidates: usize = groups.iter().map(|g| factorial(g.len())).product();
    if groups.is_empty() || candidates > MAX_CANDIDATES {
        // No ties, or too many to try (large clusters): the stable order is still a renaming
        // (sound), only a coarser reduction.
        return order;
    }
    let mut best: Option<(Signature, Vec<usize>)> = None;
    for_each_order(&mut order, &groups, 0, &mut |order| {
        let sig = signature(state, order, scope);
        if best.as_ref().is_none_or(|(b, _)| sig < *b) {
            best = Some((sig, order.to_vec()));
        }
    });
    match best {
        Some((_, best)) => best,
        None => order,
    }
}

/// Everything that differs between the renamings of one state that keep `compare`'s order:
/// the ids inside servers, storage, timers and messages (all else is equal within a tie
/// group). Comparing signatures picks the same renaming for every member of a class without
/// building and hashing each candidate state.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Signature {
    servers: Vec<ServerSignature>,
    client_timers: Vec<Vec<Timer>>,
    network: Vec<(usize, usize, Msg, usize)>,
    /// The duplicating network's last delivered message (stateright keeps it in the state so
    /// that a delivery that changes no actor still yields a new state); it holds ids too, and
    /// leaving it out let two renamings tie on the signature yet differ as states.
    last_delivered: Option<(usize, usize, Msg)>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct ServerSignature {
    voted_for: Option<NodeId>,
    saved_vote: Option<NodeId>,
    leader_id: Option<NodeId>,
    votes_granted: Vec<NodeId>,
    next_index: Vec<(NodeId, u64)>,
    match_index: Vec<(NodeId, u64)>,
    probing: Vec<NodeId>,
    read_acks: Vec<(NodeId, u64)>,
    recent_active: Vec<NodeId>,
    transferee: Option<NodeId>,
    timers: Vec<Timer>,
    /// The ids in the ghost records (the live one; the saved one holds none but
    /// `stable_acks`, the same as the live one's).
    ghost: GhostIds,
}

fn signature(state: &RaftState, order: &[usize], scope: Scope) -> Signature {
    let whole = scope == Scope::State;
    let mut to = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        to[old] = new;
    }
    let r = Renaming { to };
    let sorted_timers = |i: usize| {
        if !whole {
            return Vec::new();
        }
        let mut t: Vec<Timer> = state.timers(i).map(|t| rename_timer(t, &r)).collect();
        t.sort_unstable();
        t
    };
    let servers = order
        .iter()
        .map(|&old| {
            let ss = state.server(old).expect("servers come first");
            let s = &ss.server;
            let mut votes: Vec<NodeId> = s.votes_granted.iter().map(|n| r.node(*n)).collect();
            votes.sort_unstable();
            let progress = &s.leader.progress;
            let mut next: Vec<(NodeId, u64)> = progress
                .iter()
                .map(|(n, g)| (r.node(*n), g.next_index))
                .collect();
            next.sort_unstable();
            let mut matched: Vec<(NodeId, u64)> = progress
                .iter()
                .map(|(n, g)| (r.node(*n), g.match_index))
                .collect();
            matched.sort_unstable();
            let mut probing: Vec<NodeId> = s.leader.probing().map(|n| r.node(n)).collect();
            probing.sort_unstable();
            let mut read_acks: Vec<(NodeId, u64)> =
                s.leader.read_acks().map(|(n, k)| (r.node(n), k)).collect();
            read_acks.sort_unstable();
            let mut recent_active: Vec<NodeId> =
                s.leader.recent_active().map(|n| r.node(n)).collect();
            recent_active.sort_unstable();
            ServerSignature {
                voted_for: s.hard.voted_for.map(|n| r.node(n)),
                saved_vote: state
                    .storage(old)
                    .and_then(|st| st.hard.voted_for)
                    .filter(|_| whole)
                    .map(|n| r.node(n)),
                leader_id: s.leader_id.map(|n| r.node(n)),
                votes_granted: votes,
                next_index: next,
                match_index: matched,
                probing,
                read_acks,
                recent_active,
                transferee: s.leader.transferee.map(|n| r.node(n)),
                timers: sorted_timers(old),
                ghost: if whole {
                    ss.ghost.ids(|n| r.node(n))
                } else {
                    GhostIds::default()
                },
            }
        })
        .collect();
    let client_timers = (order.len()..state.actor_count())
        .map(sorted_timers)
        .collect();
    let n = order.len();
    let mut network: Vec<(usize, usize, Msg, usize)> = if !whole {
        // What the continuation reads: each deliverable Raft message between servers, once.
        state
            .network
            .iter_deliverable()
            .filter(|e| {
                matches!(e.msg, Msg::Raft(_)) && usize::from(e.src) < n && usize::from(e.dst) < n
            })
            .map(|e| {
                (
                    r.index(usize::from(e.src)),
                    r.index(usize::from(e.dst)),
                    rename_msg(e.msg, &r),
                    1,
                )
            })
            .collect()
    } else if state.network.is_ordered() {
        // The position in the channel matters: encode it in the count slot.
        let mut position: BTreeMap<(Id, Id), usize> = BTreeMap::new();
        state
            .network
            .iter_all()
            .map(|e| {
                let k = position.entry((e.src, e.dst)).or_default();
                *k += 1;
                (
                    r.index(usize::from(e.src)),
                    r.index(usize::from(e.dst)),
                    rename_msg(e.msg, &r),
                    *k - 1,
                )
            })
            .collect()
    } else {
        state
            .network
            .entries()
            .map(|(e, c)| {
                (
                    r.index(usize::from(e.src)),
                    r.index(usize::from(e.dst)),
                    rename_msg(e.msg, &r),
                    c,
                )
            })
            .collect()
    };
    network.sort_unstable();
    let last_delivered = state.network.last_delivered().filter(|_| whole).map(|e| {
        (
            r.index(usize::from(e.src)),
            r.index(usize::from(e.dst)),
            rename_msg(e.msg, &r),
        )
    });
    Signature {
        servers,
        client_timers,
        network,
        last_delivered,
    }
}

/// Most renamings tried for one state (3! · 2! · … within tie groups); beyond it ties keep
/// their stable order.
const MAX_CANDIDATES: usize = 720;

fn factorial(k: usize) -> usize {
    (1..=k).product()
}

/// Calls `f` with every order obtained by permuting, independently, the positions of each
/// group in `groups[g..]` (Heap's algorithm, group by group).
fn for_each_order(
    order: &mut Vec<usize>,
    groups: &[std::ops::Range<usize>],
    g: usize,
    f: &mut dyn FnMut(&[usize]),
) {
    let Some(range) = groups.get(g) else {
        f(order);
        return;
    };
    fn heap(
        k: usize,
        order: &mut Vec<usize>,
        range: &std::ops::Range<usize>,
        groups: &[std::ops::Range<usize>],
        g: usize,
        f: &mut dyn FnMut(&[usize]),
    ) {
        if k <= 1 {
            for_each_order(order, groups, g + 1, f);
            return;
        }
        for i in 0..k {
            heap(k - 1, order, range, groups, g, f);
            let j = if k.is_multiple_of(2) { i } else { 0 };
            if i + 1 < k {
                order.swap(range.start + j, range.start + k - 1);
            }
        }
    }
    heap(range.len(), order, range, groups, g, f);
}

/// `state` with the server at `order[new]` moved to index `new`.
pub fn rename_to_order(state: &RaftState, order: &[usize]) -> RaftState {
    if order.iter().enumerate().all(|(new, &old)| new == old) {
        return state.clone();
    }
    let mut to = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        to[old] = new;
    }
    rename(state, &Renaming { to })
}

/// Orders two servers by what they are, with every id replaced by "me" or "someone else".
fn compare(state: &RaftState, a: usize, b: usize, scope: Scope) -> Ordering {
    let (sa, sb) = match (state.server(a), state.server(b)) {
        (Some(x), Some(y)) => (x, y),
        _ => return Ordering::Equal,
    };
    let me = |i: usize, n: Option<NodeId>| n.map(|n| n.0 as usize == i);
    let (x, y) = (&sa.server, &sb.server);
    let whole = scope == Scope::State;
    let crashed = |i: usize| whole && state.is_crashed(i);
    crashed(a)
        .cmp(&crashed(b))
        .then(x.hard.current_term.cmp(&y.hard.current_term))
        .then(x.role.cmp(&y.role))
        .then(x.hard.snapshot.cmp(&y.hard.snapshot))
        .then(x.hard.log.cmp(&y.hard.log))
        .then(x.commit_index.cmp(&y.commit_index))
        .then(x.last_applied.cmp(&y.last_applied))
        .then(me(a, x.hard.voted_for).cmp(&me(b, y.hard.voted_for)))
        .then(me(a, x.leader_id).cmp(&me(b, y.leader_id)))
        .then(x.votes_granted.len().cmp(&y.votes_granted.len()))
        .then_with(|| sorted(x, |g| g.match_index).cmp(&sorted(y, |g| g.match_index)))
        .then_with(|| sorted(x, |g| g.next_index).cmp(&sorted(y, |g| g.next_index)))
        .then(x.leader.probing().count().cmp(&y.leader.probing().count()))
        .then(x.leader.read_round.cmp(&y.leader.read_round))
        .then_with(|| x.pending_reads.cmp(&y.pending_reads))
        .then_with(|| read_acks(x).cmp(&read_acks(y)))
        .then(
            x.leader
                .recent_active()
                .count()
                .cmp(&y.leader.recent_active().count()),
        )
        .then(
            x.leader
                .transferee
                .is_some()
                .cmp(&y.leader.transferee.is_some()),
        )
        .then(x.transfer_campaign.cmp(&y.transfer_campaign))
        .then_with(|| match scope {
            Scope::State => sa
                .machine
                .cmp(&sb.machine)
                .then_with(|| sa.ghost.cmp_ignoring_ids(&sb.ghost)),
            // The continuation reads only whether a server stopped.
            Scope::Continuation => sa.fault.is_some().cmp(&sb.fault.is_some()),
        })
}

/// One field of a leader's progress for each of its peers, sorted (no peer ids).
fn sorted<C>(s: &Server<C>, field: impl Fn(&Progress) -> u64) -> Vec<u64> {
    let mut v: Vec<u64> = s.leader.progress.values().map(field).collect();
    v.sort_unstable();
    v
}

/// The read rounds a leader's peers echoed, sorted (no peer ids).
fn read_acks<C>(s: &Server<C>) -> Vec<u64> {
    let mut v: Vec<u64> = s.leader.read_acks().map(|(_, k)| k).collect();
    v.sort_unstable();
    v
}

/// `state` with server `i` renamed to `to[i]` (a permutation of `0..servers`): every id in
/// every server, timer, message and storage is rewritten, and the servers are moved to their
/// new indices. Clients keep their ids.
pub fn rename_servers(state: &RaftState, to: &[usize]) -> RaftState {
    rename(state, &Renaming { to: to.to_vec() })
}

fn rename(state: &RaftState, r: &Renaming) -> RaftState {
    let actors = r
        .reindex(&state.actors)
        .into_iter()
        .map(|slot| Shared::new(rename_slot(&slot, r)))
        .collect();
    RaftState {
        actors,
        crashed: renamed_crashes(state, r),
        network: state.network.renamed(|id| r.id(id), |m| rename_msg(m, r)),
        history: state.history.clone(),
    }
}

/// One actor's slot with every id in it renamed (it moves to its new index elsewhere).
fn rename_slot(slot: &ActorSlot, r: &Renaming) -> ActorSlot {
    let mut timers = TimerSet::default();
    for t in slot.timers.iter() {
        timers.set(rename_timer(t, r));
    }
    ActorSlot {
        state: match &*slot.state {
            NodeState::Server(s) => Shared::new(NodeState::Server(rename_server_state(s, r))),
            NodeState::Client(_) => slot.state.clone(),
        },
        timers,
        storage: slot.storage.clone().map(|s| rename_storage(s, r)),
    }
}

fn renamed_crashes(state: &RaftState, r: &Renaming) -> u32 {
    let mut crashed = 0;
    for i in (0..state.actor_count()).filter(|&i| state.is_crashed(i)) {
        crashed |= 1 << r.index(i);
    }
    crashed
}

/// `state`'s representative ([`representative`]) as far as hashing goes: it hashes exactly as
/// the representative does, without being built. Each slot's hash under a renaming is worked
/// out once per slot and renaming and kept with the slot (`RenamedHashes`): most slots are
/// shared by many states, and building and hashing whole renamed states was most of a
/// symmetric search's time.
pub struct RepresentativeHash<'a> {
    state: &'a RaftState,
    renaming: Renaming,
}

/// See [`RepresentativeHash`].
pub fn representative_hash(state: &RaftState) -> RepresentativeHash<'_> {
    let order = canonical_order(state);
    let mut to = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        to[old] = new;
    }
    RepresentativeHash {
        state,
        renaming: Renaming { to },
    }
}

impl std::hash::Hash for RepresentativeHash<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let (state, r) = (self.state, &self.renaming);
        if r.to.iter().enumerate().all(|(old, &new)| old == new) {
            return state.hash(h);
        }
        // As `RaftState`'s derived `Hash` hashes the renamed state: the actors (their number,
        // then each slot's hash in its new place), the crash bits, the network, the history.
        let mut slots = vec![0; state.actor_count()];
        for (old, slot) in state.actors.iter().enumerate() {
            slots[r.index(old)] = renamed_slot_hash(slot, r);
        }
        slots.len().hash(h);
        for slot in slots {
            h.write_u64(slot);
        }
        renamed_crashes(state, r).hash(h);
        state
            .network
            .renamed(|id| r.id(id), |m| rename_msg(m, r))
            .hash(h);
        state.history.hash(h);
    }
}

/// The hash of `slot` renamed by `r` (as `Shared::hash_value` would give it), kept with the
/// slot for clusters of up to three servers.
fn renamed_slot_hash(slot: &Slot, r: &Renaming) -> u64 {
    let Some(rank) = renaming_rank(&r.to) else {
        return hash_of(&rename_slot(slot, r));
    };
    let cell = &slot.derived().0[rank];
    let cached = cell.load(AtomicOrdering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let computed = hash_of(&rename_slot(slot, r));
    cell.store(computed, AtomicOrdering::Relaxed);
    computed
}

/// A renaming's index among the renamings of its servers (below 6), for clusters of up to
/// three servers.
fn renaming_rank(to: &[usize]) -> Option<usize> {
    match *to {
        [] | [_] => Some(0),
        [a, _] => Some(a),
        [a, b, c] => Some(a * 2 + usize::from(b > c)),
        _ => None,
    }
}

fn rename_server(
    s: &Server<crate::model::judge::register::Cmd>,
    r: &Renaming,
) -> Server<crate::model::judge::register::Cmd> {
    let mut s = s.clone();
    s.hard.voted_for = s.hard.voted_for.map(|n| r.node(n));
    s.leader_id = s.leader_id.map(|n| r.node(n));
    s.votes_granted = s.votes_granted.iter().map(|n| r.node(*n)).collect();
    s.leader.progress = s
        .leader
        .progress
        .iter()
        .map(|(n, g)| (r.node(*n), *g))
        .collect();
    s.leader.transferee = s.leader.transferee.map(|n| r.node(n));
    s
}

fn rename_server_state(s: &ServerState, r: &Renaming) -> ServerState {
    ServerState {
        server: rename_server(&s.server, r),
        machine: s.machine.clone(),
        ghost: Ghost::renamed(&s.ghost, |n| r.node(n)),
        fault: s.fault.clone(),
    }
}

fn rename_storage(s: ServerStorage, r: &Renaming) -> ServerStorage {
    let s = ServerStorage {
        ghost: Ghost::renamed(&s.ghost, |n| r.node(n)),
        ..s
    };
    match s.hard.voted_for {
        Some(n) if r.node(n) != n => {
            let mut hard = (*s.hard).clone();
            hard.voted_for = Some(r.node(n));
            ServerStorage {
                hard: Shared::new(hard),
                ghost: s.ghost,
            }
        }
        _ => s,
    }
}

fn rename_timer(t: Timer, r: &Renaming) -> Timer {
    match t {
        Timer::Election => Timer::Election,
        Timer::Send(n) => Timer::Send(r.node(n)),
        Timer::Request(n) => Timer::Request(r.node(n)),
        Timer::Persist => Timer::Persist,
        Timer::Transfer(n) => Timer::Transfer(r.node(n)),
        // Symmetry is refused with membership changes (`ModelConfig::validate`).
        Timer::Reconfigure(c) => Timer::Reconfigure(c),
        Timer::Compact => Timer::Compact,
        Timer::Forge => Timer::Forge,
    }
}

fn rename_msg(m: &Msg, r: &Renaming) -> Msg {
    match m {
        Msg::Reply {
            seq,
            reply: ClientReply::NotLeader(Some(hint)),
        } => Msg::Reply {
            seq: *seq,
            reply: ClientReply::NotLeader(Some(r.node(*hint))),
        },
        // Raft messages carry no ids (the sender is in the envelope).
        other => other.clone(),
    }
}
