//! Finding a record's key, as the job file's `[key]` says.

use crate::config::KeyConfig;

/// Extracts keys; built once per job.
#[derive(Debug, Clone)]
pub struct KeyExtractor {
    how: KeyConfig,
}

impl KeyExtractor {
    /// An extractor for `[key]`.
    pub fn new(how: KeyConfig) -> KeyExtractor {
        KeyExtractor { how }
    }

    /// The key of a record with this value, headers, source key and (for NATS) subject; an
    /// error says why there is none (the record then goes to the dead-letter output).
    pub fn extract(
        &self,
        source_key: Option<&[u8]>,
        value: &[u8],
        headers: &[(String, String)],
        subject: Option<&str>,
    ) -> Result<Vec<u8>, String> {
        match &self.how {
            KeyConfig::SubjectToken { index } => subject
                .and_then(|s| s.split('.').nth(*index))
                .map(|t| t.as_bytes().to_vec())
                .ok_or_else(|| {
                    format!(
                        "the subject {:?} has no token {index} to take the key from",
                        subject.unwrap_or_default()
                    )
                }),
            KeyConfig::RecordKey => Ok(source_key.unwrap_or(value).to_vec()),
            KeyConfig::Value => Ok(value.to_vec()),
            KeyConfig::Header { name } => headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes().to_vec())
                .ok_or_else(|| format!("the record has no header `{name}` to take the key from")),
            KeyConfig::JsonField { field } => {
                let v: serde_json::Value = serde_json::from_slice(value).map_err(|e| {
                    format!("the value is not JSON ({e}), so it has no field `{field}` to take the key from")
                })?;
                match v.get(field) {
                    Some(serde_json::Value::String(s)) => Ok(s.as_bytes().to_vec()),
                    Some(serde_json::Value::Null) | None => Err(format!(
                        "the value has no field `{field}` to take the key from"
                    )),
                    Some(other) => Ok(other.to_string().into_bytes()),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_field_strings_and_numbers() {
        let k = KeyExtractor::new(KeyConfig::JsonField { field: "id".into() });
        assert_eq!(k.extract(None, br#"{"id":"a"}"#, &[], None).unwrap(), b"a");
        assert_eq!(k.extract(None, br#"{"id":7}"#, &[], None).unwrap(), b"7");
        assert!(
            k.extract(None, br#"{"x":7}"#, &[], None)
                .unwrap_err()
                .contains("`id`")
        );
        assert!(
            k.extract(None, b"not json", &[], None)
                .unwrap_err()
                .contains("not JSON")
        );
    }

    #[test]
    fn subject_tokens() {
        let k = KeyExtractor::new(KeyConfig::SubjectToken { index: 1 });
        assert_eq!(
            k.extract(None, b"v", &[], Some("orders.eu.created"))
                .unwrap(),
            b"eu"
        );
        assert!(
            k.extract(None, b"v", &[], Some("orders"))
                .unwrap_err()
                .contains("no token 1")
        );
    }

    #[test]
    fn header_and_record_key() {
        let h = vec![("User".to_string(), "u1".to_string())];
        let k = KeyExtractor::new(KeyConfig::Header {
            name: "user".into(),
        });
        assert_eq!(k.extract(None, b"v", &h, None).unwrap(), b"u1");
        let k = KeyExtractor::new(KeyConfig::RecordKey);
        assert_eq!(k.extract(Some(b"rk"), b"v", &[], None).unwrap(), b"rk");
        assert_eq!(k.extract(None, b"v", &[], None).unwrap(), b"v");
    }
}
