//! `weft ca init` and `weft ca issue` run as the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

use std::path::Path;
use std::process::{Command, Output};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use weft_identity::{SpiffeId, spiffe_id_of, verify_peer};

fn weft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .output()
        .expect("run weft")
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn cert(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

#[test]
fn init_then_issue_writes_a_spiffe_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("ca");
    let out = tmp.path().join("sleep");

    let init = weft(&[
        "ca",
        "init",
        "--dir",
        s(&ca_dir),
        "--trust-domain",
        "example.org",
    ]);
    assert_eq!(init.status.code(), Some(0), "{init:?}");
    let stdout = String::from_utf8_lossy(&init.stdout);
    assert!(stdout.contains("root-key.pem"), "{stdout}");
    for file in ["root-cert.pem", "root-key.pem", "ca.json"] {
        assert!(ca_dir.join(file).is_file(), "{file}");
    }

    let id = "spiffe://example.org/ns/default/sa/sleep";
    let issue = weft(&[
        "ca",
        "issue",
        "--dir",
        s(&ca_dir),
        "--id",
        id,
        "--out",
        s(&out),
        "--ttl",
        "1h",
    ]);
    assert_eq!(issue.status.code(), Some(0), "{issue:?}");
    assert!(String::from_utf8_lossy(&issue.stdout).contains("cert-chain.pem"));
    for file in ["cert-chain.pem", "key.pem", "root-cert.pem"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let leaf = cert(&out.join("cert-chain.pem"));
    let want = SpiffeId::parse(id).unwrap();
    assert_eq!(spiffe_id_of(&leaf).unwrap(), want);
    let (_, x509) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let sans = x509.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        sans.value.general_names.len(),
        1,
        "exactly the SPIFFE URI SAN"
    );
    let roots = [cert(&out.join("root-cert.pem"))];
    assert_eq!(verify_peer(&[leaf], &roots, UnixTime::now()).unwrap(), want);
}

#[test]
fn issue_refuses_other_trust_domain_and_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("ca");
    let out = tmp.path().join("out");
    assert_eq!(
        weft(&["ca", "init", "--dir", s(&ca_dir)]).status.code(),
        Some(0)
    );

    let other = weft(&[
        "ca",
        "issue",
        "--dir",
        s(&ca_dir),
        "--id",
        "spiffe://other.org/ns/a/sa/b",
        "--out",
        s(&out),
    ]);
    assert_eq!(other.status.code(), Some(1), "{other:?}");
    assert!(String::from_utf8_lossy(&other.stderr).contains("trust domain"));
    assert!(!out.join("key.pem").exists());

    let bad_id = weft(&[
        "ca",
        "issue",
        "--dir",
        s(&ca_dir),
        "--id",
        "spiffe://cluster.local/x",
        "--out",
        s(&out),
    ]);
    assert_eq!(bad_id.status.code(), Some(2), "{bad_id:?}");
    let bad_ttl = weft(&[
        "ca",
        "issue",
        "--dir",
        s(&ca_dir),
        "--id",
        "spiffe://cluster.local/ns/a/sa/b",
        "--out",
        s(&out),
        "--ttl",
        "1d",
    ]);
    assert_eq!(bad_ttl.status.code(), Some(2), "{bad_ttl:?}");
    let no_ca = weft(&[
        "ca",
        "issue",
        "--dir",
        s(&tmp.path().join("missing")),
        "--id",
        "spiffe://cluster.local/ns/a/sa/b",
        "--out",
        s(&out),
    ]);
    assert_eq!(no_ca.status.code(), Some(2), "{no_ca:?}");
    let again = weft(&["ca", "init", "--dir", s(&ca_dir)]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "refuses to overwrite a CA: {again:?}"
    );
}

#[test]
fn init_from_existing_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    let second = tmp.path().join("second");
    assert_eq!(
        weft(&["ca", "init", "--dir", s(&first)]).status.code(),
        Some(0)
    );
    let plug = weft(&[
        "ca",
        "init",
        "--dir",
        s(&second),
        "--from-cert",
        s(&first.join("root-cert.pem")),
        "--from-key",
        s(&first.join("root-key.pem")),
    ]);
    assert_eq!(plug.status.code(), Some(0), "{plug:?}");
    assert_eq!(
        std::fs::read_to_string(first.join("root-cert.pem")).unwrap(),
        std::fs::read_to_string(second.join("root-cert.pem")).unwrap()
    );
    let missing = weft(&[
        "ca",
        "init",
        "--dir",
        s(&tmp.path().join("third")),
        "--from-cert",
        s(&tmp.path().join("nope.pem")),
        "--from-key",
        s(&first.join("root-key.pem")),
    ]);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
}
