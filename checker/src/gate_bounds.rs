//! What the CI gate checks: the standard configurations, the interplay bounds, then the quick
//! ones (so the gate is at least as strong as the mutation gate that results/mutation.md
//! measures).

use crate::interplay::interplay;
use crate::standard::{quick, standard, Standard};

pub fn gate() -> Vec<Standard> {
    let mut v = standard();
    v.extend(interplay());
    v.extend(quick());
    v
}
