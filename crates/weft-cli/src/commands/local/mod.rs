//! The local deployment mode's machinery, shared by `weft run`, `weft up` and `weft demo`:
//! supervised child processes with prefixed output ([`process`]), a small HTTP/1.1 client
//! ([`http`]), the control plane's admin API ([`admin`]), per-upstream local ports
//! ([`upstream`]), app ports ([`port`]), the mesh file ([`mesh_file`]) and a running mesh
//! ([`mesh`]).

pub mod admin;
pub mod http;
pub mod mesh;
pub mod mesh_file;
pub mod port;
pub mod process;
pub mod upstream;
