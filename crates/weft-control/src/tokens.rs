//! Secrets on disk: the admin API token (`admin.token`, 0600, kept across restarts) and the
//! bootstrap tokens (`tokens.json`, 0600) that let a proxy without a certificate prove its
//! namespace and service account. Only SHA-256 digests of bootstrap tokens are stored.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a secret file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a weft tokens file: {source}", path.display())]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the system random generator failed")]
    Random,
}

/// Who a bootstrap token speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenGrant {
    pub namespace: String,
    pub service_account: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredToken {
    sha256: String,
    #[serde(flatten)]
    grant: TokenGrant,
    created_unix: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokensFile {
    tokens: Vec<StoredToken>,
}

/// The bootstrap tokens.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    by_digest: BTreeMap<String, StoredToken>,
}

impl TokenStore {
    /// Loads `path` (absent: no tokens yet).
    pub fn load(path: PathBuf) -> Result<TokenStore, TokenError> {
        let by_digest = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: TokensFile =
                    serde_json::from_str(&text).map_err(|source| TokenError::Format {
                        path: path.clone(),
                        source,
                    })?;
                file.tokens
                    .into_iter()
                    .map(|t| (t.sha256.clone(), t))
                    .collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(TokenError::Io { path, source }),
        };
        Ok(TokenStore { path, by_digest })
    }

    /// Creates a token for `grant`, saves the store, and returns the token (shown once).
    pub fn create(&mut self, grant: TokenGrant) -> Result<String, TokenError> {
        let token = random_token()?;
        let created_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let digest = sha256_hex(&token);
        self.by_digest.insert(
            digest.clone(),
            StoredToken {
                sha256: digest,
                grant,
                created_unix,
            },
        );
        self.save()?;
        Ok(token)
    }

    /// Who `token` speaks for, if it is a bootstrap token.
    pub fn check(&self, token: &str) -> Option<&TokenGrant> {
        if token.is_empty() {
            return None;
        }
        self.by_digest.get(&sha256_hex(token)).map(|t| &t.grant)
    }

    fn save(&self) -> Result<(), TokenError> {
        let file = TokensFile {
            tokens: self.by_digest.values().cloned().collect(),
        };
        let text = serde_json::to_string_pretty(&file).map_err(|source| TokenError::Format {
            path: self.path.clone(),
            source,
        })?;
        write_secret(&self.path, &text)
    }
}

/// Reads the admin token from `path`, creating a random one if the file is absent.
pub fn admin_token(path: &Path) -> Result<String, TokenError> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(TokenError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let token = random_token()?;
    write_secret(path, &format!("{token}\n"))?;
    Ok(token)
}

/// Compares two secrets in time independent of where they differ.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// 32 random bytes, hex.
fn random_token() -> Result<String, TokenError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| TokenError::Random)?;
    Ok(hex(&bytes))
}

fn sha256_hex(token: &str) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a file readable by its owner only (0600), replacing it atomically.
pub fn write_secret(path: &Path, contents: &str) -> Result<(), TokenError> {
    let io = |p: &Path| {
        let path = p.to_path_buf();
        move |source| TokenError::Io { path, source }
    };
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(contents.as_bytes()).map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_by_digest_and_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let mut store = TokenStore::load(path.clone()).unwrap();
        let grant = TokenGrant {
            namespace: "default".into(),
            service_account: "reviews".into(),
        };
        let token = store.create(grant.clone()).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(store.check(&token), Some(&grant));
        assert_eq!(store.check("forged"), None);
        assert_eq!(store.check(""), None);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&token), "raw tokens are never stored");
        let reloaded = TokenStore::load(path.clone()).unwrap();
        assert_eq!(reloaded.check(&token), Some(&grant));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn admin_token_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        let first = admin_token(&path).unwrap();
        assert_eq!(admin_token(&path).unwrap(), first);
        assert!(secrets_equal(&first, &first));
        assert!(!secrets_equal(&first, "x"));
    }
}
