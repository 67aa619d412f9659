//! What the model records and judges: the properties, the client history, the ghost records, the
//! register the clients use, and the bounded liveness check.

pub mod discovery;
pub(crate) mod ghost;
pub(crate) mod history;
pub mod liveness;
pub(crate) mod properties;
pub(crate) mod received;
pub(crate) mod reference;
pub(crate) mod register;
