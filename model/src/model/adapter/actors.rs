//! How the model numbers its actors: servers are actors `0..servers` (server `i` is `NodeId(i)`
//! in the core), clients follow (client `c` is actor `servers + c`). The one place that knows.

use raft_core::NodeId;
use stateright::actor::Id;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Actors {
    pub servers: usize,
}

impl Actors {
    pub fn new(servers: usize) -> Self {
        Actors { servers }
    }

    /// The actor of the core's server `node`.
    pub fn server(node: NodeId) -> Id {
        Id::from(node.0 as usize)
    }

    /// The core's id of a server actor.
    pub fn node(id: Id) -> NodeId {
        NodeId(usize::from(id) as u64)
    }

    pub fn is_server(self, id: Id) -> bool {
        usize::from(id) < self.servers
    }

    /// The actor of client `c`.
    pub fn client(self, c: u8) -> Id {
        Id::from(self.servers + c as usize)
    }

    /// The client index of an actor, if it is a client.
    pub fn client_of(self, id: Id) -> Option<u8> {
        usize::from(id)
            .checked_sub(self.servers)
            .and_then(|c| u8::try_from(c).ok())
    }

    /// How traces and the Explorer name an actor: `n0`, `n1`, … for servers, `c0`, … for
    /// clients.
    pub fn name(self, id: Id) -> String {
        match self.client_of(id) {
            Some(c) => format!("c{c}"),
            None => format!("{}", Self::node(id)),
        }
    }
}
