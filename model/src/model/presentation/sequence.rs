//! The Explorer's sequence diagram of a path: one lifeline per actor (servers `n0…`, clients
//! `c0…`), an arrow from the step that sent a message to the step that delivered it, a mark
//! for every other step (a timeout, a crash, a restart, a loss), labelled as the trace labels
//! it (`display::format_action`).

use crate::model::adapter::actor::RaftAction;
use crate::model::judge::register::Msg;
use crate::model::presentation::display::{actor_name, format_action};
use crate::model::RaftState;
use stateright::actor::{ActorModelAction, Envelope, Id};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const COLUMN: usize = 110;
const ROW: usize = 30;
const LABELS: usize = 420;

/// Escape text for SVG.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

/// The diagram of `path` over `actors` actors (the first `servers` of them servers): each
/// element is a state and the action taken from it (`None` for the last state); `sent_by`
/// tells what a step sends (`RaftModel::sent_by`).
pub fn svg(
    actors: usize,
    servers: usize,
    path: &[(RaftState, Option<RaftAction>)],
    sent_by: impl Fn(&RaftState, &RaftAction) -> Vec<Envelope<Msg>>,
) -> String {
    let x = |actor: usize| 20 + actor * COLUMN;
    let y = |time: usize| 30 + time * ROW;
    let width = x(actors) + LABELS;
    let height = y(path.len()) + ROW;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg version='1.1' baseProfile='full' width='{width}' height='{height}' \
         viewbox='0 0 {width} {height}' xmlns='http://www.w3.org/2000/svg'>\
         <defs><marker class='svg-event-shape' id='arrow' markerWidth='12' markerHeight='10' \
         refX='12' refY='5' orient='auto'><polygon points='0 0, 12 5, 0 10' /></marker></defs>"
    );
    for a in 0..actors {
        let _ = write!(
            s,
            "<line x1='{0}' y1='{1}' x2='{0}' y2='{2}' class='svg-actor-timeline' />\
             <text x='{0}' y='{3}' class='svg-actor-label'>{4}</text>",
            x(a),
            y(0),
            y(path.len()),
            y(0) - 10,
            actor_name(servers, a)
        );
    }
    // When each message in flight was sent (the step's row), to start its arrow there.
    let mut sent_at: BTreeMap<(Id, Id, Msg), Vec<usize>> = BTreeMap::new();
    let mut labels = String::new();
    for (step, (state, action)) in path.iter().enumerate() {
        let Some(action) = action else { continue };
        let time = step + 1;
        let label = xml(&format_action(servers, action));
        match action {
            ActorModelAction::Deliver { src, dst, msg } => {
                let from = sent_at
                    .get_mut(&(*src, *dst, msg.clone()))
                    .and_then(|times| times.pop())
                    .unwrap_or(0);
                let _ = write!(
                    s,
                    "<line x1='{}' y1='{}' x2='{}' y2='{}' marker-end='url(#arrow)' \
                     class='svg-event-line' />",
                    x(usize::from(*src)),
                    y(from),
                    x(usize::from(*dst)),
                    y(time)
                );
            }
            ActorModelAction::Drop(env) => {
                let _ = sent_at
                    .get_mut(&(env.src, env.dst, env.msg.clone()))
                    .and_then(|times| times.pop());
                let _ = write!(
                    s,
                    "<circle cx='{}' cy='{}' r='6' class='svg-event-shape' />",
                    x(usize::from(env.dst)),
                    y(time)
                );
            }
            ActorModelAction::Timeout(id, _)
            | ActorModelAction::Crash(id)
            | ActorModelAction::Recover(id)
            | ActorModelAction::SelectRandom { actor: id, .. } => {
                let _ = write!(
                    s,
                    "<circle cx='{}' cy='{}' r='10' class='svg-event-shape' />",
                    x(usize::from(*id)),
                    y(time)
                );
            }
        }
        for env in sent_by(state, action) {
            sent_at
                .entry((env.src, env.dst, env.msg))
                .or_default()
                .insert(0, time);
        }
        let _ = write!(
            labels,
            "<text x='{}' y='{}' class='svg-event-label'>{time}. {label}</text>",
            x(actors),
            y(time) + 4
        );
    }
    s.push_str(&labels);
    s.push_str("</svg>\n");
    s
}
