//! Encryption of secrets at rest (cluster kubeconfigs) with AES-256-GCM.
//!
//! Stored form: `0x01 || nonce (12 bytes) || ciphertext+tag`. The owning row's id is the
//! associated data, so a ciphertext copied onto another cluster's row does not decrypt.

use std::fmt;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, Generate, Key, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "the secret key must be 32 bytes, base64-encoded (e.g. the output of `openssl rand -base64 32`)"
    )]
    BadKey,
    #[error(
        "a stored secret could not be decrypted (wrong MESHINTENT_SECRET_KEY, or the data was altered)"
    )]
    Decrypt,
    #[error("the secret key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
}

/// Encrypts and decrypts secrets with one key. Its `Debug` shows no key material.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(<key redacted>)")
    }
}

impl SecretBox {
    /// From the base64 form of a 32-byte key.
    pub fn from_base64(key: &str) -> Result<Self, CryptoError> {
        let bytes = BASE64.decode(key.trim()).map_err(|_| CryptoError::BadKey)?;
        let key = Key::<Aes256Gcm>::try_from(bytes.as_slice()).map_err(|_| CryptoError::BadKey)?;
        Ok(Self {
            cipher: Aes256Gcm::new(&key),
        })
    }

    /// A new random key, base64-encoded.
    pub fn generate_key() -> String {
        let key = Key::<Aes256Gcm>::generate();
        BASE64.encode(key.as_slice())
    }

    /// Reads the key file at `path`, creating it with a new key (mode 0600) if it is missing.
    pub fn from_key_file(path: &Path) -> Result<Self, CryptoError> {
        let io = |source| CryptoError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate_key();
                let mut file = create_private(path).map_err(io)?;
                file.write_all(key.as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Self::from_base64(&key)
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn seal(&self, plaintext: &[u8], associated: &[u8]) -> Vec<u8> {
        let nonce = Nonce::generate();
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: associated,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer does not fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8], associated: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (&version, rest) = sealed.split_first().ok_or(CryptoError::Decrypt)?;
        if version != FORMAT_V1 || rest.len() < NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| CryptoError::Decrypt)?;
        self.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: associated,
                },
            )
            .map_err(|_| CryptoError::Decrypt)
    }
}

#[cfg(unix)]
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bound_to_associated_data() {
        let sb = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        let sealed = sb.seal(b"kubeconfig", b"cluster-1");
        assert!(!sealed.windows(10).any(|w| w == b"kubeconfig"));
        assert_eq!(sb.open(&sealed, b"cluster-1").unwrap(), b"kubeconfig");
        assert!(sb.open(&sealed, b"cluster-2").is_err());
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(sb.open(&altered, b"cluster-1").is_err());
    }

    #[test]
    fn nonces_differ() {
        let sb = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        assert_ne!(sb.seal(b"x", b""), sb.seal(b"x", b""));
    }

    #[test]
    fn other_keys_cannot_open() {
        let a = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        let b = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        assert!(b.open(&a.seal(b"x", b""), b"").is_err());
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert!(SecretBox::from_base64("short").is_err());
        assert!(SecretBox::from_base64("not base64 !!").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("meshintent-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("meshintent.key");
        let first = SecretBox::from_key_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = SecretBox::from_key_file(&path).unwrap();
        assert_eq!(second.open(&first.seal(b"x", b"a"), b"a").unwrap(), b"x");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
