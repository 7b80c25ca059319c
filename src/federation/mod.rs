//! Federation: what travels between a repository and the aggregation server, and the client
//! side of it. `protocol` is shared with `server`; `client` speaks HTTP; `validate`
//! decides whether the global model earns its place; `sync` runs the whole exchange.

pub mod client;
pub mod protocol;
pub mod sync;
pub mod validate;

pub use protocol::{GlobalModel, Update};
pub use sync::{Settings, sync};
