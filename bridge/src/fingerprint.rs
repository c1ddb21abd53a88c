//! Stable 64-bit fingerprints (FNV-1a): the same input gives the same value in every run and
//! build, unlike the standard library's hasher. Pure; used to name legacy workflow instances and
//! to remember what the writer wrote without keeping a copy of it.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, fed incrementally.
struct Fnv(u64);

impl std::io::Write for Fnv {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(PRIME);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The fingerprint of some bytes.
pub fn of_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = Fnv(OFFSET);
    // Writing into the hasher cannot fail.
    let _ = std::io::Write::write_all(&mut hasher, bytes);
    hasher.0
}

/// The fingerprint of a value's JSON serialisation, which is stable for the same value (maps
/// keep their order). Two different values collide with a chance of about 2⁻⁶⁴ per pair.
pub fn of_json(value: &impl serde::Serialize) -> u64 {
    let mut hasher = Fnv(OFFSET);
    // Writing into the hasher cannot fail; a value that cannot be serialised has nothing to write.
    let _ = serde_json::to_writer(&mut hasher, value);
    hasher.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_fingerprint_of_nothing_is_the_fnv_offset_basis() {
        assert_eq!(of_bytes(b""), OFFSET);
        assert_eq!(of_bytes(b"a"), 0xaf63_dc4c_8601_ec8c, "FNV-1a of \"a\"");
    }

    #[test]
    fn equal_values_have_equal_fingerprints_and_different_ones_do_not() {
        assert_eq!(
            of_json(&json!({"a": 1, "b": [1, 2]})),
            of_json(&json!({"a": 1, "b": [1, 2]}))
        );
        assert_ne!(of_json(&json!({"a": 1})), of_json(&json!({"a": 2})));
        assert_ne!(of_json(&json!({"a": "1"})), of_json(&json!({"a": 1})));
    }
}
