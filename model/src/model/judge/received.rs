//! What a server received, as the model saw it deliver: the pre-vote grants and the
//! acknowledgements of a leader's term (the ghost's [`Volatile`] records), and the verdicts
//! the adapter takes from them at the step that decides. Nothing here reads the core's own
//! counters (`votes_granted`, read rounds, read acks): a count that decides a verdict is a
//! count of messages the model delivered.

use crate::model::judge::ghost::{Ghost, PendingRead};
use crate::model::judge::register::Cmd;
use crate::model::shared::Shared;
use raft_core::{Event, Message, NodeId, Output, ReadResult, Role, Server, Term};
use std::collections::BTreeSet;

/// A server's configuration in the model (as the adapter's `actor::ServerConfig`).
type ServerConfig = raft_core::Config<crate::mutant::ModelRules>;

/// What one step's event brings that the records care about (taken before the step).
#[derive(Clone, Copy, Debug, Default)]
pub struct Received {
    /// A PreVoteResponse granting the term this pre-candidate proposes, from this server.
    pre_vote_grant: Option<NodeId>,
    /// An election timeout: a pre-vote round starts afresh (thesis §9.6).
    new_round: bool,
    /// An AppendEntriesResponse of this leader's term, from this server (also the answer to
    /// an InstallSnapshot): it acknowledged the leadership.
    ack: Option<NodeId>,
    /// A read taken through ReadIndex, with this tag.
    read: Option<u64>,
}

impl Received {
    /// What `event` brings to the server `before`.
    pub fn of(event: &Event<Cmd>, before: &Server<Cmd>) -> Self {
        let term = before.current_term();
        match event {
            Event::Receive {
                from,
                msg: Message::PreVoteResponse(r),
            } if r.vote_granted
                && before.role == Role::PreCandidate
                && Some(r.term) == term.checked_add(1) =>
            {
                Received {
                    pre_vote_grant: Some(*from),
                    ..Default::default()
                }
            }
            Event::Receive {
                from,
                msg: Message::AppendEntriesResponse(r),
            } if before.role == Role::Leader && r.term == term => Received {
                ack: Some(*from),
                ..Default::default()
            },
            Event::ElectionTimeout => Received {
                new_round: true,
                ..Default::default()
            },
            Event::ReadIndex { id, .. } => Received {
                read: Some(*id),
                ..Default::default()
            },
            _ => Received::default(),
        }
    }
}

/// Elections Follow A Pre-Vote Majority (thesis §9.6): a term this server raised itself, other
/// than by adopting one it received (`adopted`) or on its leader's TimeoutNow (`handed`,
/// §3.10), must be the term of a campaign it started as a pre-candidate (or at an election
/// timeout) with the grants of a majority of its voters, itself included, received in the
/// round in progress. Keeps the grants while the round goes on.
#[allow(clippy::too_many_arguments)]
pub fn record_pre_vote(
    ghost: &mut Shared<Ghost>,
    cfg: &ServerConfig,
    received: Received,
    before: &Server<Cmd>,
    after: &Server<Cmd>,
    adopted: Option<Term>,
    handed: Option<Term>,
) {
    let in_round = received.new_round || before.role == Role::PreCandidate;
    let mut grants = if received.new_round || before.role != Role::PreCandidate {
        BTreeSet::new()
    } else {
        ghost.volatile.pre_vote_grants.clone()
    };
    if let Some(from) = received.pre_vote_grant {
        if before.membership(cfg).contains(from) {
            grants.insert(from);
        }
    }
    let term = after.current_term();
    if term > before.current_term() && adopted != Some(term) && handed != Some(term) {
        // A majority of the voters of its configuration (membership.rs), its own grant
        // included.
        let voters = &before.membership(cfg).voters;
        let granted = grants.iter().filter(|p| voters.contains(p)).count()
            + usize::from(voters.contains(&cfg.id));
        let won = in_round
            && Some(term) == before.current_term().checked_add(1)
            && granted > voters.len() / 2;
        if !won && !ghost.term_raised_without_pre_vote {
            Shared::make_mut(ghost).term_raised_without_pre_vote = true;
        }
    }
    if after.role != Role::PreCandidate || term != before.current_term() {
        grants.clear();
    }
    if grants != ghost.volatile.pre_vote_grants {
        Shared::make_mut(ghost).volatile.pre_vote_grants = grants;
    }
}

