//! The model's own reference semantics of the replicated service: the register behind client
//! sessions, written apart from raft-core's `Service` (thesis §6.3: every command carries its
//! client and sequence number; a client's latest command is executed once, a retry of it gets
//! the recorded result, an older copy is not executed and its result is gone). Configuration
//! entries never reach the register. The model runs the service without a session limit, so no
//! session expires and the use counters stay 0.

use crate::model::judge::register::{ClientOp, ClientReply, Cmd, Image, Value};
use raft_core::Entry;
use std::collections::BTreeMap;

/// The register and the sessions after applying some commands in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reference {
    pub value: Option<Value>,
    /// Per client: the sequence number of its latest executed command, and that command's
    /// result.
    pub sessions: BTreeMap<u8, (u8, ClientReply)>,
}

impl Reference {
    /// The reference after applying `entries` in order.
    pub fn after<'a>(entries: impl IntoIterator<Item = &'a Entry<Cmd>>) -> Self {
        let mut r = Reference::default();
        for e in entries {
            r.apply(&e.command);
        }
        r
    }

    /// Applies one committed command.
    pub fn apply(&mut self, cmd: &Cmd) {
        if cmd.is_config() {
            return;
        }
        if self
            .sessions
            .get(&cmd.client)
            .is_some_and(|&(seq, _)| cmd.seq <= seq)
        {
            return; // a retry of the latest command, or an older copy: not executed
        }
        let result = match cmd.op {
            ClientOp::Put(v) => {
                self.value = Some(v);
                ClientReply::PutOk
            }
            ClientOp::Get => ClientReply::GetOk(self.value),
            ClientOp::Config(_) => return,
        };
        self.sessions.insert(cmd.client, (cmd.seq, result));
    }

    /// `image` holds exactly this register and these sessions (each with its latest sequence
    /// number and result; use counters 0).
    pub fn matches(&self, image: &Image) -> bool {
        let sessions: Vec<(u64, u64, ClientReply, u64)> = self
            .sessions
            .iter()
            .map(|(&c, &(seq, result))| (u64::from(c), u64::from(seq), result, 0))
            .collect();
        image.value == self.value
            && image.sessions.sessions == sessions
            && image.sessions.applied == 0
    }
}
