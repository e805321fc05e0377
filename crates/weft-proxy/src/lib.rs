//! weft's data plane. The module tree follows the path a request travels:
//! [`listener`] accepts and parses it, [`route`] picks the route and applies its actions,
//! [`upstream`] picks an endpoint and sends it, [`telemetry`] records it; [`control`] keeps the
//! active config (an immutable snapshot swapped atomically) and [`admin`] serves
//! `/ready`, `/config_dump` and `/metrics`.

pub mod admin;
pub mod body;
pub mod control;
pub mod listener;
pub mod policy;
pub mod route;
pub mod sidecar;
pub mod telemetry;
pub mod tls;
pub mod upstream;
