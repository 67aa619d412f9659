//! The health rule of `GET /health`: a node is healthy when it knows a leader (it leads, or
//! follows one it has heard from in its current term) and its store is at most a bound behind
//! what it knows to be committed. A load balancer or orchestrator can route to, or wait for,
//! such a node; a node that lost its leader (a partition, a dead majority) or whose apply
//! trails is reported unavailable, with the reason.

use super::node_metrics::HealthView;
use raft_core::Role;

/// The default bound on the apply lag (committed entries not yet applied) of a healthy node
/// (`raft-node --health-max-apply-lag`). The node applies each batch's committed entries before
/// it takes the next, so a lag is seldom seen at all; a thousand entries behind means a stall.
pub const DEFAULT_MAX_APPLY_LAG: u64 = 1000;

/// The verdict, and the one-line JSON body that says why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub healthy: bool,
    pub body: String,
}

impl Verdict {
    /// 200 when healthy, 503 (Service Unavailable) when not.
    pub fn status(&self) -> u16 {
        if self.healthy {
            200
        } else {
            503
        }
    }
}

/// Applies the rule to `view` with the bound `max_apply_lag`.
pub fn check(view: HealthView, max_apply_lag: u64) -> Verdict {
    let role = match view.role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre_candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    };
    let reason = match view.leader {
        None => Some(format!("no leader known (role {role}, term {})", view.term)),
        Some(_) if view.apply_lag > max_apply_lag => Some(format!(
            "apply lag {} exceeds the bound {max_apply_lag}",
            view.apply_lag
        )),
        Some(_) => None,
    };
    let body = match &reason {
        None => serde_json::json!({
            "status": "ok",
            "role": role,
            "term": view.term,
            "leader": view.leader,
            "apply_lag": view.apply_lag,
        }),
        Some(why) => serde_json::json!({
            "status": "unavailable",
            "reason": why,
            "role": role,
            "term": view.term,
            "apply_lag": view.apply_lag,
        }),
    };
    Verdict {
        healthy: reason.is_none(),
        body: body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(leader: Option<u64>, apply_lag: u64) -> HealthView {
        HealthView {
            role: Role::Follower,
            term: 7,
            leader,
            apply_lag,
        }
    }

    #[test]
    fn a_known_leader_and_a_small_lag_is_healthy() {
        let v = check(view(Some(2), 5), 5);
        assert_eq!(v.status(), 200);
        let body: serde_json::Value = serde_json::from_str(&v.body).unwrap();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["leader"], 2);
        assert!(!v.body.contains('\n'), "one line");
    }

    #[test]
    fn no_leader_is_unavailable_with_the_reason() {
        let v = check(
            HealthView {
                role: Role::PreCandidate,
                ..view(None, 0)
            },
            5,
        );
        assert_eq!(v.status(), 503);
        let body: serde_json::Value = serde_json::from_str(&v.body).unwrap();
        assert_eq!(
            body["reason"],
            "no leader known (role pre_candidate, term 7)"
        );
    }

    #[test]
    fn a_lag_beyond_the_bound_is_unavailable() {
        let v = check(view(Some(1), 6), 5);
        assert_eq!(v.status(), 503);
        assert!(
            v.body.contains("apply lag 6 exceeds the bound 5"),
            "{}",
            v.body
        );
    }
}
