//! SNI parsing: a real ClientHello, built ones with and without SNI, split records, and hostile
//! input (every truncation, every single-byte corruption, random garbage, lying lengths).

use super::*;

/// `openssl s_client -servername API.Example.com` (OpenSSL 3.0), the first bytes it sent.
const OPENSSL_HELLO: &[u8] = include_bytes!("../../testdata/client_hello_openssl.bin");

fn u16_be(n: usize) -> [u8; 2] {
    u16::try_from(n).unwrap().to_be_bytes()
}

/// A ClientHello body with the given extensions block (`None`: no extensions at all).
fn hello_body(extensions: Option<Vec<u8>>) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend([7u8; 32]); // random
    body.push(0); // session id
    body.extend([0, 2, 0x13, 0x01]); // one cipher suite
    body.extend([1, 0]); // null compression
    if let Some(ext) = extensions {
        body.extend(u16_be(ext.len()));
        body.extend(ext);
    }
    body
}

fn extension(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend(u16_be(data.len()));
    out.extend(data);
    out
}

fn sni_extension(names: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (kind, name) in names {
        list.push(*kind);
        list.extend(u16_be(name.len()));
        list.extend(*name);
    }
    let mut data = u16_be(list.len()).to_vec();
    data.extend(list);
    extension(0, &data)
}

/// The handshake message for `body`, cut into records of at most `record` bytes.
fn records(body: &[u8], record: usize) -> Vec<u8> {
    let mut message = vec![1];
    message.extend(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    message.extend(body);
    let mut out = Vec::new();
    for chunk in message.chunks(record) {
        out.extend([22, 3, 1]);
        out.extend(u16_be(chunk.len()));
        out.extend(chunk);
    }
    out
}

fn hello(sni: &str) -> Vec<u8> {
    let mut ext = extension(0x000b, &[1, 0]); // ec_point_formats, before SNI
    ext.extend(sni_extension(&[(0, sni.as_bytes())]));
    records(&hello_body(Some(ext)), MAX_RECORD)
}

fn sni(name: &str) -> Peek {
    Peek::ClientHello {
        sni: Some(name.to_string()),
    }
}

#[test]
fn reads_a_real_client_hello() {
    assert_eq!(peek(OPENSSL_HELLO), sni("api.example.com"));
    // Application data after the hello does not matter.
    let mut more = OPENSSL_HELLO.to_vec();
    more.extend(b"\x17\x03\x03garbage");
    assert_eq!(peek(&more), sni("api.example.com"));
}

#[test]
fn built_hellos_with_and_without_sni() {
    assert_eq!(peek(&hello("db.example.com.")), sni("db.example.com"));
    let no_sni = records(&hello_body(Some(extension(0x000b, &[1, 0]))), MAX_RECORD);
    assert_eq!(peek(&no_sni), Peek::ClientHello { sni: None });
    let no_extensions = records(&hello_body(None), MAX_RECORD);
    assert_eq!(peek(&no_extensions), Peek::ClientHello { sni: None });
    // The first host_name entry wins; other name types are skipped.
    let ext = sni_extension(&[(7, b"ignored"), (0, b"first.test"), (0, b"second.test")]);
    assert_eq!(
        peek(&records(&hello_body(Some(ext)), MAX_RECORD)),
        sni("first.test")
    );
}

#[test]
fn reassembles_a_hello_split_across_records() {
    let body = {
        let mut ext = extension(0x0015, &[0u8; 600]); // padding
        ext.extend(sni_extension(&[(0, b"split.example.com")]));
        hello_body(Some(ext))
    };
    for size in [1, 7, 100, 512] {
        assert_eq!(
            peek(&records(&body, size)),
            sni("split.example.com"),
            "records of {size}"
        );
    }
}

#[test]
fn every_truncation_is_incomplete() {
    for bytes in [
        OPENSSL_HELLO.to_vec(),
        hello("a.b"),
        records(&hello_body(None), 9),
    ] {
        for cut in 0..bytes.len() {
            assert_eq!(peek(&bytes[..cut]), Peek::Incomplete, "cut at {cut}");
        }
    }
}

#[test]
fn other_protocols_are_not_tls() {
    for bytes in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"\x00",
        b"\x16\x02",                                 // SSL 2-ish version
        b"\x17\x03\x03\x00\x05hello",                // application data first
        b"\x16\x03\x01\x00\x00",                     // empty record
        b"\x16\x03\x01\x40\x01",                     // record over 2^14
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",     // a ServerHello
        b"\x16\x03\x01\x00\x04\x01\xff\xff\xff",     // a hello over the cap
        b"\x16\x03\x01\x00\x04\x01\x00\x00\x00",     // an empty hello body
        b"\x16\x03\x01\x00\x01\x01\x15\x03\x03\x00", // alert record inside a hello
    ] {
        assert_eq!(peek(bytes), Peek::NotTls, "{bytes:?}");
    }
}

#[test]
fn lying_lengths_and_bad_names_are_rejected() {
    let mut ext = extension(0, &[0, 40, 0, 0, 3, b'a']); // list longer than the extension
    assert_eq!(
        peek(&records(&hello_body(Some(ext)), MAX_RECORD)),
        Peek::NotTls
    );
    ext = extension(0x000b, &[1, 0]);
    ext.push(0); // a dangling byte after the last extension
    assert_eq!(
        peek(&records(&hello_body(Some(ext)), MAX_RECORD)),
        Peek::NotTls
    );
    for bad in [
        &b""[..],
        b"a b.com",
        b"caf\xc3\xa9.com",
        b"x\x00y",
        &[b'a'; 300],
    ] {
        let ext = sni_extension(&[(0, bad)]);
        assert_eq!(
            peek(&records(&hello_body(Some(ext)), MAX_RECORD)),
            Peek::NotTls,
            "{bad:?}"
        );
    }
}

#[test]
fn corrupted_and_random_input_never_panics() {
    let base = OPENSSL_HELLO.to_vec();
    for i in 0..base.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut bytes = base.clone();
            if let Some(b) = bytes.get_mut(i) {
                *b ^= flip;
            }
            let _ = peek(&bytes);
        }
    }
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..20_000 {
        let len = rng.usize(0..400);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        if rng.bool() && bytes.len() > 5 {
            // Keep a plausible record header so the parser goes deeper.
            bytes[..3].copy_from_slice(&[22, 3, 1]);
            bytes[5] = 1;
        }
        let _ = peek(&bytes);
    }
}
