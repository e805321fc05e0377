//! Request path normalization: turns the request target into the one canonical path that
//! authorization, routing and the upstream all see (Istio's `pathNormalization` modes).
//!
//! # Modes
//!
//! weft's default is [`PathNormalization::MergeSlashes`], a deliberate deviation from Istio's
//! `BASE` default that follows Istio's own advice after CVE-2021-31920 (`//admin` must not slip
//! past a `DENY /admin`). The four modes mirror Envoy's `path_with_escaped_slashes_action`,
//! `normalize_path` and `merge_slashes` settings as Istio combines them:
//!
//! | mode | escaped slashes | `normalize_path` | `merge_slashes` |
//! |---|---|---|---|
//! | `NONE` | kept | off | off |
//! | `BASE` | kept | on | off |
//! | `MERGE_SLASHES` | kept | on | on |
//! | `DECODE_AND_MERGE_SLASHES` | unescaped | on | on |
//!
//! # Order of operations
//!
//! The order is Envoy's `ConnectionManagerUtility::maybeNormalizePath`, and it matters: `%2F` is
//! decoded *before* dot segments are resolved, so `/a%2F..%2Fadmin` becomes `/admin` in
//! `DECODE_AND_MERGE_SLASHES` but stays one opaque segment (`/a%2F..%2Fadmin`) in the other modes.
//!
//! 0. Every mode: reject raw control characters (NUL included) anywhere; drop the `#fragment`;
//!    split off the `?query`, which is kept byte for byte and never decoded; require origin form
//!    (the path starts with `/`, or is exactly `*`); reject `%00` in the path.
//! 1. `DECODE_AND_MERGE_SLASHES` only: decode `%2F`/`%2f` to `/` and `%5C`/`%5c` to `\`.
//! 2. `BASE` and up (RFC 3986 §6.2.2): decode escapes of unreserved characters
//!    (`ALPHA / DIGIT / - . _ ~`) once, left to right; upper-case the hex of every other valid
//!    escape; keep a `%` that does not start a valid escape (`%zz`, a trailing `%4`) as-is, like
//!    Envoy. Double encodings (`%252e`) and overlong UTF-8 (`%c0%ae`) are therefore *not* decoded.
//! 3. Convert `\` to `/`.
//! 4. Reject a segment whose part before `;` is `.` or `..` (`/user/..;x/admin`): Tomcat-like
//!    upstreams strip the parameters and would resolve it as a dot segment.
//! 5. Remove dot segments (RFC 3986 §5.2.4), never climbing above the root (`/../a` → `/a`).
//!    Empty segments count as segments, as in Envoy: `/app//../admin` → `/app/admin`.
//! 6. `MERGE_SLASHES` and up: collapse runs of `/` into one. Trailing slashes are kept.
//!
//! # Deviations from Envoy, on purpose
//!
//! - Retained escapes are upper-cased (`%2f` → `%2F`); Envoy keeps their case. Both are
//!   equivalent to any RFC 3986 upstream, and this gives authorization one spelling to match.
//! - A `%` that is not a valid escape but is directly followed by two hex digits *after* step 2
//!   (`%%32%65` would become `%2e`, a new escape that a decoding upstream turns into `.`) is
//!   rejected with [`PathError::InvalidPercentEncoding`]; Envoy forwards the forged escape.
//!   Plain invalid escapes such as `%zz` are kept.
//! - Step 4 has no Envoy equivalent; it is weft's contract (issue 4).
//! - Non-ASCII characters are not percent-encoded here: the listener's HTTP parser has already
//!   rejected request targets with bytes that are not allowed in them.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// How much of the request path is normalized before authorization, routing and forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathNormalization {
    /// Forward the path as received, minus the fragment.
    None,
    /// RFC 3986 normalization, backslash to slash, unreserved escapes decoded.
    Base,
    /// `Base` plus merging of repeated slashes: weft's default.
    #[default]
    MergeSlashes,
    /// `MergeSlashes` plus decoding of `%2F` and `%5C` first.
    DecodeAndMergeSlashes,
}

