//! Membership changes (Ongaro's thesis ch. 4): single-server changes, with learners.
//!
//! A configuration is a set of voters and a set of learners ([`Membership`]). Changes travel
//! as ordinary log entries (commands whose [`Payload::configuration`] is set: the whole
//! configuration after the change), one server at a time (`AddLearner`, `Promote`,
//! `Remove`), so that every majority of the configuration before a change shares a voter
//! with every majority of the one after it (§4.2).
//!
//! 1. Every server uses the latest configuration in its log, committed or not (§4.1): the
//!    leader counts votes, commitments, read confirmations and its quorum check over the
//!    voters of its latest configuration, and sends the log to every member.
//! 2. A leader starts a change only after it has committed an entry of its own term (the
//!    condition announced on raft-dev in July 2015; without it, two leaders of different
//!    terms can each append a different change to the same configuration and reach disjoint
//!    majorities), and only when no earlier change is uncommitted: one change at a time.
//! 3. A learner receives the log but neither votes, campaigns nor counts; it is promoted
//!    once it has caught up with the leader's commit index (§4.2.1).
//! 4. A leader that removed itself keeps leading, without counting itself, until the change
//!    is committed, then steps down (§4.2.2). A server that its latest configuration removed
//!    still starts elections while that configuration is not known committed, since it may
//!    still be needed to commit it (§4.2.2: otherwise the remaining voters can wait forever
//!    for its vote), but never counts its own vote; a learner, or a server whose removal it
//!    knows committed, never starts one.
//! 5. A configuration also carries its members' addresses ([`crate::Address`]: data that no
//!    rule reads). A server added as a learner may bring its address in the same entry; a
//!    member's new address is a change of its own (`Readdress`), under rule 2 like the
//!    others, so every server learns addresses where it learns members: from its log and
//!    its snapshot.
//!
//! The configuration is derived from the log: nothing about it is persisted besides the
//! entries themselves.

use super::error::CoreError;
use super::progress::Progress;
use super::rules::Rules;
use super::server::{Config, Server};
use super::types::{ConfigChange, ConfigRefusal, Index, Membership, NodeId, Payload, Role};

impl<C> Server<C> {
    /// The configuration this server uses: its log's latest, or the initial one.
    pub fn membership<'a, R>(&'a self, cfg: &'a Config<R>) -> &'a Membership {
        self.log_membership
            .as_ref()
            .map_or(&cfg.initial, |(_, m)| m)
    }

    /// The index of the latest configuration entry in the log (0: none).
    pub fn config_index(&self) -> Index {
        self.log_membership.as_ref().map_or(0, |(i, _)| *i)
    }

    /// Whether this server is a voter of its configuration (only voters campaign).
    pub fn is_voter<R>(&self, cfg: &Config<R>) -> bool {
        self.membership(cfg).voters.contains(&cfg.id)
    }

    /// Number of voters needed for a majority of this server's configuration (§5.2).
    pub(crate) fn quorum<R: Rules>(&self, cfg: &Config<R>) -> usize {
        cfg.rules.quorum(self.membership(cfg).voters.len())
    }

    /// The other servers a leader replicates to (every voter and learner but itself).
    pub(crate) fn replication_peers<R>(&self, cfg: &Config<R>) -> Vec<NodeId> {
        let me = cfg.id;
        self.membership(cfg)
            .members()
            .filter(|p| *p != me)
            .collect()
    }

    /// The other voters a candidate asks for votes.
    pub(crate) fn voting_peers<R>(&self, cfg: &Config<R>) -> Vec<NodeId> {
        let me = cfg.id;
        let voters = &self.membership(cfg).voters;
        voters.iter().copied().filter(|p| *p != me).collect()
    }

    /// How many of `servers` (others than this one), and this server itself, count toward a
    /// majority of its configuration: its voters ([`Rules::counts_toward_quorum`],
    /// [`Rules::counts_itself`]).
    pub(crate) fn counted<R: Rules>(
        &self,
        cfg: &Config<R>,
        servers: impl IntoIterator<Item = NodeId>,
    ) -> usize {
        counted_in(cfg, self.membership(cfg), servers)
    }
}

/// How many of `servers` (others than `cfg.id`), and `cfg.id` itself, count toward a
/// majority of `m`.
pub(crate) fn counted_in<R: Rules>(
    cfg: &Config<R>,
    m: &Membership,
    servers: impl IntoIterator<Item = NodeId>,
) -> usize {
    {
        let others = servers
            .into_iter()
            .filter(|p| {
                *p != cfg.id
                    && cfg
                        .rules
                        .counts_toward_quorum(m.voters.contains(p), m.learners.contains(p))
            })
            .count();
        others + usize::from(cfg.rules.counts_itself(m.voters.contains(&cfg.id)))
    }
}

impl<C: Clone + Payload> Server<C> {
    /// Whether this server starts elections (step 4 above): a voter of its configuration,
    /// or a voter of the previous one while its removal is not known committed.
    pub fn may_campaign<R>(&self, cfg: &Config<R>) -> bool {
        if self.is_voter(cfg) {
            return true;
        }
        let latest = self.config_index();
        latest > self.commit_index && self.config_at(cfg, latest - 1).voters.contains(&cfg.id)
    }

