//! The wire format: postcard-encoded messages in length-prefixed frames (`u32 LE` length, then
//! the payload), with a maximum frame size. Peers and clients use separate listeners; a peer
//! connection starts with the handshake of [`crate::auth`] when the cluster has a secret.
//!
//! Size limits, and why they agree with each other:
//! - a client request (the postcard encoding of [`ClientRequest`]: its variant tag, one byte,
//!   then for a key-value command the encoding of its [`Command`]; [`request_size`] measures
//!   it) is at most [`MAX_REQUEST_BYTES`] (1.5 MiB, etcd's default); the client port refuses a
//!   larger one with an `Error` reply before reading its payload;
//! - so one log entry (its term, at most 10 bytes, plus its command, shorter than the request
//!   that carried it) is at most [`MAX_ENTRY_BYTES`]; the admin requests
//!   ([`ClientRequest::TransferLeadership`], [`ClientRequest::Leader`]) are a few bytes and
//!   write no log entry;
//! - a peer frame is at most [`MAX_FRAME_LEN`] (16 MiB): one AppendEntries carrying one
//!   maximum-size entry, with every integer field at its largest, needs at most
//!   `MAX_ENTRY_BYTES + APPEND_ENTRIES_OVERHEAD_BYTES`, far below it (checked at compile time
//!   and by a test). The core batches AppendEntries by bytes (`Config::max_bytes_per_append`,
//!   set to [`MAX_APPEND_BATCH_BYTES`] by the node) and always sends at least one entry: then
//!   every frame fits.
//! - a snapshot (§7) may be larger than any frame: an InstallSnapshot travels as
//!   [`PeerWire::SnapshotChunk`]s of at most [`SNAPSHOT_CHUNK_BYTES`] of its image each
//!   (Figure 13's offset and done), reassembled by the receiver (`node::snapshot_transfer`),
//!   and a whole snapshot is at most [`MAX_SNAPSHOT_BYTES`].

use crate::kv::{Command, OpResult};
use raft_core::{Address, Index, Membership, Message, NodeId, Term};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The largest payload a peer frame may carry (and the largest any frame may carry).
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// The largest client request payload (the encoded [`ClientRequest`]), 1.5 MiB as etcd's
/// `--max-request-bytes` default.
pub const MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// The largest encoded log entry: a term (a varint of at most 10 bytes) and a command of at
/// most [`MAX_REQUEST_BYTES`].
pub const MAX_ENTRY_BYTES: usize = MAX_REQUEST_BYTES + 10;

/// A generous bound on what an AppendEntries frame holds besides its entries: the sender id,
/// the enum tags, term, prev_log_index, prev_log_term, leader_commit, read_round and the entry
/// count, each a varint of at most 10 bytes.
pub const APPEND_ENTRIES_OVERHEAD_BYTES: usize = 128;

/// The byte budget of one AppendEntries batch (etcd's `MaxSizePerMsg` in spirit): a batcher
/// adds entries while the batch stays within it, and always sends at least one entry, so the
/// frame is at most `max(MAX_APPEND_BATCH_BYTES, MAX_ENTRY_BYTES) + APPEND_ENTRIES_OVERHEAD_BYTES`.
pub const MAX_APPEND_BATCH_BYTES: usize = 4 * 1024 * 1024;

const _: () = assert!(MAX_ENTRY_BYTES + APPEND_ENTRIES_OVERHEAD_BYTES <= MAX_FRAME_LEN);
const _: () = assert!(MAX_APPEND_BATCH_BYTES + APPEND_ENTRIES_OVERHEAD_BYTES <= MAX_FRAME_LEN);
const _: () = assert!(MAX_REQUEST_BYTES <= MAX_FRAME_LEN);

/// A Raft message between servers, with its sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerFrame {
    pub from: NodeId,
    pub msg: Message<Command>,
}

/// What one frame on a peer connection holds (after the handshake).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerWire {
    /// A Raft message (an InstallSnapshot too, when it fits one frame; the node's sender
    /// always chunks them).
    Raft(PeerFrame),
    /// A piece of an InstallSnapshot from `from`.
    SnapshotChunk { from: NodeId, chunk: SnapshotChunk },
    /// From the receiver of a snapshot stream (`from`) to its sender, on the receiver's own
    /// connection to it: it holds the first `offset` bytes of the image of the snapshot at
    /// `index` the sender streams in `term`, and the sender, which started again at byte 0
    /// after a reconnect, continues there (`node/snapshot_transfer.rs`).
    SnapshotProgress {
        from: NodeId,
        term: Term,
        index: Index,
        offset: u64,
    },
}

