//! meshintent API tokens: `mi_` and 256 random bits, stored only as a SHA-256 hash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix that tells an API token from a JWT (and makes leaked tokens easy to scan for).
pub const PREFIX: &str = "mi_";

/// A new token secret: `mi_` and 32 bytes from the operating system's CSPRNG, base64url.
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The hash stored for a secret (and looked up when it is presented).
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time comparison of two hashes.
pub fn same_hash(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Whether a bearer credential has the shape of an API token (`mi_` and 43 base64url
/// characters). Anything else is not looked up at all.
pub fn looks_like_token(credential: &str) -> bool {
    credential.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_256_bits() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(looks_like_token(&a), "{a}");
        let raw = URL_SAFE_NO_PAD.decode(&a[PREFIX.len()..]).unwrap();
        assert_eq!(raw.len(), 32);
    }

    #[test]
    fn hashes_compare_equal_only_for_the_same_secret() {
        let a = generate();
        assert!(same_hash(&hash(&a), &hash(&a)));
        assert!(!same_hash(&hash(&a), &hash(&generate())));
        assert!(!same_hash(&hash(&a), &[]));
    }

    #[test]
    fn only_well_formed_tokens_are_looked_up() {
        assert!(!looks_like_token("mi_short"));
        assert!(!looks_like_token("eyJhbGciOi.eyJzdWIi.sig"));
        assert!(!looks_like_token(&format!("mi_{}", "a".repeat(42) + "=")));
        assert!(looks_like_token(&format!("mi_{}", "A".repeat(43))));
    }
}