impl PathNormalization {
    /// Every mode, weakest first.
    pub const ALL: [PathNormalization; 4] = [
        PathNormalization::None,
        PathNormalization::Base,
        PathNormalization::MergeSlashes,
        PathNormalization::DecodeAndMergeSlashes,
    ];

    /// Istio's name for the mode, as used in config and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            PathNormalization::None => "NONE",
            PathNormalization::Base => "BASE",
            PathNormalization::MergeSlashes => "MERGE_SLASHES",
            PathNormalization::DecodeAndMergeSlashes => "DECODE_AND_MERGE_SLASHES",
        }
    }

    fn decodes_slashes(self) -> bool {
        self == PathNormalization::DecodeAndMergeSlashes
    }

    fn merges_slashes(self) -> bool {
        matches!(
            self,
            PathNormalization::MergeSlashes | PathNormalization::DecodeAndMergeSlashes
        )
    }
}

impl fmt::Display for PathNormalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A path normalization name that is not one of Istio's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown path normalization {value:?}: expected NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES"
)]
pub struct ParsePathNormalizationError {
    /// The rejected input.
    pub value: String,
}

impl FromStr for PathNormalization {
    type Err = ParsePathNormalizationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PathNormalization::ALL
            .into_iter()
            .find(|mode| mode.as_str() == s)
            .ok_or_else(|| ParsePathNormalizationError {
                value: s.to_owned(),
            })
    }
}

/// A request target after normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The normalized path: what authorization and routing match, and what the upstream gets.
    pub path: String,
    /// The query without its `?`, exactly as received. `Some("")` for a bare trailing `?`.
    pub query: Option<String>,
}

impl Normalized {
    /// The `path?query` to forward upstream (`:path` / request-target).
    pub fn path_and_query(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Normalized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(query) = &self.query {
            write!(f, "?{query}")?;
        }
        Ok(())
    }
}

/// Why a request path was refused. The listener answers **400 Bad Request** for every variant
/// (see [`PathError::status`]) and never forwards the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The target is not in origin form: it does not start with `/` and is not `*`
    /// (a relative path, an absolute URI that was not converted, or an empty path).
    #[error("request target is not in origin form")]
    NotOriginForm,
    /// A raw NUL byte anywhere, or `%00` in the path.
    #[error("request path contains a NUL byte")]
    NulByte,
    /// A raw ASCII control character (other than NUL) anywhere in the target.
    #[error("request target contains a control character")]
    ControlCharacter,
    /// A `%` that is not a valid escape would form a new escape with decoded characters
    /// (`%%32%65` → `%2e`).
    #[error("request path has an ambiguous percent-encoding")]
    InvalidPercentEncoding,
    /// A `.` or `..` segment carries `;` parameters (`/user/..;x/admin`).
    #[error("request path has a dot segment with parameters")]
    DotSegmentWithParams,
}

impl PathError {
    /// The status the listener answers with: always 400.
    pub fn status(self) -> http::StatusCode {
        http::StatusCode::BAD_REQUEST
    }
}

/// Normalizes an origin-form request target (`path[?query][#fragment]`) for `mode`.
/// See the module documentation for the order of operations.
pub fn normalize(path_and_query: &str, mode: PathNormalization) -> Result<Normalized, PathError> {
    if path_and_query.bytes().any(|b| b == 0) {
        return Err(PathError::NulByte);
    }
    if path_and_query.bytes().any(|b| b.is_ascii_control()) {
        return Err(PathError::ControlCharacter);
    }
    let target = path_and_query
        .split_once('#')
        .map_or(path_and_query, |(target, _fragment)| target);
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };
    if path == "*" {
        return Ok(Normalized {
            path: path.to_owned(),
            query,
        });
    }
    if !path.starts_with('/') {
        return Err(PathError::NotOriginForm);
    }
    if path.contains("%00") {
        return Err(PathError::NulByte);
    }
    let path = match mode {
        PathNormalization::None => path.to_owned(),
        _ => normalize_path(path, mode)?,
    };
    Ok(Normalized { path, query })
}