impl From<PeerFrame> for PeerWire {
    fn from(frame: PeerFrame) -> Self {
        PeerWire::Raft(frame)
    }
}

/// Bytes of a snapshot's image per [`SnapshotChunk`]: 1 MiB, so that a peer's heartbeats and
/// votes are never queued behind more than that on its connection.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// A generous bound on what a chunk frame holds besides its data: the sender id, tags, the
/// integers (each a varint of at most 10 bytes) and the configuration, for clusters of up to
/// [`MAX_CHUNK_CONFIG_MEMBERS`] members.
pub const SNAPSHOT_CHUNK_OVERHEAD_BYTES: usize = 128 + 10 * MAX_CHUNK_CONFIG_MEMBERS;

/// The most members a snapshot's configuration may name for its chunks to fit a frame.
pub const MAX_CHUNK_CONFIG_MEMBERS: usize = 4096;

/// The largest snapshot image a node sends or accepts (4 GiB): a chunk announcing more is
/// refused, and a receiver's buffer grows with the bytes that arrive, never to the announced
/// length.
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 32;

const _: () = assert!(SNAPSHOT_CHUNK_BYTES + SNAPSHOT_CHUNK_OVERHEAD_BYTES <= MAX_FRAME_LEN);

/// One piece of an InstallSnapshot (Figure 13): bytes `offset..offset + data.len()` of the
/// snapshot's image, and in every chunk the rest of the message, which names the snapshot
/// (the receiver drops a chunk of another snapshot, or one out of order). The last chunk is
/// the one that ends at `total_len` (Figure 13's `done`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// The leader's term.
    pub term: Term,
    /// The leader's read round (as the InstallSnapshot's).
    pub read_round: u64,
    pub last_included_index: Index,
    pub last_included_term: Term,
    pub config: Option<(Index, Membership)>,
    /// The length of the whole image.
    pub total_len: u64,
    /// Where `data` starts in the image.
    pub offset: u64,
    pub data: Vec<u8>,
}

impl SnapshotChunk {
    /// Figure 13's `done`: this chunk ends the image.
    pub fn done(&self) -> bool {
        self.offset.checked_add(self.data.len() as u64) == Some(self.total_len)
    }
}

/// A client's request. The key-value command is variant 0 (its tag is one byte); the others
/// are operators' (admin) requests, answered without a log entry of their own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    /// A key-value command: answered once applied (a get: once read, thesis §6.4).
    Command(Command),
    /// Hand the leadership to node `to` (Ongaro's thesis §3.10). The leader answers
    /// [`ClientReply::Leader`] once it has stepped down and knows the new leader (`to`, unless
    /// something else happened meanwhile), [`ClientReply::Error`] if it abandoned the transfer
    /// (not done within its election timeout) and still leads; a transfer to the leader itself
    /// is answered `Leader` at once; `to` not a member: [`ClientReply::Refused`]. Any other
    /// server answers [`ClientReply::NotLeader`].
    TransferLeadership { to: u64 },
    /// Which node leads? The leader answers [`ClientReply::Leader`] with itself, as it
    /// believes (a leader cut off from its majority believes it for at most an election
    /// timeout: CheckQuorum); any other server answers [`ClientReply::NotLeader`].
    Leader,
    /// A membership change, or the membership (raft-core's membership.rs). The leader answers
    /// [`ClientReply::Members`] with the configuration once the change is committed (at once
    /// for `List`), [`ClientReply::Refused`] with the reason if it cannot be made now or at
    /// all; any other server answers [`ClientReply::NotLeader`].
    Member(MemberRequest),
    /// A key-value command as [`ClientRequest::Command`], which the node must not forward: the
    /// leader serves it, any other server answers [`ClientReply::NotLeader`]. A follower sends
    /// what it forwards so (the one-hop rule, `node/forward.rs`); a client that follows hints
    /// itself sends it too. Its tag is one byte, as `Command`'s: the same size limit holds.
    NoForward(Command),
}

