//! Envoy's response flags (`UH`, `UF`, `URX`, ...): a small bit set that prints as Envoy's
//! `%RESPONSE_FLAGS%` does, `-` when empty, otherwise the short names comma-joined in Envoy's order.

use std::fmt;

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use serde::{Serialize, Serializer};

/// One Envoy response flag. Variants are declared in Envoy's bit order, which is also the order
/// the flags are printed in (so retries exhausted after connect failures print `UF,URX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ResponseFlag {
    /// `LH`: the local service failed its health check.
    FailedLocalHealthCheck,
    /// `UH`: no healthy upstream host in the cluster.
    NoHealthyUpstream,
    /// `UT`: upstream request timeout.
    UpstreamRequestTimeout,
    /// `LR`: connection reset locally.
    LocalReset,
    /// `UR`: upstream reset the stream.
    UpstreamRemoteReset,
    /// `UF`: upstream connection failure.
    UpstreamConnectionFailure,
    /// `UC`: upstream connection terminated.
    UpstreamConnectionTermination,
    /// `UO`: upstream overflow (circuit breaker open, pool or pending limit reached).
    UpstreamOverflow,
    /// `NR`: no route configured for the request.
    NoRouteFound,
    /// `DI`: the request was delayed by fault injection.
    DelayInjected,
    /// `FI`: the request was aborted by fault injection.
    FaultInjected,
    /// `RL`: rate limited locally.
    RateLimited,
    /// `UAEX`: denied by the external authorization service.
    UnauthorizedExternalService,
    /// `DC`: downstream connection terminated.
    DownstreamConnectionTermination,
    /// `URX`: upstream retry limit (or TCP connect attempts) exceeded.
    UpstreamRetryLimitExceeded,
    /// `SI`: stream idle timeout.
    StreamIdleTimeout,
    /// `IH`: a strictly checked request header had an invalid value.
    InvalidEnvoyRequestHeaders,
    /// `DPE`: downstream HTTP protocol error.
    DownstreamProtocolError,
    /// `UMSDR`: upstream max stream duration reached.
    UpstreamMaxStreamDurationReached,
    /// `DT`: the request exceeded its total duration (max stream duration).
    DurationTimeout,
    /// `UPE`: upstream HTTP protocol error.
    UpstreamProtocolError,
    /// `NC`: the route's cluster (or subset) does not exist.
    NoClusterFound,
    /// `OM`: rejected by the overload manager.
    OverloadManager,
    /// `DF`: DNS resolution failed.
    DnsResolutionFailure,
    /// `DR`: downstream reset the stream.
    DownstreamRemoteReset,
}

impl ResponseFlag {
    /// Every flag, in print order.
    pub const ALL: [ResponseFlag; 25] = [
        Self::FailedLocalHealthCheck,
        Self::NoHealthyUpstream,
        Self::UpstreamRequestTimeout,
        Self::LocalReset,
        Self::UpstreamRemoteReset,
        Self::UpstreamConnectionFailure,
        Self::UpstreamConnectionTermination,
        Self::UpstreamOverflow,
        Self::NoRouteFound,
        Self::DelayInjected,
        Self::FaultInjected,
        Self::RateLimited,
        Self::UnauthorizedExternalService,
        Self::DownstreamConnectionTermination,
        Self::UpstreamRetryLimitExceeded,
        Self::StreamIdleTimeout,
        Self::InvalidEnvoyRequestHeaders,
        Self::DownstreamProtocolError,
        Self::UpstreamMaxStreamDurationReached,
        Self::DurationTimeout,
        Self::UpstreamProtocolError,
        Self::NoClusterFound,
        Self::OverloadManager,
        Self::DnsResolutionFailure,
        Self::DownstreamRemoteReset,
    ];

