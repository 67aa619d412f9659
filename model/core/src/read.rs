//! Linearizable reads without writing the log (Ongaro's thesis §6.4, ReadIndex).
//!
//! A leader answers a read from its state machine, without appending anything, once:
//!
//! 1. it has committed an entry of its own term, so that its commit_index is at least every
//!    index committed before the read arrived (Leader Completeness); the read's index is that
//!    commit_index;
//! 2. a majority, itself included, has answered an AppendEntries sent after the read arrived
//!    with a reply of the leader's term: no later leader existed when those replies left, so
//!    none had committed anything the read could miss;
//! 3. its state machine has applied the log up to the read's index. The core applies every
//!    entry in the step that commits it (`last_applied == commit_index` after each step), so
//!    a confirmed read is ready at once; the driver applies the step's [`Output::apply`]
//!    before it serves the step's reads.
//!
//! Step 2 uses read rounds: a read arriving at a leader starts round `read_round + 1`; every
//! AppendEntries carries the leader's `read_round` and every reply echoes it, so a reply of the
//! leader's term with round `r` confirms every read of round `r` or less. A leader that has not
//! committed an entry of its term (step 1) cannot name a read index: it appends the read's
//! command to its log instead, as a proposal ([`ReadResult::ThroughLog`]), and the read is
//! answered when that entry is applied; committing it commits an entry of the term, so the
//! reads after it need no log write.

use super::error::CoreError;
use super::rules::Rules;
use super::server::{Config, Output, Server};
use super::types::{NodeId, Payload, PendingRead, ReadResult, Role};

impl<C: Clone + Payload> Server<C> {
    /// Leaders: take a read (§6.4 steps 1 and 2), or propose its `command` when no read index
    /// is known yet. Others: [`ReadResult::NotLeader`].
    pub(crate) fn on_read_index<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        id: u64,
        command: C,
        out: &mut Output<C>,
    ) -> Result<(), CoreError> {
        if self.role != Role::Leader {
            out.reads.push(ReadResult::NotLeader {
                id,
                leader_hint: self.leader_id,
            });
            return Ok(());
        }
        // 1. The commit_index is a safe read index only once an entry of this term is
        //    committed.
        let commit_term = self.term_at(self.commit_index);
        if !cfg
            .rules
            .read_index_known(commit_term, self.hard.current_term)
        {
            out.reads.push(ReadResult::ThroughLog { id });
            self.on_propose(cfg, command, out)?;
            return Ok(());
        }
        // 2. A new read round, confirmed by the replies to the AppendEntries sent from now on.
        let round = self
            .leader
            .read_round
            .checked_add(1)
            .ok_or(CoreError::Overflow {
                what: "a read round",
            })?;
        self.leader.read_round = round;
        self.pending_reads.push(PendingRead {
            id,
            index: self.commit_index,
            round,
        });
        // The round is confirmed by the replies to the next AppendEntries, whichever sends it
        // (a heartbeat, a resend, new entries): reads arriving together share one round trip.
        // The node sends a heartbeat at the end of a batch that took reads.
        Ok(())
    }

    /// Leaders, on a reply of their term from `peer` that echoes read round `round` (a round
    /// this leader never started is a violated invariant: no correct follower invents one).
    pub(crate) fn note_read_ack(&mut self, peer: NodeId, round: u64) -> Result<(), CoreError> {
        if round > self.leader.read_round {
            return Err(CoreError::ReadAckBeyondRound {
                follower: peer,
                round,
                read_round: self.leader.read_round,
            });
        }
        if let Some(g) = self.leader.progress.get_mut(&peer) {
            g.read_ack = g.read_ack.max(round);
        }
        Ok(())
    }

    /// After every step: a leader answers the pending reads that a majority confirmed (§6.4
    /// step 2; step 3 holds, every committed entry being applied in the step that commits
    /// it), in arrival order; a server that is no longer leader answers every pending read
    /// [`ReadResult::NotLeader`].
    pub(crate) fn release_reads<R: Rules>(&mut self, cfg: &Config<R>, out: &mut Output<C>) {
        if self.role != Role::Leader {
            for read in std::mem::take(&mut self.pending_reads) {
                out.reads.push(ReadResult::NotLeader {
                    id: read.id,
                    leader_hint: self.leader_id,
                });
            }
            return;
        }
        // Rounds only grow along the queue: once the first read must wait, so must every
        // later one.
        while let Some(&read) = self.pending_reads.first() {
            let confirmed = self
                .leader
                .read_acks()
                .filter(|&(_, acked)| acked >= read.round)
                .map(|(p, _)| p);
            let acks = self.counted(cfg, confirmed);
            if !cfg.rules.read_confirmed(acks, self.quorum(cfg)) {
                break;
            }
            self.pending_reads.remove(0);
            out.reads.push(ReadResult::Ready {
                id: read.id,
                index: read.index,
            });
        }
    }
}
