//! One module per subcommand.

pub mod admin_client;
pub mod analyze;
pub mod apply;
pub mod ca;
pub mod control;
pub mod delete;
pub mod demo;
pub mod describe;
pub mod echo;
pub mod get;
/// Not a subcommand: the local mode's machinery (child processes, admin API client, upstream
/// ports, mesh file) shared by `run`, `up` and `demo`.
pub mod local;
pub mod proxy;
pub mod proxy_status;
pub mod run;
pub mod token;
pub mod up;
pub mod validate;

/// Exit code for a usage error or an input that cannot be read at all.
pub const EXIT_USAGE: u8 = 2;

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = ctrl_c => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
