//! Fuzzes request path normalization: for any request target, every mode either rejects it or
//! returns a canonical path (starts with `/`, no dot segments, no backslash, no `//` when
//! merging, no encoded slash when decoding them) that normalizes to itself again.
//!
//! Run: `cargo install cargo-fuzz && cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run path_normalize`

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_proxy::policy::normalize::{PathNormalization, normalize};

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    for mode in PathNormalization::ALL {
        let Ok(normalized) = normalize(target, mode) else {
            continue;
        };
        if mode == PathNormalization::None {
            continue;
        }
        let path = &normalized.path;
        if path == "*" {
            continue;
        }
        assert!(path.starts_with('/'), "{target:?} {mode} -> {path:?}");
        assert!(!path.contains('\\'), "{target:?} {mode} -> {path:?}");
        assert!(
            path.split('/').all(|s| s != "." && s != ".."),
            "{target:?} {mode} -> {path:?}"
        );
        if matches!(
            mode,
            PathNormalization::MergeSlashes | PathNormalization::DecodeAndMergeSlashes
        ) {
            assert!(!path.contains("//"), "{target:?} {mode} -> {path:?}");
        }
        if mode == PathNormalization::DecodeAndMergeSlashes {
            let upper = path.to_ascii_uppercase();
            assert!(
                !upper.contains("%2F") && !upper.contains("%5C"),
                "{target:?} {mode} -> {path:?}"
            );
        }
        assert_eq!(
            normalize(path, mode).map(|n| n.path),
            Ok(path.clone()),
            "not idempotent: {target:?} {mode}"
        );
    }
});