/// Steps 1–6 on a path that starts with `/`.
fn normalize_path(path: &str, mode: PathNormalization) -> Result<String, PathError> {
    let path = if mode.decodes_slashes() {
        decode_slashes(path)
    } else {
        Cow::Borrowed(path)
    };
    let path = decode_unreserved(&path)?.replace('\\', "/");
    let path = remove_dot_segments(&path)?;
    Ok(if mode.merges_slashes() {
        merge_slashes(&path)
    } else {
        path
    })
}

/// Step 1: `%2F`/`%2f` → `/`, `%5C`/`%5c` → `\` (Envoy's `PathUtil::unescapeSlashes`).
fn decode_slashes(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let decoded = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(b'2'), Some(b'f' | b'F')) => Some('/'),
            (b'%', Some(b'5'), Some(b'c' | b'C')) => Some('\\'),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push_str(&path[start..i]);
                out.push(c);
                i += 3;
                start = i;
            }
            None => i += 1,
        }
    }
    out.push_str(&path[start..]);
    Cow::Owned(out)
}

/// Step 2: decodes unreserved escapes once, upper-cases the others, keeps invalid `%` as-is and
/// refuses escapes forged by the decoding itself.
fn decode_unreserved(path: &str) -> Result<String, PathError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    // Output offsets of `%` kept because they do not start a valid escape.
    let mut stray = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] != b'%' {
            i += 1;
            continue;
        }
        out.push_str(&path[start..i]);
        match (hex_value(bytes.get(i + 1)), hex_value(bytes.get(i + 2))) {
            (Some(hi), Some(lo)) => {
                let byte = (hi << 4) | lo;
                if byte == 0 {
                    return Err(PathError::NulByte);
                }
                if is_unreserved(byte) {
                    out.push(char::from(byte));
                } else {
                    out.push('%');
                    out.push(char::from(HEX[usize::from(hi)]));
                    out.push(char::from(HEX[usize::from(lo)]));
                }
                i += 3;
            }
            _ => {
                stray.push(out.len());
                out.push('%');
                i += 1;
            }
        }
        start = i;
    }
    out.push_str(&path[start..]);
    let out_bytes = out.as_bytes();
    let is_hex_at = |at: usize| out_bytes.get(at).is_some_and(u8::is_ascii_hexdigit);
    if stray
        .iter()
        .any(|&at| is_hex_at(at + 1) && is_hex_at(at + 2))
    {
        return Err(PathError::InvalidPercentEncoding);
    }
    Ok(out)
}

