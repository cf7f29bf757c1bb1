//! User payloads: inputs, results and side-effect values as stored in history.
//!
//! Payloads are JSON so that additive changes to user types (a new field with
//! `#[serde(default)]`) still decode old histories, and so that a person or a
//! command-line tool can read them. Engine records around them use `codec`.
//!
//! Through serde_json (human-readable: the history file form, HISTORY-JSON
//! in FORMAT.md) a payload is the JSON value itself, so a
//! person reads `{"name":"Alice"}` and not a list of bytes; through bincode
//! (`codec`, not human-readable) it stays a byte string, as in every file
//! written so far.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};
use serde_json::value::RawValue;

/// The default largest payload accepted, in bytes (Temporal's limit: 2 MiB).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 2 * 1024 * 1024;

/// An encoded user value (JSON bytes), as kept in a workflow's history.
// A boxed slice, not a `Vec`: 16 bytes, so that the failures and events
// holding one stay small (the stored form is the same, see `Stored`).
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(Box<[u8]>);

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            // The stored form (bincode): a byte string, as it always was.
            return StoredRef(&self.0).serialize(serializer);
        }
        // The text is written as is (a raw value), so the bytes read back
        // are the bytes stored and an exported history imports equal.
        let text = std::str::from_utf8(&self.0).map_err(serde::ser::Error::custom)?;
        let raw: &RawValue = serde_json::from_str(text).map_err(|e| {
            serde::ser::Error::custom(format!(
                "a payload is not JSON ({e}); the engine writes only JSON payloads, \
                 so its record is damaged"
            ))
        })?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            return Stored::deserialize(deserializer)
                .map(|Stored(bytes)| Payload(bytes.into_boxed_slice()));
        }
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Payload(raw.get().as_bytes().into()))
    }
}

/// The stored form: exactly what the derived impl of `Payload(Vec<u8>)`
/// wrote, so files keep their bytes (codec's tests pin them).
#[derive(Serialize, Deserialize)]
#[serde(rename = "Payload")]
struct Stored(Vec<u8>);

/// The same, borrowed, for writing without a copy.
#[derive(Serialize)]
#[serde(rename = "Payload")]
struct StoredRef<'a>(&'a [u8]);

/// A payload could not be encoded from, or decoded into, the user's type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The value could not be turned into JSON.
    #[error("could not encode a value of type {type_name} as JSON: {source}")]
    Encode {
        /// The Rust type being encoded.
        type_name: &'static str,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
    /// The stored JSON does not fit the expected type: a definition's types
    /// changed incompatibly, or the wrong definition was used.
    #[error(
        "stored payload {preview} does not decode as {type_name}: {source}; \
         keep the type compatible (add fields with #[serde(default)]) or use the matching definition"
    )]
    Decode {
        /// The Rust type expected.
        type_name: &'static str,
        /// The beginning of the stored JSON.
        preview: String,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
}

impl Payload {
    /// Encodes a value as JSON.
    ///
    /// # Errors
    /// [`PayloadError::Encode`] when serde cannot serialize the value (for
    /// example a map with non-string keys).
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, PayloadError> {
        serde_json::to_vec(value)
            .map(|bytes| Payload(bytes.into_boxed_slice()))
            .map_err(|source| PayloadError::Encode {
                type_name: std::any::type_name::<T>(),
                source,
            })
    }

    /// Decodes the payload into `T`.
    ///
    /// # Errors
    /// [`PayloadError::Decode`] when the JSON does not fit `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        serde_json::from_slice(&self.0).map_err(|source| PayloadError::Decode {
            type_name: std::any::type_name::<T>(),
            preview: self.preview(),
            source,
        })
    }

    /// The payload as JSON text, for people and tools.
    pub fn as_json(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// The encoded size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the payload holds no bytes (never the case for encoded values).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn preview(&self) -> String {
        let text = self.as_json();
        match text.char_indices().nth(80) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        }
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({})", self.preview())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct V1 {
        name: String,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct V2 {
        name: String,
        #[serde(default)]
        age: u32,
    }

    #[test]
    fn additive_change_decodes_old_payload() {
        let old = Payload::encode(&V1 { name: "a".into() }).unwrap();
        let new: V2 = old.decode().unwrap();
        assert_eq!(
            new,
            V2 {
                name: "a".into(),
                age: 0
            }
        );
    }

    #[test]
    fn json_shows_the_value_and_reads_back_the_same_bytes() {
        let p = Payload::encode(&V2 {
            name: "a".into(),
            age: 3,
        })
        .unwrap();
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(text, r#"{"name":"a","age":3}"#);
        let back: Payload = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
        let value = serde_json::to_value(&p).unwrap();
        assert_eq!(value, serde_json::json!({ "name": "a", "age": 3 }));
    }

    #[test]
    fn a_payload_that_is_not_json_has_no_json_form() {
        let err = serde_json::to_string(&Payload(b"{not json".as_slice().into())).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    #[test]
    fn wrong_type_is_a_typed_error() {
        let p = Payload::encode(&"text").unwrap();
        let err = p.decode::<u64>().unwrap_err();
        assert!(err.to_string().contains("u64"), "{err}");
    }
}
