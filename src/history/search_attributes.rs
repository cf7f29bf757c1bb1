//! Search attributes: typed key/value pairs of a run that `list` can filter
//! on. Pure data; the store keeps an index of them.
//!
//! The kinds are Temporal's, without `Text` (Temporal's full-text kind: an
//! embedded index of words is a feature of its own; a `Keyword` matches a
//! whole value). A `KeywordList` matches a filter on any of its elements.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Longest search attribute name, in bytes.
pub const MAX_SEARCH_ATTRIBUTE_NAME_LEN: usize = 256;
/// Largest search attribute value (a keyword, or all elements of a keyword
/// list together), in bytes (Temporal's limit: 2 KB).
pub const MAX_SEARCH_ATTRIBUTE_VALUE_BYTES: usize = 2 * 1024;
/// Most search attributes on one run.
pub const MAX_SEARCH_ATTRIBUTES: usize = 64;

/// The value of one search attribute.
///
/// `Double` compares by its bits, so that `NaN` equals itself and the type
/// can be `Eq`: a filter on `Double(NaN)` finds runs whose value is `NaN`.
// Stored by position in events and run records (FORMAT.md): never reorder;
// a new kind goes at the end (codec's tests pin the positions).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SearchAttributeValue {
    /// A string matched as a whole (an ID, a customer, a state).
    Keyword(String),
    /// A signed integer; filters may use ranges.
    Int(i64),
    /// A floating-point number; filters may use ranges.
    Double(#[serde(with = "double")] f64),
    /// True or false.
    Bool(bool),
    /// A point in time (at or after the Unix epoch); filters may use ranges.
    Datetime(SystemTime),
    /// Several keywords; a filter on a `Keyword` matches a run whose list
    /// holds it. Upserting an empty list removes the attribute (Temporal's
    /// rule).
    KeywordList(Vec<String>),
}

/// A `Double` as stored: bincode's `f64` unchanged; in JSON (the history
/// file form) a number, or `"NaN"`, `"inf"`, `"-inf"`, which JSON numbers
/// cannot hold (serde_json would write `null` and never read it back).
mod double {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() || value.is_finite() {
            return serializer.serialize_f64(*value);
        }
        let name = if value.is_nan() {
            "NaN"
        } else if *value > 0.0 {
            "inf"
        } else {
            "-inf"
        };
        serializer.serialize_str(name)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Number(f64),
        Name(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        if !deserializer.is_human_readable() {
            return f64::deserialize(deserializer);
        }
        match Text::deserialize(deserializer)? {
            Text::Number(value) => Ok(value),
            Text::Name(name) => match name.as_str() {
                "NaN" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                other => Err(D::Error::custom(format!(
                    "a Double is a number, \"NaN\", \"inf\" or \"-inf\", not {other:?}"
                ))),
            },
        }
    }
}

