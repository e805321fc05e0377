//! Config sources and the store that merges them: the watched `--config-dir` (read-only through
//! the API, it wins on a key both define) and resources applied through the admin API
//! (validated all-or-nothing, persisted under `applied/`).

mod apply;
mod key;
pub mod persist;
mod store;

#[cfg(test)]
mod tests;
pub mod watch;

pub use apply::{Action, Applied, ApplyError, ApplyFile, ApplyPlan};
pub use key::{ResourceKey, Source, StoredResource, resource_json};
pub use store::{ConfigStore, DeleteError};
