//! The wire format: postcard-encoded messages in length-prefixed frames (`u32 LE` length, then
//! the payload), with a maximum frame size. Peers and clients use separate listeners.

use crate::kv::{Command, OpResult};
use raft_core::{Message, NodeId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// The largest payload a frame may carry.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// A Raft message between servers, with its sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerFrame {
    pub from: NodeId,
    pub msg: Message<Command>,
}

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    pub command: Command,
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
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {0} bytes exceeds the maximum of {MAX_FRAME_LEN}")]
    TooLarge(usize),
    #[error("truncated frame: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Encodes `value` as one frame.
pub fn encode_frame<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    let payload = postcard::to_allocvec(value).map_err(|e| WireError::Malformed(e.to_string()))?;
    if payload.len() > MAX_FRAME_LEN {
        return Err(WireError::TooLarge(payload.len()));
    }
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, WireError> {
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
        return Err(WireError::TooLarge(len));
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

/// Reads one frame; `Ok(None)` on a clean end of stream before a frame starts.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<Option<T>, WireError> {
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
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME_LEN {
        return Err(WireError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    decode_payload(&payload).map(Some)
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
            Err(WireError::TooLarge(_))
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