/// What `raft-kv member` asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberRequest {
    /// The configuration as the leader knows it (its log's latest, committed or not).
    List,
    /// Add node `id` as a learner: it receives the log but does not vote. With its
    /// `address`, the configuration entry carries it and every member learns it from the log;
    /// without, the node must be listed in every member's cluster file.
    AddLearner { id: u64, address: Option<Address> },
    /// Member `id` is now reached at `address` (a configuration change of its own).
    Readdress { id: u64, address: Address },
    /// Make learner `id` a voter (once it has caught up with the leader's commit index).
    Promote { id: u64 },
    /// Remove voter or learner `id` (the leader itself too: it steps down once committed).
    Remove { id: u64 },
}

/// The encoding of `ClientRequest::Command(command)` without cloning the command: a mirror of
/// [`ClientRequest`]'s first variant (a test checks that the two agree).
#[derive(Serialize)]
enum CommandRequestRef<'a> {
    Command(&'a Command),
}

/// A server's answer to a [`ClientRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientReply {
    /// Committed and applied; the operation's result.
    Ok(OpResult),
    /// This server is not the leader; `leader_hint` is the client address of the leader it
    /// knows of, if any.
    NotLeader { leader_hint: Option<String> },
    /// The request may or may not have been applied; retry it (with the same seq).
    Error(String),
    /// The answer to an admin request: node `id` leads term `term`, as the answering server
    /// knows it (see [`ClientRequest::TransferLeadership`] and [`ClientRequest::Leader`]).
    Leader { id: u64, term: u64 },
    /// An admin request that cannot succeed as asked (e.g. a transfer to a node that is not a
    /// member of the cluster); retrying it is pointless.
    Refused(String),
    /// The answer to a [`ClientRequest::Member`]: the cluster's id, the configuration's
    /// voters and learners, and where each is reached (a node joining by address learns the
    /// cluster from it: `raft-node --join`).
    Members {
        cluster_id: u64,
        voters: Vec<u64>,
        learners: Vec<u64>,
        addresses: Vec<(u64, Address)>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("truncated frame: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("idle for {0:?}")]
    Idle(Duration),
    #[error("frame not complete within {0:?} of its first byte")]
    FrameTimeout(Duration),
}

/// Encodes `value` as one frame.
pub fn encode_frame<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    let payload = postcard::to_allocvec(value).map_err(|e| WireError::Malformed(e.to_string()))?;
    if payload.len() > MAX_FRAME_LEN {
        return Err(WireError::TooLarge {
            len: payload.len(),
            max: MAX_FRAME_LEN,
        });
    }
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, WireError> {
    match postcard::take_from_bytes(payload) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(WireError::Malformed(format!(
            "{} trailing bytes in frame",
            rest.len()
        ))),
        Err(e) => Err(WireError::Malformed(e.to_string())),
    }
}

