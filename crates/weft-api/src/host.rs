//! Host names as Istio compares them: exact names, `*.suffix` wildcards and the lone `*`.

/// Whether two host patterns can name the same host (`*.foo.com` and `a.foo.com` overlap).
pub fn hosts_overlap(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(sa), Some(sb)) => {
            if sa.len() >= sb.len() {
                sa.ends_with(sb)
            } else {
                sb.ends_with(sa)
            }
        }
        (Some(sa), None) => b.ends_with(sa),
        (None, Some(sb)) => a.ends_with(sb),
        (None, None) => a == b,
    }
}

/// Whether every host `sub` names is also named by `sup`.
pub fn host_subset_of(sub: &str, sup: &str) -> bool {
    match (sub.strip_prefix('*'), sup.strip_prefix('*')) {
        (Some(s), Some(p)) => sub.len() >= sup.len() && s.ends_with(p),
        (Some(_), None) => false,
        (None, Some(p)) => sub.ends_with(p),
        (None, None) => sub == sup,
    }
}

/// Whether a concrete host name matches a host pattern (exact, `*.suffix`, or `*`).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    host_subset_of(host, pattern)
}

/// Expands a short name (`reviews`) relative to a namespace, as Istio does for hosts in
/// VirtualService and DestinationRule: `reviews.<ns>.svc.cluster.local`. Names with a dot,
/// wildcards and IPs are returned unchanged.
pub fn qualify(host: &str, namespace: &str, domain: &str) -> String {
    if host.contains('.') || host.contains('*') || host.contains(':') || host.is_empty() {
        host.to_string()
    } else {
        format!("{host}.{namespace}.svc.{domain}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap() {
        assert!(hosts_overlap("*.foo.com", "a.foo.com"));
        assert!(hosts_overlap("*", "anything"));
        assert!(hosts_overlap("*.com", "*.foo.com"));
        assert!(!hosts_overlap("*.foo.com", "foo.com"));
        assert!(!hosts_overlap("a", "b"));
    }

    #[test]
    fn subset() {
        assert!(host_subset_of("a.foo.com", "*.foo.com"));
        assert!(host_subset_of("*.a.foo.com", "*.foo.com"));
        assert!(!host_subset_of("*.foo.com", "a.foo.com"));
        assert!(host_matches("*", "x.y"));
    }

    #[test]
    fn qualify_short_names() {
        assert_eq!(
            qualify("reviews", "prod", "cluster.local"),
            "reviews.prod.svc.cluster.local"
        );
        assert_eq!(
            qualify("api.example.com", "prod", "cluster.local"),
            "api.example.com"
        );
        assert_eq!(
            qualify("*.example.com", "prod", "cluster.local"),
            "*.example.com"
        );
    }
}