/// Reads Confirmed By A Quorum (thesis §6.4, with `--read-index`): every read a leader answers
/// from its register was acknowledged, after it arrived, by a majority of the leader's voters,
/// itself included: a voter counts once the model delivered to the leader an
/// AppendEntriesResponse of its term from it since the read arrived. (A reply already in
/// flight when the read arrived counts too: the model does not pair replies with requests,
/// the core's read rounds do. Requiring the leader to have asked the voter again since the
/// read arrived narrows that gap without closing it, and doubled the distinct states of a
/// bound with two reads; left out.) Keeps each read the leader took until it answers it (or
/// stops leading).
pub fn record_reads(
    ghost: &mut Shared<Ghost>,
    cfg: &ServerConfig,
    received: Received,
    before: &Server<Cmd>,
    after: &Server<Cmd>,
    out: &Output<Cmd>,
) {
    let leads = |s: &Server<Cmd>| s.role == Role::Leader;
    if !leads(before) && !leads(after) && ghost.volatile.reads.is_empty() {
        return;
    }
    let mut reads = if leads(before) {
        ghost.volatile.reads.clone()
    } else {
        Vec::new()
    };
    if let Some(from) = received.ack {
        for read in &mut reads {
            read.acked.insert(from);
        }
    }
    if let Some(id) = received.read {
        reads.push(PendingRead {
            id,
            acked: BTreeSet::new(),
        });
    }
    let mut unconfirmed = false;
    for answer in &out.reads {
        let (ReadResult::Ready { id, .. }
        | ReadResult::NotLeader { id, .. }
        | ReadResult::ThroughLog { id }) = *answer;
        let read = reads
            .iter()
            .position(|r| r.id == id)
            .map(|i| reads.remove(i));
        if let ReadResult::Ready { .. } = answer {
            let voters = &after.membership(cfg).voters;
            let acked = read.map_or(0, |r| r.acked.iter().filter(|p| voters.contains(p)).count());
            let confirmed = acked + usize::from(voters.contains(&cfg.id));
            unconfirmed |= confirmed <= voters.len() / 2;
        }
    }
    if !leads(after) || after.current_term() != before.current_term() {
        reads.clear();
    }
    if unconfirmed && !ghost.read_unconfirmed {
        Shared::make_mut(ghost).read_unconfirmed = true;
    }
    if reads != ghost.volatile.reads {
        Shared::make_mut(ghost).volatile.reads = reads;
    }
}

/// Witness "Leadership Transferred" (thesis §3.10): this server won the election it started
/// on a leader's TimeoutNow, the campaign being the one whose term the TimeoutNow named
/// (`handed`, the sender's term + 1). Keeps that term while the server campaigns in it.
pub fn record_transfer_campaign(
    ghost: &mut Shared<Ghost>,
    before: &Server<Cmd>,
    after: &Server<Cmd>,
    handed: Option<Term>,
) {
    let term = after.current_term();
    let campaign = if handed == Some(term) && term > before.current_term() {
        Some(term)
    } else {
        ghost.volatile.transfer_campaign.filter(|&t| t == term)
    };
    if after.role == Role::Leader && campaign.is_some() && !ghost.won_by_transfer {
        Shared::make_mut(ghost).won_by_transfer = true;
    }
    let keep = campaign.filter(|_| after.role == Role::Candidate);
    if keep != ghost.volatile.transfer_campaign {
        Shared::make_mut(ghost).volatile.transfer_campaign = keep;
    }
}
