//! Presentation: states and actions as text, and sequence diagrams.

pub mod display;
pub mod sequence;