impl PartialEq for SearchAttributeValue {
    fn eq(&self, other: &Self) -> bool {
        use SearchAttributeValue::*;
        match (self, other) {
            (Keyword(a), Keyword(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Double(a), Double(b)) => a.to_bits() == b.to_bits(),
            (Bool(a), Bool(b)) => a == b,
            (Datetime(a), Datetime(b)) => a == b,
            (KeywordList(a), KeywordList(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for SearchAttributeValue {}

impl SearchAttributeValue {
    /// The kind's name, for messages: `"Keyword"`, `"Int"`, ….
    pub fn kind(&self) -> &'static str {
        match self {
            SearchAttributeValue::Keyword(_) => "Keyword",
            SearchAttributeValue::Int(_) => "Int",
            SearchAttributeValue::Double(_) => "Double",
            SearchAttributeValue::Bool(_) => "Bool",
            SearchAttributeValue::Datetime(_) => "Datetime",
            SearchAttributeValue::KeywordList(_) => "KeywordList",
        }
    }

    /// True when a run whose attribute holds `self` matches a filter on
    /// `wanted`: equal values, or a keyword list holding the keyword.
    pub(crate) fn matches(&self, wanted: &SearchAttributeValue) -> bool {
        match (self, wanted) {
            (SearchAttributeValue::KeywordList(list), SearchAttributeValue::Keyword(k)) => {
                list.contains(k)
            }
            _ => self == wanted,
        }
    }

    fn size(&self) -> usize {
        match self {
            SearchAttributeValue::Keyword(s) => s.len(),
            // Each element counts a byte beside its text: a list of a
            // million empty strings is not free to store or index.
            SearchAttributeValue::KeywordList(list) => list.iter().map(|s| s.len() + 1).sum(),
            _ => 16,
        }
    }
}

impl From<&str> for SearchAttributeValue {
    fn from(value: &str) -> Self {
        SearchAttributeValue::Keyword(value.to_string())
    }
}

impl From<String> for SearchAttributeValue {
    fn from(value: String) -> Self {
        SearchAttributeValue::Keyword(value)
    }
}

impl From<i64> for SearchAttributeValue {
    fn from(value: i64) -> Self {
        SearchAttributeValue::Int(value)
    }
}

impl From<f64> for SearchAttributeValue {
    fn from(value: f64) -> Self {
        SearchAttributeValue::Double(value)
    }
}

impl From<bool> for SearchAttributeValue {
    fn from(value: bool) -> Self {
        SearchAttributeValue::Bool(value)
    }
}

impl From<SystemTime> for SearchAttributeValue {
    fn from(value: SystemTime) -> Self {
        SearchAttributeValue::Datetime(value)
    }
}

impl From<Vec<String>> for SearchAttributeValue {
    fn from(value: Vec<String>) -> Self {
        SearchAttributeValue::KeywordList(value)
    }
}

/// A run's search attributes: names to typed values, in name order.
///
/// ```
/// use steadfast::{SearchAttributes, SearchAttributeValue};
/// let attributes = SearchAttributes::new()
///     .with("CustomerId", "c-42")
///     .with("Priority", 3i64)
///     .with("Tags", vec!["gold".to_string(), "eu".to_string()]);
/// assert_eq!(attributes.get("Priority"), Some(&SearchAttributeValue::Int(3)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchAttributes(BTreeMap<String, SearchAttributeValue>);

impl SearchAttributes {
    /// No attributes.
    pub fn new() -> Self {
        SearchAttributes::default()
    }

    /// Adds (or replaces) an attribute: `&str`/`String` make a `Keyword`,
    /// `i64` an `Int`, `f64` a `Double`, `bool` a `Bool`, `SystemTime` a
    /// `Datetime`, `Vec<String>` a `KeywordList`.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<SearchAttributeValue>) -> Self {
        self.insert(name, value);
        self
    }

    /// Adds (or replaces) an attribute; returns the value it replaced.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        value: impl Into<SearchAttributeValue>,
    ) -> Option<SearchAttributeValue> {
        self.0.insert(name.into(), value.into())
    }

    /// The value of an attribute.
    pub fn get(&self, name: &str) -> Option<&SearchAttributeValue> {
        self.0.get(name)
    }

    /// Removes an attribute; returns its value.
    pub fn remove(&mut self, name: &str) -> Option<SearchAttributeValue> {
        self.0.remove(name)
    }

    /// The attributes in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SearchAttributeValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Applies an upsert: each attribute of `changes` replaces this one's,
    /// and an empty `KeywordList` removes the attribute.
    pub fn merge(&mut self, changes: &SearchAttributes) {
        for (name, value) in &changes.0 {
            match value {
                SearchAttributeValue::KeywordList(list) if list.is_empty() => {
                    self.0.remove(name);
                }
                _ => {
                    self.0.insert(name.clone(), value.clone());
                }
            }
        }
    }

    /// Checks names and sizes against the limits; the error says which
    /// attribute is wrong and why.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.0.len() > MAX_SEARCH_ATTRIBUTES {
            return Err(format!(
                "{} search attributes, over the limit of {MAX_SEARCH_ATTRIBUTES}",
                self.0.len()
            ));
        }
        for (name, value) in &self.0 {
            if name.is_empty() || name.len() > MAX_SEARCH_ATTRIBUTE_NAME_LEN {
                return Err(format!(
                    "search attribute name {name:?} must be 1 to {MAX_SEARCH_ATTRIBUTE_NAME_LEN} bytes"
                ));
            }
            if value.size() > MAX_SEARCH_ATTRIBUTE_VALUE_BYTES {
                return Err(format!(
                    "search attribute {name:?} is {} bytes, over the limit of {MAX_SEARCH_ATTRIBUTE_VALUE_BYTES}",
                    value.size()
                ));
            }
            if let SearchAttributeValue::Datetime(t) = value
                && t.duration_since(SystemTime::UNIX_EPOCH).is_err()
            {
                return Err(format!(
                    "search attribute {name:?} is a time before the Unix epoch"
                ));
            }
        }
        Ok(())
    }
}

impl<K: Into<String>, V: Into<SearchAttributeValue>> FromIterator<(K, V)> for SearchAttributes {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        SearchAttributes(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl From<BTreeMap<String, SearchAttributeValue>> for SearchAttributes {
    fn from(map: BTreeMap<String, SearchAttributeValue>) -> Self {
        SearchAttributes(map)
    }
}

impl IntoIterator for SearchAttributes {
    type Item = (String, SearchAttributeValue);
    type IntoIter = std::collections::btree_map::IntoIter<String, SearchAttributeValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_replaces_and_an_empty_list_clears() {
        let mut a = SearchAttributes::new().with("A", 1i64).with("B", "x");
        a.merge(
            &SearchAttributes::new()
                .with("A", 2i64)
                .with("B", Vec::<String>::new())
                .with("C", true),
        );
        assert_eq!(a, SearchAttributes::new().with("A", 2i64).with("C", true));
    }

    #[test]
    fn nan_equals_itself_and_lists_match_their_keywords() {
        assert_eq!(
            SearchAttributeValue::Double(f64::NAN),
            SearchAttributeValue::Double(f64::NAN)
        );
        let list = SearchAttributeValue::KeywordList(vec!["a".into(), "b".into()]);
        assert!(list.matches(&"b".into()));
        assert!(!list.matches(&"c".into()));
    }
}
