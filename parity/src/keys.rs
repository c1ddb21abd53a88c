//! Idempotency keys of the node tasks a workflow creates (also the NodeTasks' names): a
//! workflow's prefix and what the task does, spelled in the characters an object name allows, at
//! most 128 of them, so that deciding again finds the task already created.

/// `prefix` followed by `what` with every character but ASCII letters, digits and `.` turned into
/// `-`, lower-cased, cut to 128 characters and without a trailing `-` or `.`.
pub fn idempotency_key(prefix: &str, what: &str) -> String {
    let what: String = what
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{prefix}{what}")
        .chars()
        .take(128)
        .collect::<String>()
        .trim_end_matches(['-', '.'])
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_lower_case_object_name_characters_cut_to_128_without_a_trailing_dash() {
        assert_eq!(
            idempotency_key("su-ab12-", "Edge_1 drbd:pvc/1-"),
            "su-ab12-edge-1-drbd-pvc-1"
        );
        assert_eq!(idempotency_key("mig-", &"x".repeat(200)).len(), 128);
    }
}