fn hex_value(byte: Option<&u8>) -> Option<u8> {
    match byte? {
        b @ b'0'..=b'9' => Some(b - b'0'),
        b @ b'a'..=b'f' => Some(b - b'a' + 10),
        b @ b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.3: `ALPHA / DIGIT / "-" / "." / "_" / "~"`.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Steps 4 and 5: refuses dot segments with `;` parameters, then removes dot segments
/// (RFC 3986 §5.2.4) from a path that starts with `/`.
fn remove_dot_segments(path: &str) -> Result<String, PathError> {
    let mut kept: Vec<&str> = Vec::new();
    let mut segments = path.strip_prefix('/').unwrap_or(path).split('/').peekable();
    while let Some(segment) = segments.next() {
        let name = segment.split_once(';').map_or(segment, |(name, _)| name);
        if name != segment && (name == "." || name == "..") {
            return Err(PathError::DotSegmentWithParams);
        }
        match segment {
            "." => {}
            ".." => {
                kept.pop();
            }
            _ => {
                kept.push(segment);
                continue;
            }
        }
        // A final `.` or `..` leaves a trailing slash: `/a/b/..` → `/a/`.
        if segments.peek().is_none() {
            kept.push("");
        }
    }
    if kept.is_empty() {
        return Ok("/".to_owned());
    }
    let mut out = String::with_capacity(path.len());
    for segment in kept {
        out.push('/');
        out.push_str(segment);
    }
    Ok(out)
}

/// Step 6: collapses every run of `/` into one.
fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::PathError::*;
    use super::*;

    type Expected = Result<&'static str, PathError>;

    /// `(input, [NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES])`, compared with
    /// `path?query`.
    #[rustfmt::skip]
    const CASES: &[(&str, [Expected; 4])] = &[
        // Plain paths and trailing slashes.
        ("/", [Ok("/"), Ok("/"), Ok("/"), Ok("/")]),
        ("/a/b/c", [Ok("/a/b/c"), Ok("/a/b/c"), Ok("/a/b/c"), Ok("/a/b/c")]),
        ("/a/b/", [Ok("/a/b/"), Ok("/a/b/"), Ok("/a/b/"), Ok("/a/b/")]),
        ("/ADMIN", [Ok("/ADMIN"), Ok("/ADMIN"), Ok("/ADMIN"), Ok("/ADMIN")]),
        // Dot segments, never above the root.
        ("/app/../admin", [Ok("/app/../admin"), Ok("/admin"), Ok("/admin"), Ok("/admin")]),
        ("/a/./b", [Ok("/a/./b"), Ok("/a/b"), Ok("/a/b"), Ok("/a/b")]),
        ("/a/b/.", [Ok("/a/b/."), Ok("/a/b/"), Ok("/a/b/"), Ok("/a/b/")]),
        ("/a/b/..", [Ok("/a/b/.."), Ok("/a/"), Ok("/a/"), Ok("/a/")]),
        ("/..", [Ok("/.."), Ok("/"), Ok("/"), Ok("/")]),
        ("/../a", [Ok("/../a"), Ok("/a"), Ok("/a"), Ok("/a")]),
        ("/../../etc/passwd", [Ok("/../../etc/passwd"), Ok("/etc/passwd"), Ok("/etc/passwd"), Ok("/etc/passwd")]),
        ("/info/../private", [Ok("/info/../private"), Ok("/private"), Ok("/private"), Ok("/private")]),
        ("/.../admin", [Ok("/.../admin"), Ok("/.../admin"), Ok("/.../admin"), Ok("/.../admin")]),
        ("/..../admin", [Ok("/..../admin"), Ok("/..../admin"), Ok("/..../admin"), Ok("/..../admin")]),
        // Encoded dots are unreserved: decoded, then resolved.
        ("/public/%2e%2e/admin", [Ok("/public/%2e%2e/admin"), Ok("/admin"), Ok("/admin"), Ok("/admin")]),
        ("/app/%2E./admin", [Ok("/app/%2E./admin"), Ok("/admin"), Ok("/admin"), Ok("/admin")]),
        ("/a/.%2E/b", [Ok("/a/.%2E/b"), Ok("/b"), Ok("/b"), Ok("/b")]),
        ("/%2e/a", [Ok("/%2e/a"), Ok("/a"), Ok("/a"), Ok("/a")]),
        ("/a%2eb", [Ok("/a%2eb"), Ok("/a.b"), Ok("/a.b"), Ok("/a.b")]),
        ("/xyz%30..//abc", [Ok("/xyz%30..//abc"), Ok("/xyz0..//abc"), Ok("/xyz0../abc"), Ok("/xyz0../abc")]),
        ("/%7euser/%41%62", [Ok("/%7euser/%41%62"), Ok("/~user/Ab"), Ok("/~user/Ab"), Ok("/~user/Ab")]),
        // Encoded slashes and backslashes: decoded only in DECODE_AND_MERGE_SLASHES.
        ("/public/..%2Fadmin", [Ok("/public/..%2Fadmin"), Ok("/public/..%2Fadmin"), Ok("/public/..%2Fadmin"), Ok("/admin")]),
        ("/admin%2F..%2Fpublic", [Ok("/admin%2F..%2Fpublic"), Ok("/admin%2F..%2Fpublic"), Ok("/admin%2F..%2Fpublic"), Ok("/public")]),
        ("/something%2f..%2fadmin", [Ok("/something%2f..%2fadmin"), Ok("/something%2F..%2Fadmin"), Ok("/something%2F..%2Fadmin"), Ok("/admin")]),
        ("/app/%2f", [Ok("/app/%2f"), Ok("/app/%2F"), Ok("/app/%2F"), Ok("/app/")]),
        ("/app%2f/", [Ok("/app%2f/"), Ok("/app%2F/"), Ok("/app%2F/"), Ok("/app/")]),
        ("/admin%5C", [Ok("/admin%5C"), Ok("/admin%5C"), Ok("/admin%5C"), Ok("/admin/")]),
        ("/%2Fapp%5cadmin%5Cabc", [Ok("/%2Fapp%5cadmin%5Cabc"), Ok("/%2Fapp%5Cadmin%5Cabc"), Ok("/%2Fapp%5Cadmin%5Cabc"), Ok("/app/admin/abc")]),
        ("/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc", [Ok("/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc"), Ok("/%5Capp%2F%5C%2F..%2Fadmin%5C/abc"), Ok("/%5Capp%2F%5C%2F..%2Fadmin%5C/abc"), Ok("/app/admin/abc")]),
        ("/private%2f../%2e%5Cpublic", [Ok("/private%2f../%2e%5Cpublic"), Ok("/private%2F../.%5Cpublic"), Ok("/private%2F../.%5Cpublic"), Ok("/public")]),
        ("/..%5Cprivate%5Csecret.html;index.html", [Ok("/..%5Cprivate%5Csecret.html;index.html"), Ok("/..%5Cprivate%5Csecret.html;index.html"), Ok("/..%5Cprivate%5Csecret.html;index.html"), Ok("/private/secret.html;index.html")]),
        // Raw backslashes are separators from BASE on.
        ("/app\\admin", [Ok("/app\\admin"), Ok("/app/admin"), Ok("/app/admin"), Ok("/app/admin")]),
        ("/app/\\/\\/\\admin", [Ok("/app/\\/\\/\\admin"), Ok("/app//////admin"), Ok("/app/admin"), Ok("/app/admin")]),
        // Repeated slashes: merged after dot removal, as Envoy does.
        ("//admin", [Ok("//admin"), Ok("//admin"), Ok("/admin"), Ok("/admin")]),
        ("/app//", [Ok("/app//"), Ok("/app//"), Ok("/app/"), Ok("/app/")]),
        ("/app//../admin", [Ok("/app//../admin"), Ok("/app/admin"), Ok("/app/admin"), Ok("/app/admin")]),
        ("/app//../../admin", [Ok("/app//../../admin"), Ok("/admin"), Ok("/admin"), Ok("/admin")]),
        // Query untouched, fragment dropped.
        ("/a/../b?x=/../y", [Ok("/a/../b?x=/../y"), Ok("/b?x=/../y"), Ok("/b?x=/../y"), Ok("/b?x=/../y")]),
        ("/a?q=%2F%2e%00#frag", [Ok("/a?q=%2F%2e%00"), Ok("/a?q=%2F%2e%00"), Ok("/a?q=%2F%2e%00"), Ok("/a?q=%2F%2e%00")]),
        ("/a?", [Ok("/a?"), Ok("/a?"), Ok("/a?"), Ok("/a?")]),
        ("/user/profile#section1", [Ok("/user/profile"), Ok("/user/profile"), Ok("/user/profile"), Ok("/user/profile")]),
        ("/app#foo?x", [Ok("/app"), Ok("/app"), Ok("/app"), Ok("/app")]),
        ("/a/..#/../admin", [Ok("/a/.."), Ok("/"), Ok("/"), Ok("/")]),
        // NUL and control characters.
        ("/admin%00", [Err(NulByte), Err(NulByte), Err(NulByte), Err(NulByte)]),
        ("/admin\0x", [Err(NulByte), Err(NulByte), Err(NulByte), Err(NulByte)]),
        ("/a\r\nb", [Err(ControlCharacter), Err(ControlCharacter), Err(ControlCharacter), Err(ControlCharacter)]),
        // Invalid escapes are kept as-is, like Envoy; forged escapes are refused.
        ("/a%zz", [Ok("/a%zz"), Ok("/a%zz"), Ok("/a%zz"), Ok("/a%zz")]),
        ("/a%4", [Ok("/a%4"), Ok("/a%4"), Ok("/a%4"), Ok("/a%4")]),
        ("/a%", [Ok("/a%"), Ok("/a%"), Ok("/a%"), Ok("/a%")]),
        ("/%%32%65%%32%65/admin", [Ok("/%%32%65%%32%65/admin"), Err(InvalidPercentEncoding), Err(InvalidPercentEncoding), Err(InvalidPercentEncoding)]),
        ("/%4%41", [Ok("/%4%41"), Err(InvalidPercentEncoding), Err(InvalidPercentEncoding), Err(InvalidPercentEncoding)]),
        ("/%%30%30", [Ok("/%%30%30"), Err(InvalidPercentEncoding), Err(InvalidPercentEncoding), Err(InvalidPercentEncoding)]),
        // Non-unreserved escapes stay encoded with upper-case hex; decoding happens once only.
        ("/caf%c3%a9", [Ok("/caf%c3%a9"), Ok("/caf%C3%A9"), Ok("/caf%C3%A9"), Ok("/caf%C3%A9")]),
        ("/a%3b/b", [Ok("/a%3b/b"), Ok("/a%3B/b"), Ok("/a%3B/b"), Ok("/a%3B/b")]),
        ("/%252e%252e/admin", [Ok("/%252e%252e/admin"), Ok("/%252e%252e/admin"), Ok("/%252e%252e/admin"), Ok("/%252e%252e/admin")]),
        ("/%252F/admin", [Ok("/%252F/admin"), Ok("/%252F/admin"), Ok("/%252F/admin"), Ok("/%252F/admin")]),
        ("/%c0%ae%c0%ae/admin", [Ok("/%c0%ae%c0%ae/admin"), Ok("/%C0%AE%C0%AE/admin"), Ok("/%C0%AE%C0%AE/admin"), Ok("/%C0%AE%C0%AE/admin")]),
        ("/%c0%2e%c0%2e/admin", [Ok("/%c0%2e%c0%2e/admin"), Ok("/%C0.%C0./admin"), Ok("/%C0.%C0./admin"), Ok("/%C0.%C0./admin")]),
        // Dot segments with `;` parameters.
        ("/user/..;foo=bar/admin", [Ok("/user/..;foo=bar/admin"), Err(DotSegmentWithParams), Err(DotSegmentWithParams), Err(DotSegmentWithParams)]),
        ("/a/%2E%2e;x/b", [Ok("/a/%2E%2e;x/b"), Err(DotSegmentWithParams), Err(DotSegmentWithParams), Err(DotSegmentWithParams)]),
        ("/.;/admin", [Ok("/.;/admin"), Err(DotSegmentWithParams), Err(DotSegmentWithParams), Err(DotSegmentWithParams)]),
        ("/a;x/../b", [Ok("/a;x/../b"), Ok("/b"), Ok("/b"), Ok("/b")]),
        ("/..%5C..;x", [Ok("/..%5C..;x"), Ok("/..%5C..;x"), Ok("/..%5C..;x"), Err(DotSegmentWithParams)]),
        // Origin form only.
        ("*", [Ok("*"), Ok("*"), Ok("*"), Ok("*")]),
        ("admin", [Err(NotOriginForm), Err(NotOriginForm), Err(NotOriginForm), Err(NotOriginForm)]),
        ("../admin", [Err(NotOriginForm), Err(NotOriginForm), Err(NotOriginForm), Err(NotOriginForm)]),
        ("http://h/admin", [Err(NotOriginForm), Err(NotOriginForm), Err(NotOriginForm), Err(NotOriginForm)]),
        ("", [Err(NotOriginForm), Err(NotOriginForm), Err(NotOriginForm), Err(NotOriginForm)]),
        ("?x", [Err(NotOriginForm), Err(NotOriginForm), Err(NotOriginForm), Err(NotOriginForm)]),
        ("#/admin", [Err(NotOriginForm), Err(NotOriginForm), Err(NotOriginForm), Err(NotOriginForm)]),
    ];

    #[test]
    fn table() {
        let mut failures = Vec::new();
        for (input, expected) in CASES {
            for (mode, expected) in PathNormalization::ALL.into_iter().zip(expected) {
                let got = normalize(input, mode).map(|n| n.path_and_query());
                if got.as_deref().map_err(|e| *e) != *expected {
                    failures.push(format!("{input:?} {mode}: got {got:?}, want {expected:?}"));
                }
            }
        }
        assert!(CASES.len() >= 30);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn query_and_path_are_split() {
        let n = normalize("/a//b?x=%2e#f", PathNormalization::default()).unwrap();
        assert_eq!(n.path, "/a/b");
        assert_eq!(n.query.as_deref(), Some("x=%2e"));
        assert_eq!(n.to_string(), "/a/b?x=%2e");
        let n = normalize("/a", PathNormalization::default()).unwrap();
        assert_eq!(n.query, None);
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(
            PathNormalization::default(),
            PathNormalization::MergeSlashes
        );
        for mode in PathNormalization::ALL {
            assert_eq!(mode.to_string().parse(), Ok(mode));
        }
        assert_eq!(
            "DECODE_AND_MERGE_SLASHES".parse(),
            Ok(PathNormalization::DecodeAndMergeSlashes)
        );
        for bad in ["merge_slashes", "", "MERGE", "NONE "] {
            assert_eq!(
                bad.parse::<PathNormalization>(),
                Err(ParsePathNormalizationError {
                    value: bad.to_owned()
                })
            );
        }
    }

    #[test]
    fn errors_are_bad_requests() {
        for err in [
            NotOriginForm,
            NulByte,
            ControlCharacter,
            InvalidPercentEncoding,
            DotSegmentWithParams,
        ] {
            assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        }
    }

    /// Random paths from a small alphabet of risky pieces: normalized paths are canonical and
    /// normalizing again changes nothing.
    #[test]
    fn property_normalized_paths_are_canonical() {
        const PIECES: &[&str] = &[
            "/", ".", "..", "%2e", "%2E", "%2F", "%2f", "%5c", "\\", "a", "%", "2", "%61", ";",
        ];
        let mut rng = fastrand::Rng::with_seed(0x5eed_3986);
        for _ in 0..20_000 {
            let mut input = String::from("/");
            for _ in 0..rng.usize(0..12) {
                input.push_str(PIECES[rng.usize(..PIECES.len())]);
            }
            for mode in [
                PathNormalization::Base,
                PathNormalization::MergeSlashes,
                PathNormalization::DecodeAndMergeSlashes,
            ] {
                let n = match normalize(&input, mode) {
                    Ok(n) => n,
                    Err(InvalidPercentEncoding | DotSegmentWithParams) => continue,
                    Err(e) => panic!("{input:?} {mode}: unexpected {e:?}"),
                };
                let path = &n.path;
                let ctx = format!("{input:?} {mode} -> {path:?}");
                assert!(path.starts_with('/'), "{ctx}");
                assert!(!path.contains('\\'), "{ctx}");
                assert!(
                    path.split('/').all(|s| s != "." && s != ".."),
                    "dot segment: {ctx}"
                );
                assert!(!path.contains("/./") && !path.contains("/../"), "{ctx}");
                if mode.merges_slashes() {
                    assert!(!path.contains("//"), "{ctx}");
                }
                if mode.decodes_slashes() {
                    let upper = path.to_ascii_uppercase();
                    assert!(!upper.contains("%2F") && !upper.contains("%5C"), "{ctx}");
                }
                assert_eq!(
                    normalize(path, mode),
                    Ok(n.clone()),
                    "not idempotent: {ctx}"
                );
            }
        }
    }
}
