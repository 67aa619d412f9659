//! Key-value clients inside the simulator. Each behaves like `raft_impl::client::Client`: it
//! sends a command to the server it believes leads, follows `NotLeader` hints, retries the same
//! (client_id, seq) on another server after an error or an attempt timeout, and gives up after
//! an operation deadline. Every invocation and return is recorded in [`Sim::history`] with
//! virtual timestamps; a given-up operation stays in flight forever (Jepsen's indefinite
//! outcome) and the client continues as a new logical thread with a fresh session.

use super::network::{ClientToken, Delivery};
use super::workload::{Current, KvClient, Workload};
use super::{ms, Sim};
use raft_impl::kv::{Command, Op, OpResult};
use raft_impl::wire::ClientReply;
use std::collections::BTreeMap;

impl Sim {
    /// Adds the workload's clients; they start at once.
    pub fn add_clients(&mut self, workload: &Workload) {
        for _ in 0..workload.clients {
            let thread = self.next_thread();
            let target = self.rng.usize(0..self.servers());
            self.clients.push(KvClient {
                thread,
                client_id: thread + 1,
                seq: 0,
                target,
                current: None,
                wake: Some(self.now),
                ops_left: workload.ops_per_client,
                counter: 0,
                known: BTreeMap::new(),
                workload: workload.clone(),
                attempts: 0,
                indefinite: 0,
                acked_writes: 0,
                acked: Vec::new(),
            });
        }
    }

    fn next_thread(&mut self) -> u64 {
        self.history_threads += 1;
        self.history_threads
    }

    pub fn clients_done(&self) -> bool {
        self.clients.iter().all(KvClient::done)
    }

    fn new_op(&mut self, c: usize) -> Op {
        let keys = self.clients[c].workload.keys.max(1);
        let key = format!("k{}", self.rng.usize(0..keys));
        let client = &mut self.clients[c];
        client.counter += 1;
        let value = format!("c{}-{}", client.client_id, client.counter);
        match self.rng.u32(0..100) {
            0..40 => Op::Put { key, value },
            40..75 => Op::Get { key },
            _ => {
                let expected = client.known.get(&key).cloned().flatten();
                Op::Cas {
                    key,
                    expected,
                    new: value,
                }
            }
        }
    }

    pub(super) fn client_wake(&mut self, c: usize) {
        let now = self.now;
        let n = self.servers();
        let Some(current) = &self.clients[c].current else {
            if self.clients[c].ops_left == 0 {
                self.clients[c].wake = None;
                return;
            }
            let op = self.new_op(c);
            let client = &mut self.clients[c];
            client.seq += 1;
            let command = Command {
                client_id: client.client_id,
                seq: client.seq,
                op,
            };
            let thread = client.thread;
            client.current = Some(Current {
                command: command.clone(),
                invoked: now,
                attempt: 0,
                awaiting: false,
            });
            if let Err(e) = self.history.invoke(thread, now, &command.op) {
                self.violation.get_or_insert(e);
            }
            self.send_attempt(c);
            return;
        };
        if now >= current.invoked + self.clients[c].workload.op_timeout {
            // Indefinite: the operation stays in flight in the history forever; this client
            // continues as a new logical thread with a new session.
            let thread = self.next_thread();
            let client = &mut self.clients[c];
            client.current = None;
            client.ops_left -= 1;
            client.indefinite += 1;
            client.thread = thread;
            client.client_id = thread + 1;
            client.seq = 0;
            client.known.clear();
            client.wake = Some(now);
            return;
        }
        if current.awaiting {
            // The attempt timed out: try the next server.
            let client = &mut self.clients[c];
            client.target = (client.target + 1) % n;
        }
        self.send_attempt(c);
    }

    fn send_attempt(&mut self, c: usize) {
        let now = self.now;
        let client = &mut self.clients[c];
        let Some(current) = client.current.as_mut() else {
            return;
        };
        client.attempts += 1;
        current.attempt = client.attempts;
        current.awaiting = true;
        let token = ClientToken {
            client: c,
            attempt: current.attempt,
        };
        let command = current.command.clone();
        let to = client.target;
        client.wake = Some(now + client.workload.attempt_timeout);
        for delay in self.net.fate(&mut self.rng, false) {
            let delivery = Delivery::Request {
                to,
                token,
                command: command.clone(),
            };
            self.net.push(now + delay, delivery);
        }
    }

    pub(super) fn client_reply(&mut self, token: ClientToken, reply: ClientReply) {
        let now = self.now;
        let n = self.servers();
        let Some(client) = self.clients.get_mut(token.client) else {
            return;
        };
        let Some(current) = client.current.as_mut() else {
            return;
        };
        if current.attempt != token.attempt || !current.awaiting {
            return; // an answer to an earlier attempt, or a duplicate
        }
        current.awaiting = false;
        match reply {
            ClientReply::Ok(result) => {
                let command = current.command.clone();
                let op = command.op.clone();
                let thread = client.thread;
                client.current = None;
                client.ops_left -= 1;
                match (&op, &result) {
                    (Op::Put { key, value }, _) => {
                        client.acked_writes += 1;
                        client.acked.push((now, command));
                        client.known.insert(key.clone(), Some(value.clone()));
                    }
                    (Op::Cas { key, new, .. }, OpResult::Value(_)) => {
                        client.acked_writes += 1;
                        client.acked.push((now, command));
                        client.known.insert(key.clone(), Some(new.clone()));
                    }
                    (Op::Cas { key, .. }, OpResult::CasMismatch { current }) => {
                        client.known.insert(key.clone(), current.clone());
                    }
                    (Op::Get { key }, OpResult::Value(v)) => {
                        client.known.insert(key.clone(), v.clone());
                    }
                    _ => {}
                }
                let think = client.workload.think.as_millis() as u64;
                client.wake = Some(now + ms(self.rng.u64(0..=think)));
                self.history.ret(thread, now, result);
            }
            ClientReply::NotLeader { leader_hint } => {
                match leader_hint.and_then(|h| h.parse::<usize>().ok()) {
                    Some(h) if h != client.target && h < n => {
                        client.target = h;
                        self.send_attempt(token.client);
                    }
                    _ => {
                        client.target = (client.target + 1) % n;
                        client.wake = Some(now + ms(20));
                    }
                }
            }
            // Admin answers never come to a command; as an error if one did.
            ClientReply::Error(_)
            | ClientReply::Leader { .. }
            | ClientReply::Refused(_)
            | ClientReply::Members { .. } => {
                client.target = (client.target + 1) % n;
                client.wake = Some(now + ms(20));
            }
        }
    }
}