    /// The configuration of the log's prefix up to `index`: the initial one changed by every
    /// configuration entry at or below it (the snapshot's stands for those it covers; for an
    /// index inside the snapshot, the snapshot's configuration is the latest known).
    pub fn config_at<R>(&self, cfg: &Config<R>, index: Index) -> Membership {
        self.config_entry_at(index)
            .map_or_else(|| cfg.initial.clone(), |(_, m)| m)
    }

    /// The latest configuration entry at or below `index`, with its index: in the log, or
    /// else the snapshot's; `None` if there is none (the initial configuration applies).
    pub(crate) fn config_entry_at(&self, index: Index) -> Option<(Index, Membership)> {
        let end = self
            .log_position(index)
            .map_or(0, |p| p.saturating_add(1))
            .min(self.hard.log.len());
        let in_log = self.hard.log[..end]
            .iter()
            .rposition(|e| e.command.configuration().is_some());
        match in_log {
            Some(p) => {
                let index = self.snapshot_index() + p as Index + 1;
                Some((index, self.hard.log[p].command.configuration()?))
            }
            None => self.hard.snapshot.config.clone(),
        }
    }

    /// Rebuild [`Server::log_membership`] from the snapshot and the whole log (on restart,
    /// after an installed snapshot, and after a truncation removed a configuration entry).
    pub(crate) fn rebuild_config(&mut self) {
        self.log_membership = self.config_entry_at(self.last_log_index());
    }

    /// The entry at `index`, just appended, takes effect if it is a configuration entry
    /// (§4.1); a leader starts or stops replicating to the servers it adds or removes.
    pub(crate) fn config_appended<R: Rules>(
        &mut self,
        cfg: &Config<R>,
        index: Index,
    ) -> Result<(), CoreError> {
        let Some(m) = self.entry(index).and_then(|e| e.command.configuration()) else {
            return Ok(());
        };
        self.log_membership = Some((index, m));
        if self.role == Role::Leader {
            self.track_members(cfg)?;
        }
        Ok(())
    }

    /// The log lost its entries after `index` (conflict truncation): a configuration entry
    /// among them no longer applies.
    pub(crate) fn config_truncated(&mut self, index: Index) {
        if self.config_index() > index {
            self.rebuild_config();
        }
    }

    /// Leaders: a [`Progress`] for exactly the members of the configuration (a
    /// new member starts at the end of the log, as on election; a removed one is forgotten).
    pub(crate) fn track_members<R>(&mut self, cfg: &Config<R>) -> Result<(), CoreError> {
        let peers = self.replication_peers(cfg);
        let next = super::server::next_index_after(self.last_log_index())?;
        for p in &peers {
            self.leader
                .progress
                .entry(*p)
                .or_insert_with(|| Progress::new(next, cfg.pipeline.is_some()));
        }
        let gone: Vec<NodeId> = self
            .leader
            .progress
            .keys()
            .copied()
            .filter(|p| !peers.contains(p))
            .collect();
        for p in gone {
            self.leader.progress.remove(&p);
            if self.leader.transferee == Some(p) {
                self.leader.transferee = None;
            }
        }
        Ok(())
    }

    /// Leaders: whether a configuration entry installing `next` may be appended now (steps 2
    /// and 3 above).
    pub(crate) fn may_change_config<R: Rules>(
        &self,
        cfg: &Config<R>,
        next: &Membership,
    ) -> Result<(), ConfigRefusal> {
        let commit_term = self.term_at(self.commit_index);
        if !cfg
            .rules
            .config_change_ready(commit_term, self.hard.current_term)
        {
            return Err(ConfigRefusal::NotCommittedInTerm);
        }
        if cfg
            .rules
            .config_change_pending(self.config_index(), self.commit_index)
        {
            return Err(ConfigRefusal::ChangePending);
        }
        let change = self
            .membership(cfg)
            .change_to(next)
            .ok_or(ConfigRefusal::NotASingleChange)?;
        self.configuration_after(cfg, change)?;
        match change {
            ConfigChange::Promote(id)
                if self.leader.progress.get(&id).map_or(0, |g| g.match_index)
                    < self.commit_index =>
            {
                Err(ConfigRefusal::LearnerBehind)
            }
            _ => Ok(()),
        }
    }

    /// The configuration `change` leads to from this server's, or why it makes no sense
    /// here (a driver builds the configuration entry it proposes with this).
    pub fn configuration_after<R>(
        &self,
        cfg: &Config<R>,
        change: ConfigChange,
    ) -> Result<Membership, ConfigRefusal> {
        let m = self.membership(cfg);
        match change {
            ConfigChange::AddLearner(id) if m.contains(id) => Err(ConfigRefusal::AlreadyMember),
            ConfigChange::Promote(id) if !m.learners.contains(&id) => {
                Err(ConfigRefusal::NotALearner)
            }
            ConfigChange::Remove(id) | ConfigChange::Readdress(id) if !m.contains(id) => {
                Err(ConfigRefusal::NotAMember)
            }
            ConfigChange::Remove(id) if m.voters.len() == 1 && m.voters.contains(&id) => {
                Err(ConfigRefusal::LastVoter)
            }
            _ => Ok(m.changed(change)),
        }
    }

    /// Leaders (§4.2.2): once the configuration that removed this server (or made it no
    /// voter) is committed, step down; the remaining voters elect a leader among themselves.
    pub(crate) fn step_down_if_removed<R>(&mut self, cfg: &Config<R>) {
        if self.role == Role::Leader
            && !self.is_voter(cfg)
            && self.config_index() <= self.commit_index
        {
            self.become_follower();
        }
    }
}
