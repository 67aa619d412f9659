//! Which peers the node talks to, and where (membership.rs rule 5, in the driver). The
//! address book is the cluster file's nodes overlaid with the addresses the configuration
//! carries (`Replica::address_book`). The event loop keeps a sender for every node of the
//! book at its current address: a node that a configuration entry adds with its address gets
//! one as soon as the entry is in the log (or in an installed snapshot), and a member whose
//! address changes is dialed anew there (its old sender ends when its queue is dropped). The
//! peer listener accepts frames from every node the book ever named ([`KnownPeers`]): a
//! removed member may still send until it learns of its removal.

use super::input::Input;
use super::peers::{spawn_sender, PeerLink};
use crate::auth::ClusterSecret;
use crate::tls::NodeTls;
use raft_core::{Address, Membership, NodeId};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{mpsc, Arc, RwLock};

/// The ids the peer port accepts frames from, shared by the event loop (which adds the nodes
/// it learns of) and the peer listener.
#[derive(Clone, Debug, Default)]
pub(crate) struct KnownPeers(Arc<RwLock<BTreeSet<NodeId>>>);

impl KnownPeers {
    pub(crate) fn new(ids: impl IntoIterator<Item = NodeId>) -> Self {
        KnownPeers(Arc::new(RwLock::new(ids.into_iter().collect())))
    }

    pub(crate) fn contains(&self, id: NodeId) -> bool {
        self.read().contains(&id)
    }

    pub(crate) fn list(&self) -> Vec<NodeId> {
        self.read().iter().copied().collect()
    }

    fn insert(&self, id: NodeId) {
        let mut ids = self.0.write().unwrap_or_else(|p| p.into_inner());
        ids.insert(id);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeSet<NodeId>> {
        // Every update is one insert: the set is consistent after a panic elsewhere.
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// The event loop's senders, one per node of the address book.
pub(crate) struct PeerBook {
    me: NodeId,
    secret: Option<Arc<ClusterSecret>>,
    tls: Option<Arc<NodeTls>>,
    events: mpsc::Sender<Input>,
    links: BTreeMap<NodeId, (SocketAddr, PeerLink)>,
    known: KnownPeers,
    /// The configuration the senders were last matched with.
    following: Option<Membership>,
}

impl PeerBook {
    pub(crate) fn new(
        me: NodeId,
        secret: Option<Arc<ClusterSecret>>,
        tls: Option<Arc<NodeTls>>,
        events: mpsc::Sender<Input>,
        known: KnownPeers,
    ) -> Self {
        PeerBook {
            me,
            secret,
            tls,
            events,
            links: BTreeMap::new(),
            known,
            following: None,
        }
    }

    /// The sender for `to`, if the book has an address for it.
    pub(crate) fn link(&self, to: NodeId) -> Option<&PeerLink> {
        self.links.get(&to).map(|(_, link)| link)
    }

    /// Every sender, by peer.
    pub(crate) fn links(&self) -> impl Iterator<Item = (&NodeId, &PeerLink)> {
        self.links.iter().map(|(id, (_, link))| (id, link))
    }

    /// Where `to` is dialed now.
    #[cfg(test)]
    pub(crate) fn dialed(&self, to: NodeId) -> Option<SocketAddr> {
        self.links.get(&to).map(|(addr, _)| *addr)
    }

    /// Matches the senders with the address book, when configuration `m` is not the one they
    /// were matched with (`book` is asked for only then).
    pub(crate) fn follow(
        &mut self,
        m: &Membership,
        book: impl FnOnce() -> BTreeMap<NodeId, Address>,
    ) {
        if self.following.as_ref() == Some(m) {
            return;
        }
        self.following = Some(m.clone());
        for (id, address) in book() {
            if id == self.me {
                continue;
            }
            // The leader refuses an address that is no IP address and port
            // (`replica::check_address`); one in a log written otherwise is reported.
            let addr = match address.peer.parse::<SocketAddr>() {
                Ok(addr) => addr,
                Err(_) => {
                    tracing::error!(peer = %id, address = %address.peer, "the configuration gives a peer address that is no IP address and port; not dialed");
                    continue;
                }
            };
            if self.links.get(&id).map(|(a, _)| *a) == Some(addr) {
                continue;
            }
            match self.links.contains_key(&id) {
                true => {
                    tracing::info!(peer = %id, %addr, "peer's address changed; dialing it there")
                }
                false => tracing::debug!(peer = %id, %addr, "peer added to the address book"),
            }
            let link = spawn_sender(
                self.me,
                id,
                addr,
                self.secret.clone(),
                self.tls.clone(),
                self.events.clone(),
            );
            self.links.insert(id, (addr, link));
            self.known.insert(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(peer: &str) -> Address {
        Address {
            peer: peer.to_string(),
            client: "127.0.0.1:1".to_string(),
        }
    }

    #[test]
    fn senders_follow_the_configurations_addresses() {
        let (events, _inputs) = mpsc::channel();
        let known = KnownPeers::new([NodeId(1)]);
        let mut book = PeerBook::new(NodeId(0), None, None, events, known.clone());
        let first: BTreeMap<_, _> = [
            (NodeId(0), addr("127.0.0.1:9")),
            (NodeId(1), addr("127.0.0.1:10")),
        ]
        .into();
        let m = Membership::voters([NodeId(0), NodeId(1)]);
        book.follow(&m, || first.clone());
        assert!(book.link(NodeId(0)).is_none(), "no sender to itself");
        assert_eq!(
            book.dialed(NodeId(1)),
            Some("127.0.0.1:10".parse().unwrap())
        );
        // The same configuration: the book is not even asked.
        book.follow(&m, || panic!("asked again for an unchanged configuration"));
        // A member added with its address, and one moved.
        let mut second = first.clone();
        second.insert(NodeId(1), addr("127.0.0.1:11"));
        second.insert(NodeId(2), addr("127.0.0.1:12"));
        let m2 = m
            .changed(raft_core::ConfigChange::AddLearner(NodeId(2)))
            .with_address(NodeId(2), addr("127.0.0.1:12"));
        book.follow(&m2, || second.clone());
        assert_eq!(
            book.dialed(NodeId(1)),
            Some("127.0.0.1:11".parse().unwrap())
        );
        assert_eq!(
            book.dialed(NodeId(2)),
            Some("127.0.0.1:12".parse().unwrap())
        );
        assert!(
            known.contains(NodeId(2)),
            "the listener accepts the new member"
        );
        // An address that is not IP:port is not dialed (and reported).
        let mut third = second.clone();
        third.insert(NodeId(3), addr("no-port"));
        book.follow(&m2.clone().with_address(NodeId(3), addr("no-port")), || {
            third
        });
        assert!(book.link(NodeId(3)).is_none());
        assert!(!known.contains(NodeId(3)));
    }
}
