//! What the model records and judges: the properties, the client history, the ghost records, the
//! register the clients use, and the bounded liveness check.

pub(crate) mod ghost;
pub(crate) mod history;
pub mod progress;
pub(crate) mod properties;
pub(crate) mod register;
