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

use serde::de::{self, DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// The default largest payload accepted, in bytes (Temporal's limit: 2 MiB).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 2 * 1024 * 1024;

thread_local! {
    /// The buffer [`Payload::encode`] writes into on this thread.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Largest scratch buffer a thread keeps between encodes; one grown past it
/// by a large payload is freed.
const SCRATCH_KEPT: usize = 64 * 1024;

/// An encoded user value (JSON bytes), as kept in a workflow's history.
// A boxed slice, not a `Vec`: 16 bytes, so that the failures and events
// holding one stay small (the stored form is the same, see `Bytes`).
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(Box<[u8]>);

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            // The stored form (bincode): a byte string, as it always was.
            return serializer.serialize_newtype_struct("Payload", &Bytes(&self.0));
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
            return deserializer.deserialize_newtype_struct("Payload", StoredVisitor);
        }
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Payload(raw.get().as_bytes().into()))
    }
}

/// The stored form's bytes: what the derived impl of `Payload(Vec<u8>)`
/// wrote (a newtype, `Payload`, of a sequence of bytes), so files keep their
/// bytes (codec's tests pin them). Written and read as one byte string, not
/// byte by byte: in bincode a byte string and a sequence of `u8` are the
/// same bytes (a varint length, then the bytes), and reading the sequence
/// one element at a time showed in profiles of a cold replay.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// Reads the stored form: the newtype, then its bytes (as a byte string, or
/// as a sequence from a format that keeps them so).
///
/// The codec decodes records only from a slice (`codec::decode_body`), so
/// the bytes are borrowed and bounds-checked, never reserved at a length
/// the input claims; a reader-based decoder would reserve it first.
struct StoredVisitor;

impl<'de> Visitor<'de> for StoredVisitor {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a payload's bytes")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Payload, D::Error> {
        d.deserialize_bytes(self)
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Payload, E> {
        Ok(Payload(bytes.into()))
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Payload, E> {
        Ok(Payload(bytes.into_boxed_slice()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
        // A length claimed by the input is not trusted for the reservation.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(Payload(bytes.into_boxed_slice()))
    }
}

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
        let error = |source| PayloadError::Encode {
            type_name: std::any::type_name::<T>(),
            source,
        };
        // Written into a buffer the thread keeps and copied out at its exact
        // size: one allocation of the payload's size, where `to_vec` made a
        // 128-byte one and shrank it by a reallocation (most payloads are a
        // few bytes, and a replay encodes every activity's input again).
        let scratch = SCRATCH.try_with(|scratch| {
            // Taken already: a value whose serialization encodes a payload.
            let mut buffer = scratch.try_borrow_mut().ok()?;
            buffer.clear();
            let written = serde_json::to_writer(&mut *buffer, value);
            let payload = written.map(|()| Payload(Box::from(&buffer[..])));
            if buffer.capacity() > SCRATCH_KEPT {
                *buffer = Vec::new();
            }
            Some(payload)
        });
        match scratch.ok().flatten() {
            Some(payload) => payload.map_err(error),
            // No buffer at hand (taken, or the thread is ending).
            None => serde_json::to_vec(value)
                .map(|bytes| Payload(bytes.into_boxed_slice()))
                .map_err(error),
        }
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

    /// Through bincode a payload is written and read as a byte string:
    /// the same bytes as the newtype of a `Vec<u8>` every older build wrote
    /// (a one-byte length and a longer varint one alike).
    #[test]
    fn bincode_bytes_are_those_of_a_byte_vector() {
        #[derive(Serialize, Deserialize)]
        #[serde(rename = "Payload")]
        struct Derived(Vec<u8>);
        let standard = bincode::config::standard();
        for text in [
            "",
            "x".repeat(3).as_str(),
            "y".repeat(300).as_str(),
            "z".repeat(70_000).as_str(),
        ] {
            let p = Payload::encode(&text).unwrap();
            let ours = bincode::serde::encode_to_vec(&p, standard).unwrap();
            let derived = bincode::serde::encode_to_vec(Derived(p.0.to_vec()), standard).unwrap();
            assert_eq!(ours, derived, "{} bytes", p.len());
            let (back, read): (Payload, usize) =
                bincode::serde::decode_from_slice(&derived, standard).unwrap();
            assert_eq!((back, read), (p, derived.len()));
        }
        // A length past the end is an error, not a panic or a reservation.
        let truncated = bincode::serde::decode_from_slice::<Payload, _>(&[200, 1], standard);
        assert!(truncated.is_err());
    }

    /// The encoder's per-thread buffer: a value that encodes a payload
    /// while it is being encoded gets a buffer of its own, and a large
    /// payload leaves nothing behind in the next one.
    #[test]
    fn nested_and_large_encodes_are_their_own_bytes() {
        struct Nested;
        impl Serialize for Nested {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let inner = Payload::encode(&[1, 2, 3]).map_err(serde::ser::Error::custom)?;
                serializer.serialize_str(&inner.as_json())
            }
        }
        assert_eq!(Payload::encode(&Nested).unwrap().as_json(), r#""[1,2,3]""#);
        let large = "x".repeat(SCRATCH_KEPT * 2);
        assert_eq!(Payload::encode(&large).unwrap().len(), large.len() + 2);
        assert_eq!(Payload::encode(&7).unwrap().as_json(), "7");
        let err = Payload::encode(&std::collections::HashMap::from([((1, 2), 3)])).unwrap_err();
        assert!(matches!(err, PayloadError::Encode { .. }), "{err}");
        assert_eq!(Payload::encode(&"after").unwrap().as_json(), r#""after""#);
    }

    #[test]
    fn wrong_type_is_a_typed_error() {
        let p = Payload::encode(&"text").unwrap();
        let err = p.decode::<u64>().unwrap_err();
        assert!(err.to_string().contains("u64"), "{err}");
    }
}
