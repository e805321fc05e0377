//! Reads the server name (SNI) from the first bytes of a TLS connection, as Envoy's TLS
//! inspector does, without terminating TLS: the handshake records are reassembled until the
//! ClientHello is whole, then its `server_name` extension is read.
//!
//! Input is hostile: every length is checked against the bytes present and against fixed caps,
//! nothing indexes out of bounds, and anything unexpected is [`Peek::NotTls`].

/// TLS plaintext records carry at most 2^14 bytes.
const MAX_RECORD: usize = 1 << 14;
/// The largest ClientHello handshake message accepted (Envoy's inspector reads at most 64 KiB).
pub const MAX_CLIENT_HELLO: usize = 64 * 1024;
/// Bytes worth buffering while waiting for a whole ClientHello (records add 5 bytes each).
pub const MAX_PEEK: usize = MAX_CLIENT_HELLO + (MAX_CLIENT_HELLO / MAX_RECORD + 1) * 5 + 4;

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXTENSION_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST_NAME: u8 = 0;

/// What the first bytes of a connection say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    /// So far a plausible ClientHello: read more.
    Incomplete,
    /// Not TLS, or a ClientHello that cannot be read.
    NotTls,
    /// A whole ClientHello, with its host name (lowercase, no trailing dot) if it sent one.
    ClientHello { sni: Option<String> },
}

/// Inspects the bytes a client sent first.
pub fn peek(buf: &[u8]) -> Peek {
    match handshake_message(buf) {
        Ok(Some(hello)) => match client_hello_sni(hello) {
            Some(sni) => Peek::ClientHello { sni },
            None => Peek::NotTls,
        },
        Ok(None) => Peek::Incomplete,
        Err(NotTls) => Peek::NotTls,
    }
}

struct NotTls;

/// The ClientHello body (after its 4-byte header) once every record carrying it has arrived;
/// `Ok(None)` while more bytes are needed.
fn handshake_message(buf: &[u8]) -> Result<Option<Vec<u8>>, NotTls> {
    let mut rest = buf;
    let mut message: Vec<u8> = Vec::new();
    loop {
        // Content type 22, then protocol version major 3 (SSL 3.0 to TLS 1.3 records): checked
        // as soon as each byte is there, so other protocols are told apart early.
        if rest.first().is_some_and(|t| *t != CONTENT_HANDSHAKE)
            || rest.get(1).is_some_and(|v| *v != 3)
        {
            return Err(NotTls);
        }
        let mut r = Reader::new(rest);
        let (Some(_), Some(_), Some(len)) = (r.u8(), r.u16(), r.u16()) else {
            return Ok(None);
        };
        let len = usize::from(len);
        if len == 0 || len > MAX_RECORD {
            return Err(NotTls);
        }
        let Some(fragment) = r.take(len) else {
            return Ok(None);
        };
        message.extend_from_slice(fragment);
        rest = r.rest();
        let mut m = Reader::new(&message);
        if m.u8().is_some_and(|t| t != HANDSHAKE_CLIENT_HELLO) {
            return Err(NotTls);
        }
        let Some(body_len) = m.u24() else { continue };
        if body_len > MAX_CLIENT_HELLO {
            return Err(NotTls);
        }
        if let Some(body) = m.take(body_len) {
            return Ok(Some(body.to_vec()));
        }
    }
}

/// The SNI of a ClientHello body: `Some(None)` when it has no `server_name` extension, `None`
/// when the body is malformed.
fn client_hello_sni(body: Vec<u8>) -> Option<Option<String>> {
    let mut r = Reader::new(&body);
    r.take(2 + 32)?; // legacy_version, random
    let session_id = usize::from(r.u8()?);
    r.take(session_id)?;
    let ciphers = usize::from(r.u16()?);
    r.take(ciphers)?;
    let compression = usize::from(r.u8()?);
    r.take(compression)?;
    if r.is_empty() {
        // TLS 1.0-1.2 hellos may omit extensions entirely.
        return Some(None);
    }
    let len = usize::from(r.u16()?);
    let mut extensions = Reader::new(r.take(len)?);
    while !extensions.is_empty() {
        let kind = extensions.u16()?;
        let len = usize::from(extensions.u16()?);
        let data = extensions.take(len)?;
        if kind == EXTENSION_SERVER_NAME {
            return server_name(data).map(Some);
        }
    }
    Some(None)
}

/// The first `host_name` entry of a `server_name` extension, validated as a DNS name.
fn server_name(data: &[u8]) -> Option<String> {
    let mut r = Reader::new(data);
    let len = usize::from(r.u16()?);
    let mut list = Reader::new(r.take(len)?);
    while !list.is_empty() {
        let kind = list.u8()?;
        let len = usize::from(list.u16()?);
        let name = list.take(len)?;
        if kind == NAME_TYPE_HOST_NAME {
            return host_name(name);
        }
    }
    None
}

/// A DNS host name: 1..=253 bytes of letters, digits, `-`, `_`, `.`; lowercased, without a
/// trailing dot.
fn host_name(raw: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(raw).ok()?;
    let name = name.strip_suffix('.').unwrap_or(name);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    valid.then(|| name.to_ascii_lowercase())
}

/// A bounds-checked big-endian reader over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn rest(&self) -> &'a [u8] {
        self.buf
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let head = self.buf.get(..n)?;
        self.buf = self.buf.get(n..)?;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        let n = u32::from_be_bytes([0, *b.first()?, *b.get(1)?, *b.get(2)?]);
        usize::try_from(n).ok()
    }
}

#[cfg(test)]
#[path = "sni_tests.rs"]
mod tests;
