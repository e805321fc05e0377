//! Picking a port for an app that binds it itself, a moment later: free now, outside the
//! kernel's ephemeral range (so no outgoing connection or `:0` listener takes it meanwhile),
//! and held until the app is about to start.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;

/// Where Linux hands out ephemeral ports by default.
const DEFAULT_EPHEMERAL: (u16, u16) = (32768, 60999);
/// Ports below this are left alone (well-known and commonly configured ones).
const LOWEST: u16 = 10000;
const ATTEMPTS: u64 = 64;

/// A port reserved on 127.0.0.1: bound by this process until [`PortReservation::release`].
#[derive(Debug)]
pub struct PortReservation {
    port: u16,
    listener: Option<TcpListener>,
}

impl PortReservation {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Frees the port for the app; call right before starting it.
    pub fn release(&mut self) {
        self.listener = None;
    }

    /// A port the caller chose: nothing is held.
    pub fn given(port: u16) -> Self {
        Self {
            port,
            listener: None,
        }
    }

    /// A free port below the ephemeral range, chosen at random (several supervisors may be
    /// choosing at once); any free port if none is found there.
    pub async fn reserve() -> std::io::Result<Self> {
        let (low, _) = ephemeral_range().unwrap_or(DEFAULT_EPHEMERAL);
        if low > LOWEST {
            let span = u64::from(low - LOWEST);
            let random = RandomState::new();
            for attempt in 0..ATTEMPTS {
                let offset = u16::try_from(random.hash_one(attempt) % span).unwrap_or(0);
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, LOWEST + offset));
                if let Ok(listener) = TcpListener::bind(addr).await {
                    return Ok(Self {
                        port: addr.port(),
                        listener: Some(listener),
                    });
                }
            }
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        Ok(Self {
            port: listener.local_addr()?.port(),
            listener: Some(listener),
        })
    }
}

/// The kernel's ephemeral port range (Linux).
fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
    Some((parts.next()??, parts.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reserves_a_held_port_below_the_ephemeral_range() {
        let mut reserved = PortReservation::reserve().await.unwrap();
        let port = reserved.port();
        let (low, _) = ephemeral_range().unwrap_or(DEFAULT_EPHEMERAL);
        assert!((LOWEST..low).contains(&port), "{port}");
        assert!(
            TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .await
                .is_err()
        );
        reserved.release();
        TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
        assert_eq!(PortReservation::given(7).port(), 7);
    }
}
