//! Ed25519 signing and verifier keys in the signed-note key encoding.
//!
//! A signer key is the text `PRIVATE+KEY+<name>+<id>+<base64(0x01 || 32-byte seed)>` and a
//! verifier key `<name>+<id>+<base64(0x01 || 32-byte public key)>`, where `<id>` is the key
//! id (8 hex digits) that [c2sp.org/signed-note](https://c2sp.org/signed-note) recommends; the
//! same encoding as Go's `golang.org/x/mod/sumdb/note`. The key name is the log's origin. A key
//! file or a Secret's value holds that text; surrounding whitespace (a trailing newline) is
//! ignored.

use std::fmt;
use std::path::Path;

use signed_note::{Signer as _, Verifier as _};

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("reading key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not a key in the signed-note encoding.
    #[error("{what} is not a {expected} in the signed-note encoding ({reason})")]
    Format {
        /// Where the text came from.
        what: String,
        /// `signer key` or `verifier key`.
        expected: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The key name is not usable as a log origin.
    #[error("key name {0:?} is not a valid signed-note key name (non-empty, no spaces, no '+')")]
    Name(String),
}

/// The private key that signs the log's checkpoints.
#[derive(Clone)]
pub struct Signer {
    inner: signed_note::StandardSigner,
    verifier: Verifier,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name())
            .field("verifier_key", &self.verifier.text)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Generates a new key named `name` (the log's origin). Returns the signer and its text
    /// encoding, to be stored in a Secret or a file readable by the writer only.
    ///
    /// # Errors
    /// The name is not a valid key name.
    pub fn generate(name: &str) -> Result<(Signer, String), KeyError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(KeyError::Name(name.to_string()));
        }
        let (skey, _vkey) = signed_note::generate_key(&mut rand_core::OsRng, name);
        let signer = Signer::from_text(&skey, "a generated key")?;
        Ok((signer, skey))
    }

    /// Reads a signer key from its text encoding (e.g. a Secret's bytes). `what` names where the
    /// text came from, for the error.
    ///
    /// # Errors
    /// The text is not a signer key.
    pub fn from_text(text: &str, what: &str) -> Result<Signer, KeyError> {
        let inner = signed_note::StandardSigner::new(text.trim()).map_err(|e| KeyError::Format {
            what: what.to_string(),
            expected: "signer key",
            reason: match e {
                signed_note::SignerError::Format => "expected PRIVATE+KEY+<name>+<id>+<base64>",
                signed_note::SignerError::Alg => "not an Ed25519 key",
                signed_note::SignerError::Id => "its id does not match its name and key",
            }
            .to_string(),
        })?;
        let format = |reason: String| KeyError::Format {
            what: what.to_string(),
            expected: "signer key",
            reason,
        };
        let verifier_key = verifier_key_of(text.trim(), inner.name()).map_err(format)?;
        let verifier = Verifier::from_text(&verifier_key, what)?;
        Ok(Signer { inner, verifier })
    }

    /// Reads a signer key from bytes holding its text, e.g. a Secret's value. `what` names where
    /// they came from.
    ///
    /// # Errors
    /// The bytes are not UTF-8 or not a signer key.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Signer, KeyError> {
        let text = std::str::from_utf8(bytes).map_err(|_| KeyError::Format {
            what: what.to_string(),
            expected: "signer key",
            reason: "not UTF-8 text".to_string(),
        })?;
        Signer::from_text(text, what)
    }

    /// Reads a signer key from a file.
    ///
    /// # Errors
    /// The file cannot be read or does not hold a signer key.
    pub fn from_file(path: &Path) -> Result<Signer, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Signer::from_text(&text, &path.display().to_string())
    }

    /// The key's name: the log's origin.
    #[must_use]
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The verifier key (public half) in the signed-note encoding, to publish.
    #[must_use]
    pub fn verifier_key(&self) -> &str {
        &self.verifier.text
    }

    /// The matching verifier.
    #[must_use]
    pub fn verifier(&self) -> Verifier {
        self.verifier.clone()
    }

    pub(crate) fn note_signer(&self) -> &signed_note::StandardSigner {
        &self.inner
    }
}

/// A public key that checks the log's checkpoints.
#[derive(Clone)]
pub struct Verifier {
    inner: signed_note::StandardVerifier,
    text: String,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Verifier {
    /// Reads a verifier key from its text encoding. `what` names where it came from.
    ///
    /// # Errors
    /// The text is not a verifier key.
    pub fn from_text(text: &str, what: &str) -> Result<Verifier, KeyError> {
        let inner = signed_note::StandardVerifier::new(text.trim()).map_err(|e| KeyError::Format {
            what: what.to_string(),
            expected: "verifier key",
            reason: e.to_string(),
        })?;
        Ok(Verifier {
            inner,
            text: text.trim().to_string(),
        })
    }

    /// Reads a verifier key from a file.
    ///
    /// # Errors
    /// The file cannot be read or does not hold a verifier key.
    pub fn from_file(path: &Path) -> Result<Verifier, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Verifier::from_text(&text, &path.display().to_string())
    }

    /// The key's name: the origin of the logs it verifies.
    #[must_use]
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The key in the signed-note encoding.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn note_verifier(&self) -> &signed_note::StandardVerifier {
        &self.inner
    }
}

/// The verifier key text of a signer key text (already accepted by `StandardSigner::new`, which
/// checked the algorithm byte, the seed's length and the key id).
fn verifier_key_of(skey: &str, name: &str) -> Result<String, String> {
    use base64::Engine as _;
    let key64 = skey.splitn(5, '+').nth(4).unwrap_or_default();
    let key = base64::engine::general_purpose::STANDARD
        .decode(key64)
        .map_err(|e| format!("key bytes: {e}"))?;
    let seed: [u8; 32] = key
        .get(1..)
        .and_then(|seed| seed.try_into().ok())
        .ok_or_else(|| "an Ed25519 key is 1 + 32 bytes".to_string())?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    Ok(signed_note::new_ed25519_verifier_key(
        name,
        &signing.verifying_key(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_generated_key_reads_back_from_its_text_with_the_same_public_half() {
        let (signer, text) = Signer::generate("audit.example/site").unwrap();
        assert!(text.starts_with("PRIVATE+KEY+audit.example/site+"));
        let again = Signer::from_bytes(format!("{text}\n").as_bytes(), "a Secret").unwrap();
        assert_eq!(again.verifier_key(), signer.verifier_key());
        let verifier = Verifier::from_text(signer.verifier_key(), "a file").unwrap();
        assert_eq!(verifier.name(), "audit.example/site");
        assert_eq!(verifier.text(), signer.verifier_key());
    }

    #[test]
    fn a_key_in_another_form_is_refused_saying_where_it_came_from() {
        let err = Signer::from_text("ssh-ed25519 AAAA", "Secret nodewright/audit-key").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Secret nodewright/audit-key is not a signer key in the signed-note encoding (expected PRIVATE+KEY+<name>+<id>+<base64>)"
        );
        let (signer, _) = Signer::generate("audit.example/site").unwrap();
        // A verifier key is not a signer key, and the other way round.
        assert!(Signer::from_text(signer.verifier_key(), "x").is_err());
        assert!(Signer::generate("has space").is_err());
        let err = Signer::from_bytes(&[0xff, 0xfe], "Secret x")
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("(not UTF-8 text)"), "{err}");
    }
}