/// Decodes one frame from the start of `bytes`; returns the value and the bytes consumed.
pub fn decode_frame<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), WireError> {
    if bytes.len() < 4 {
        return Err(WireError::Truncated {
            need: 4,
            have: bytes.len(),
        });
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if len > MAX_FRAME_LEN {
        return Err(WireError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    let end = 4 + len;
    if bytes.len() < end {
        return Err(WireError::Truncated {
            need: end,
            have: bytes.len(),
        });
    }
    Ok((decode_payload(&bytes[4..end])?, end))
}

/// Writes one frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, value: &T) -> Result<(), WireError> {
    w.write_all(&encode_frame(value)?)?;
    w.flush()?;
    Ok(())
}

/// The encoded size of the request carrying `command` (`ClientRequest::Command`, the payload
/// of its frame), to compare with [`MAX_REQUEST_BYTES`].
pub fn request_size(command: &Command) -> Result<usize, WireError> {
    postcard::experimental::serialized_size(&CommandRequestRef::Command(command))
        .map_err(|e| WireError::Malformed(e.to_string()))
}

/// Reads one frame of at most [`MAX_FRAME_LEN`]; `Ok(None)` on a clean end of stream before a
/// frame starts.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<Option<T>, WireError> {
    read_frame_limited(r, MAX_FRAME_LEN)
}

/// Reads the 4-byte length header; `Ok(None)` on a clean end of stream before it starts.
fn read_header(r: &mut impl Read) -> Result<Option<usize>, WireError> {
    let mut len = [0u8; 4];
    let mut filled = 0;
    while filled < 4 {
        match r.read(&mut len[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => {
                return Err(WireError::Truncated {
                    need: 4,
                    have: filled,
                })
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(u32::from_le_bytes(len) as usize))
}

/// Reads one frame whose payload is at most `max` bytes. The payload buffer grows with the
/// bytes that actually arrive: a header announcing `max` bytes costs nothing until they come.
/// A larger header is [`WireError::TooLarge`], and the payload is left unread.
pub fn read_frame_limited<T: DeserializeOwned>(
    r: &mut impl Read,
    max: usize,
) -> Result<Option<T>, WireError> {
    let Some(len) = read_header(r)? else {
        return Ok(None);
    };
    if len > max {
        return Err(WireError::TooLarge { len, max });
    }
    let mut payload = Vec::with_capacity(len.min(64 * 1024));
    r.take(len as u64).read_to_end(&mut payload)?;
    if payload.len() < len {
        return Err(WireError::Truncated {
            need: 4 + len,
            have: 4 + payload.len(),
        });
    }
    decode_payload(&payload).map(Some)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A byte stream whose reads can be bounded in time: a socket, or TLS over one.
pub trait TimedStream: Read {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl TimedStream for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

/// A reader that fails with `TimedOut` once `deadline` has passed, however slowly the bytes
/// trickle in (each read waits at most until the deadline).
struct DeadlineReader<'a, S: TimedStream> {
    inner: &'a mut BufReader<S>,
    deadline: Instant,
}

impl<S: TimedStream> Read for DeadlineReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inner.buffer().is_empty() {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.inner.get_ref().set_read_timeout(Some(left))?;
        }
        self.inner.read(buf)
    }
}

/// Reads one frame of at most `max` bytes from a socket, waiting at most `idle` (`None`: for
/// ever) for its first byte, then at most `frame_timeout` for the rest of it (so a peer that
/// sends a frame a byte at a time cannot hold the connection: a slowloris defence).
/// `Ok(None)` on a clean end of stream between frames.
pub fn read_frame_timed<T: DeserializeOwned, S: TimedStream>(
    r: &mut BufReader<S>,
    max: usize,
    idle: Option<Duration>,
    frame_timeout: Duration,
) -> Result<Option<T>, WireError> {
    if r.buffer().is_empty() {
        r.get_ref().set_read_timeout(idle)?;
        loop {
            match r.fill_buf() {
                Ok([]) => return Ok(None),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    return Err(WireError::Idle(idle.unwrap_or_default()));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut timed = DeadlineReader {
        inner: r,
        deadline: Instant::now() + frame_timeout,
    };
    match read_frame_limited(&mut timed, max) {
        Ok(None) => Err(WireError::Truncated { need: 4, have: 0 }),
        Err(WireError::Io(e)) if is_timeout(&e) => Err(WireError::FrameTimeout(frame_timeout)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Op;
    use proptest::prelude::*;
    use raft_core::Entry;

    fn sample() -> PeerFrame {
        PeerFrame {
            from: NodeId(2),
            msg: Message::AppendEntries(raft_core::AppendEntries {
                term: 3,
                prev_log_index: 1,
                prev_log_term: 1,
                entries: vec![Entry {
                    term: 3,
                    command: Command {
                        client_id: 7,
                        seq: 1,
                        op: Op::Put {
                            key: "k".into(),
                            value: "v".into(),
                        },
                    },
                }],
                leader_commit: 1,
                read_round: 0,
            }),
        }
    }

    #[test]
    fn frames_round_trip_through_a_stream() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &sample()).unwrap();
        write_frame(&mut buf, &ClientReply::NotLeader { leader_hint: None }).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame::<PeerFrame>(&mut r).unwrap(), Some(sample()));
        assert_eq!(
            read_frame::<ClientReply>(&mut r).unwrap(),
            Some(ClientReply::NotLeader { leader_hint: None })
        );
        assert_eq!(read_frame::<ClientReply>(&mut r).unwrap(), None);
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let mut big = ((MAX_FRAME_LEN + 1) as u32).to_le_bytes().to_vec();
        big.extend_from_slice(&[0; 16]);
        assert!(matches!(
            read_frame::<PeerFrame>(&mut &big[..]),
            Err(WireError::TooLarge { .. })
        ));
        let frame = encode_frame(&sample()).unwrap();
        for cut in 1..frame.len() {
            assert!(
                read_frame::<PeerFrame>(&mut &frame[..cut]).is_err(),
                "cut {cut}"
            );
            assert!(
                decode_frame::<PeerFrame>(&frame[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }

    /// A command whose request encoding is exactly `size` bytes.
    fn command_of_size(size: usize) -> Command {
        let mut command = Command {
            client_id: u64::MAX,
            seq: u64::MAX,
            op: Op::Put {
                key: "k".into(),
                value: String::new(),
            },
        };
        let mut n = size - request_size(&command).unwrap();
        loop {
            command.op = Op::Put {
                key: "k".into(),
                value: "v".repeat(n),
            };
            let len = request_size(&command).unwrap();
            if len <= size {
                assert_eq!(len, size);
                return command;
            }
            n -= len - size;
        }
    }

    #[test]
    fn one_maximum_size_entry_always_fits_in_one_append_entries_frame() {
        let command = command_of_size(MAX_REQUEST_BYTES);
        let frame = PeerFrame {
            from: NodeId(u64::MAX),
            msg: Message::AppendEntries(raft_core::AppendEntries {
                term: u64::MAX,
                prev_log_index: u64::MAX,
                prev_log_term: u64::MAX,
                entries: vec![Entry {
                    term: u64::MAX,
                    command,
                }],
                leader_commit: u64::MAX,
                read_round: 0,
            }),
        };
        let encoded = encode_frame(&frame).unwrap();
        assert!(encoded.len() - 4 <= MAX_ENTRY_BYTES + APPEND_ENTRIES_OVERHEAD_BYTES);
        assert!(encoded.len() - 4 <= MAX_FRAME_LEN);
        assert_eq!(
            read_frame::<PeerFrame>(&mut &encoded[..]).unwrap(),
            Some(frame)
        );
    }

    #[test]
    fn request_size_is_the_encoded_size_of_the_request() {
        for size in [40, 300, MAX_REQUEST_BYTES] {
            let command = command_of_size(size);
            let request = ClientRequest::Command(command.clone());
            let encoded = postcard::to_allocvec(&request).unwrap();
            assert_eq!(encoded.len(), size);
            // The tag, then exactly the command: an entry is shorter than its request.
            assert_eq!(encoded[0], 0);
            assert_eq!(encoded[1..], postcard::to_allocvec(&command).unwrap()[..]);
        }
    }

    #[test]
    fn admin_requests_and_replies_round_trip_and_are_small() {
        let requests = [
            ClientRequest::TransferLeadership { to: u64::MAX },
            ClientRequest::Leader,
        ];
        for request in requests {
            let frame = encode_frame(&request).unwrap();
            assert!(frame.len() - 4 <= 16, "{request:?}: {} bytes", frame.len());
            assert_eq!(
                read_frame_limited::<ClientRequest>(&mut &frame[..], MAX_REQUEST_BYTES).unwrap(),
                Some(request)
            );
        }
        let replies = [
            ClientReply::Leader {
                id: 2,
                term: u64::MAX,
            },
            ClientReply::Refused("node 9 is not a member".into()),
        ];
        for reply in replies {
            let frame = encode_frame(&reply).unwrap();
            assert_eq!(
                read_frame::<ClientReply>(&mut &frame[..]).unwrap(),
                Some(reply)
            );
        }
    }

    #[test]
    fn a_request_limit_refuses_the_header_before_its_payload() {
        let at = encode_frame(&ClientRequest::Command(command_of_size(MAX_REQUEST_BYTES))).unwrap();
        assert!(
            read_frame_limited::<ClientRequest>(&mut &at[..], MAX_REQUEST_BYTES)
                .unwrap()
                .is_some()
        );
        let over = encode_frame(&ClientRequest::Command(command_of_size(
            MAX_REQUEST_BYTES + 1,
        )))
        .unwrap();
        // Only the header is there: the limit is enforced before any payload is read.
        assert!(matches!(
            read_frame_limited::<ClientRequest>(&mut &over[..4], MAX_REQUEST_BYTES),
            Err(WireError::TooLarge { len, max: MAX_REQUEST_BYTES }) if len == MAX_REQUEST_BYTES + 1
        ));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_frame::<PeerFrame>(&bytes);
            let _ = decode_frame::<ClientRequest>(&bytes);
            let _ = decode_frame::<ClientReply>(&bytes);
            let _ = read_frame::<PeerFrame>(&mut &bytes[..]);
        }

        #[test]
        fn a_flipped_byte_never_panics(at in 0usize..64, bit in 0u8..8) {
            let mut frame = encode_frame(&sample()).unwrap();
            let at = at % frame.len();
            frame[at] ^= 1 << bit;
            let _ = decode_frame::<PeerFrame>(&frame);
        }
    }
}
