//! Where outgoing calls go: straight to their host, or to an HTTP proxy (`HTTP_PROXY`) as
//! absolute-form requests, unless `NO_PROXY` exempts the host.

use std::str::FromStr;

use http::Uri;
use http::uri::Authority;

/// The HTTP proxy settings of outgoing calls, as `HTTP_PROXY` and `NO_PROXY` give them.
///
/// The caller reads the environment (the library never does) and builds this with
/// [`ProxyConfig::from_env_values`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyConfig {
    /// `host:port` of the proxy; `None` sends every call straight to its host.
    pub proxy: Option<Authority>,
    /// Hosts reached directly even when a proxy is set.
    pub no_proxy: NoProxy,
}

/// Why a proxy setting was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("invalid HTTP proxy {0:?}: expected http://HOST:PORT")]
    Invalid(String),
    #[error("invalid HTTP proxy {0:?}: only http:// proxies are supported")]
    Scheme(String),
}

impl ProxyConfig {
    /// Builds the settings from the values of `HTTP_PROXY` and `NO_PROXY` (either may be unset
    /// or empty). The proxy is `http://HOST[:PORT]` or `HOST[:PORT]`; its port defaults to 80.
    pub fn from_env_values(
        http_proxy: Option<&str>,
        no_proxy: Option<&str>,
    ) -> Result<Self, ProxyError> {
        let proxy = match http_proxy.map(str::trim).filter(|p| !p.is_empty()) {
            None => None,
            Some(raw) => Some(parse_proxy(raw)?),
        };
        Ok(Self {
            proxy,
            no_proxy: no_proxy.map(NoProxy::parse).unwrap_or_default(),
        })
    }

    /// The proxy a call to `url` goes through, or `None` to connect to its host.
    pub fn proxy_for(&self, url: &Uri) -> Option<&Authority> {
        let proxy = self.proxy.as_ref()?;
        let host = url.host()?;
        (!self.no_proxy.matches(host)).then_some(proxy)
    }
}

fn parse_proxy(raw: &str) -> Result<Authority, ProxyError> {
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let uri = Uri::from_str(&with_scheme).map_err(|_| ProxyError::Invalid(raw.to_string()))?;
    if uri.scheme_str() != Some("http") {
        return Err(ProxyError::Scheme(raw.to_string()));
    }
    uri.authority()
        .filter(|a| !a.host().is_empty())
        .cloned()
        .ok_or_else(|| ProxyError::Invalid(raw.to_string()))
}

/// The hosts `NO_PROXY` exempts: a comma-separated list of exact host names or addresses,
/// `.suffix` entries (every host ending with it), or `*` (every host). Matching ignores case,
/// surrounding spaces, a `:port` on an entry and IPv6 brackets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NoProxy {
    all: bool,
    exact: Vec<String>,
    suffixes: Vec<String>,
}

impl NoProxy {
    pub fn parse(list: &str) -> Self {
        let mut no_proxy = Self::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                no_proxy.all = true;
            } else if let Some(suffix) = entry.strip_prefix('.') {
                no_proxy.suffixes.push(format!(".{}", normalize(suffix)));
            } else {
                no_proxy.exact.push(normalize(entry));
            }
        }
        no_proxy
    }

    /// Whether a call to `host` (as in a URL, IPv6 in brackets) bypasses the proxy.
    pub fn matches(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let host = unbracket(host).to_ascii_lowercase();
        self.exact.contains(&host) || self.suffixes.iter().any(|s| host.ends_with(s))
    }
}

/// Lower case, no IPv6 brackets, no `:port`.
fn normalize(entry: &str) -> String {
    let host = if let Some(rest) = entry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if entry.matches(':').count() == 1 {
        entry.split(':').next().unwrap_or(entry)
    } else {
        entry
    };
    host.to_ascii_lowercase()
}

fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn proxy_accepts_urls_and_bare_authorities() {
        for raw in [
            "http://127.0.0.1:15001",
            "127.0.0.1:15001",
            "http://127.0.0.1:15001/",
        ] {
            let config = ProxyConfig::from_env_values(Some(raw), None).unwrap();
            assert_eq!(config.proxy.unwrap().as_str(), "127.0.0.1:15001", "{raw}");
        }
        let config = ProxyConfig::from_env_values(Some("proxy.local"), None).unwrap();
        assert_eq!(config.proxy.unwrap().port_u16(), None);
    }

    #[test]
    fn empty_proxy_means_none_and_bad_ones_are_errors() {
        assert_eq!(
            ProxyConfig::from_env_values(Some("  "), None)
                .unwrap()
                .proxy,
            None
        );
        assert_eq!(
            ProxyConfig::from_env_values(None, None).unwrap().proxy,
            None
        );
        assert!(matches!(
            ProxyConfig::from_env_values(Some("https://p:1"), None),
            Err(ProxyError::Scheme(_))
        ));
        assert!(matches!(
            ProxyConfig::from_env_values(Some("http://"), None),
            Err(ProxyError::Invalid(_))
        ));
    }

    #[test]
    fn no_proxy_matches_exact_hosts_suffixes_and_star() {
        let np = NoProxy::parse(" localhost, 127.0.0.1 ,.internal,Example.com:8080,[::1]");
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "a.internal",
            "example.com",
            "[::1]",
        ] {
            assert!(np.matches(host), "{host}");
        }
        for host in [
            "reviews",
            "internal",
            "notexample.com",
            "127.0.0.2",
            "[::2]",
        ] {
            assert!(!np.matches(host), "{host}");
        }
        assert!(NoProxy::parse("*").matches("anything"));
        assert!(!NoProxy::parse("").matches("anything"));
    }

    #[test]
    fn proxy_for_respects_no_proxy() {
        let config = ProxyConfig::from_env_values(
            Some("http://127.0.0.1:15001"),
            Some("localhost,127.0.0.1"),
        )
        .unwrap();
        let via = config.proxy_for(&uri("http://reviews:9080/r"));
        assert_eq!(via.map(Authority::as_str), Some("127.0.0.1:15001"));
        assert_eq!(config.proxy_for(&uri("http://127.0.0.1:9081/")), None);
        assert_eq!(config.proxy_for(&uri("http://localhost/")), None);
        let direct = ProxyConfig::default();
        assert_eq!(direct.proxy_for(&uri("http://reviews:9080/r")), None);
    }
}