    /// Envoy's short name, as printed in access logs and the `response_flags` metric label.
    pub const fn short_name(self) -> &'static str {
        match self {
            Self::FailedLocalHealthCheck => "LH",
            Self::NoHealthyUpstream => "UH",
            Self::UpstreamRequestTimeout => "UT",
            Self::LocalReset => "LR",
            Self::UpstreamRemoteReset => "UR",
            Self::UpstreamConnectionFailure => "UF",
            Self::UpstreamConnectionTermination => "UC",
            Self::UpstreamOverflow => "UO",
            Self::NoRouteFound => "NR",
            Self::DelayInjected => "DI",
            Self::FaultInjected => "FI",
            Self::RateLimited => "RL",
            Self::UnauthorizedExternalService => "UAEX",
            Self::DownstreamConnectionTermination => "DC",
            Self::UpstreamRetryLimitExceeded => "URX",
            Self::StreamIdleTimeout => "SI",
            Self::InvalidEnvoyRequestHeaders => "IH",
            Self::DownstreamProtocolError => "DPE",
            Self::UpstreamMaxStreamDurationReached => "UMSDR",
            Self::DurationTimeout => "DT",
            Self::UpstreamProtocolError => "UPE",
            Self::NoClusterFound => "NC",
            Self::OverloadManager => "OM",
            Self::DnsResolutionFailure => "DF",
            Self::DownstreamRemoteReset => "DR",
        }
    }

    const fn bit(self) -> u32 {
        1 << (self as u8)
    }
}

impl fmt::Display for ResponseFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// A set of [`ResponseFlag`]s. `Copy`, so it can be threaded through the data path freely.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResponseFlags(u32);

impl ResponseFlags {
    /// No flags: prints as `-`.
    pub const NONE: ResponseFlags = ResponseFlags(0);

    /// Adds a flag (idempotent).
    pub fn insert(&mut self, flag: ResponseFlag) {
        self.0 |= flag.bit();
    }

    /// This set plus `flag`.
    #[must_use]
    pub fn with(mut self, flag: ResponseFlag) -> Self {
        self.insert(flag);
        self
    }

    /// Whether `flag` is set.
    pub fn contains(self, flag: ResponseFlag) -> bool {
        self.0 & flag.bit() != 0
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set flags, in print order.
    pub fn iter(self) -> impl Iterator<Item = ResponseFlag> {
        ResponseFlag::ALL
            .into_iter()
            .filter(move |f| self.contains(*f))
    }
}

impl From<ResponseFlag> for ResponseFlags {
    fn from(flag: ResponseFlag) -> Self {
        ResponseFlags::NONE.with(flag)
    }
}

impl FromIterator<ResponseFlag> for ResponseFlags {
    fn from_iter<I: IntoIterator<Item = ResponseFlag>>(iter: I) -> Self {
        iter.into_iter()
            .fold(ResponseFlags::NONE, ResponseFlags::with)
    }
}

impl fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (i, flag) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(flag.short_name())?;
        }
        Ok(())
    }
}

impl Serialize for ResponseFlags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl EncodeLabelValue for ResponseFlags {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        use fmt::Write as _;
        write!(encoder, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_prints_dash() {
        assert_eq!(ResponseFlags::NONE.to_string(), "-");
        assert_eq!(ResponseFlags::default().to_string(), "-");
    }

    #[test]
    fn flags_print_in_envoy_order_whatever_the_insert_order() {
        let flags = ResponseFlags::from(ResponseFlag::UpstreamRetryLimitExceeded)
            .with(ResponseFlag::UpstreamConnectionFailure);
        assert_eq!(flags.to_string(), "UF,URX");
        let flags: ResponseFlags = [ResponseFlag::FaultInjected, ResponseFlag::DelayInjected]
            .into_iter()
            .collect();
        assert_eq!(flags.to_string(), "DI,FI");
        assert_eq!(
            ResponseFlags::from(ResponseFlag::NoHealthyUpstream).to_string(),
            "UH"
        );
    }

    #[test]
    fn all_flags_are_distinct_bits_and_names() {
        let all: ResponseFlags = ResponseFlag::ALL.into_iter().collect();
        assert_eq!(all.iter().count(), ResponseFlag::ALL.len());
        let mut names: Vec<_> = ResponseFlag::ALL.iter().map(|f| f.short_name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ResponseFlag::ALL.len());
    }

    #[test]
    fn serializes_as_a_string() {
        let flags = ResponseFlags::from(ResponseFlag::NoRouteFound);
        assert_eq!(serde_json::to_string(&flags).unwrap(), "\"NR\"");
        assert_eq!(
            serde_json::to_string(&ResponseFlags::NONE).unwrap(),
            "\"-\""
        );
    }
}
