//! A serde `Deserializer` over a located [`Tree`] that records the field path and the node's
//! position on the first (innermost) error, so that `#[serde(deny_unknown_fields)]`, type and
//! custom errors all come back as `spec.ingress[0].protocol` plus a line and column.
//!
//! The reverse direction, `Deserialize for Tree`, lets any serde format (serde_json for values
//! read back from a datastore) reuse the same resource dispatch, without positions.

use super::tree::{Mark, Resolved, Tree, TreeValue, resolve_plain};
use crate::error::FieldPath;
use serde::de::{self, DeserializeSeed, Error as _, IntoDeserializer, Visitor};
use std::fmt;

/// A deserialization error with the path and position of the node it was raised at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeError {
    pub message: String,
    pub path: Option<FieldPath>,
    pub mark: Option<Mark>,
}

impl DeError {
    fn at(mut self, path: &FieldPath, mark: Option<Mark>) -> Self {
        if self.path.is_none() {
            self.path = Some(path.clone());
            self.mark = mark;
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) if !path.is_root() => write!(f, "{path}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            path: None,
            mark: None,
        }
    }
}

/// Deserializes `T` from `tree`, whose position in the document is `path`.
pub(crate) fn from_tree<'de, T: de::Deserialize<'de>>(
    tree: &'de Tree,
    path: &FieldPath,
) -> Result<T, DeError> {
    T::deserialize(TreeDeserializer {
        tree,
        path: path.clone(),
    })
}

pub(crate) struct TreeDeserializer<'de> {
    tree: &'de Tree,
    path: FieldPath,
}

impl<'de> TreeDeserializer<'de> {
    fn fail<T>(&self, err: DeError) -> Result<T, DeError> {
        Err(err.at(&self.path, self.tree.mark))
    }

    fn locate<T>(&self, result: Result<T, DeError>) -> Result<T, DeError> {
        result.map_err(|e| e.at(&self.path, self.tree.mark))
    }

    fn invalid_type(&self, expected: &dyn de::Expected) -> DeError {
        DeError::custom(format_args!(
            "invalid type: {}, expected {expected}",
            self.tree.describe()
        ))
    }

    fn visit_seq<V: Visitor<'de>>(
        &self,
        items: &'de [Tree],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let mut access = SeqAccess {
            items: items.iter().enumerate(),
            path: &self.path,
            len: items.len(),
        };
        let value = self.locate(visitor.visit_seq(&mut access))?;
        Ok(value)
    }

    fn visit_map<V: Visitor<'de>>(
        &self,
        entries: &'de [(Tree, Tree)],
        struct_fields: bool,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let mut access = MapAccess {
            entries: entries.iter(),
            path: &self.path,
            struct_fields,
            value: None,
        };
        self.locate(visitor.visit_map(&mut access))
    }
}

impl<'de> de::Deserializer<'de> for TreeDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.tree.value {
            TreeValue::Null => visitor.visit_unit(),
            TreeValue::Bool(b) => visitor.visit_bool(*b),
            TreeValue::Int(i) => visitor.visit_i64(*i),
            TreeValue::UInt(u) => visitor.visit_u64(*u),
            TreeValue::Float(f) => visitor.visit_f64(*f),
            TreeValue::Str(s) => visitor.visit_borrowed_str(s),
            TreeValue::Plain(s) => match resolve_plain(s) {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::UInt(u) => visitor.visit_u64(u),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(_) => visitor.visit_borrowed_str(s),
            },
            TreeValue::Seq(items) => return self.visit_seq(items, visitor),
            TreeValue::Map(entries) => return self.visit_map(entries, false, visitor),
        };
        self.locate(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // YAML 1.1 spellings are accepted too: Calico reads manifests with a YAML 1.1 parser,
        // so `natOutgoing: yes` works there and must work here.
        let value = match &self.tree.value {
            TreeValue::Bool(b) => Some(*b),
            TreeValue::Plain(s) => match s.as_str() {
                "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
                "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
                    Some(false)
                }
                _ => None,
            },
            _ => None,
        };
        match value {
            Some(b) => self.locate(visitor.visit_bool(b)),
            None => {
                let err = self.invalid_type(&"a boolean");
                self.fail(err)
            }
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.tree.value {
            // A plain scalar is text when text is wanted (`name: 80`, `value: true`).
            TreeValue::Str(s) | TreeValue::Plain(s) => self.locate(visitor.visit_borrowed_str(s)),
            _ => {
                let err = self.invalid_type(&visitor);
                self.fail(err)
            }
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.tree.is_null() {
            return self.locate(visitor.visit_none());
        }
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.tree.is_null() {
            return self.locate(visitor.visit_unit());
        }
        let err = self.invalid_type(&"null");
        self.fail(err)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.tree.value {
            TreeValue::Seq(items) => self.visit_seq(items, visitor),
            // `ingress:` with nothing after it is an empty list, as in Go's JSON decoding.
            _ if self.tree.is_null() => self.visit_seq(&[], visitor),
            _ => {
                let err = self.invalid_type(&"a list");
                self.fail(err)
            }
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.tree.value {
            TreeValue::Map(entries) => self.visit_map(entries, false, visitor),
            _ if self.tree.is_null() => self.visit_map(&[], false, visitor),
            _ => {
                let err = self.invalid_type(&"a mapping");
                self.fail(err)
            }
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.tree.value {
            TreeValue::Map(entries) => self.visit_map(entries, true, visitor),
            _ if self.tree.is_null() => self.visit_map(&[], true, visitor),
            _ => {
                let err = self.invalid_type(&"a mapping");
                self.fail(err)
            }
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.tree.value {
            TreeValue::Str(s) | TreeValue::Plain(s) => {
                let de: de::value::StrDeserializer<'_, DeError> = s.as_str().into_deserializer();
                self.locate(visitor.visit_enum(de))
            }
            TreeValue::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                let access = EnumAccess {
                    key,
                    value,
                    path: &self.path,
                };
                self.locate(visitor.visit_enum(access))
            }
            _ => {
                let err = self.invalid_type(&"a string");
                self.fail(err)
            }
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 bytes byte_buf
    }
}

struct SeqAccess<'a, 'de> {
    items: std::iter::Enumerate<std::slice::Iter<'de, Tree>>,
    path: &'a FieldPath,
    len: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, 'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some((i, tree)) => seed
                .deserialize(TreeDeserializer {
                    tree,
                    path: self.path.index(i),
                })
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.len)
    }
}

struct MapAccess<'a, 'de> {
    entries: std::slice::Iter<'de, (Tree, Tree)>,
    path: &'a FieldPath,
    struct_fields: bool,
    value: Option<(&'de Tree, FieldPath)>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_, 'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let text = key
            .as_text()
            .map(str::to_string)
            .unwrap_or_else(|| match &key.value {
                TreeValue::Int(i) => i.to_string(),
                TreeValue::UInt(u) => u.to_string(),
                TreeValue::Bool(b) => b.to_string(),
                TreeValue::Float(f) => f.to_string(),
                _ => String::new(),
            });
        let path = if self.struct_fields {
            self.path.field(&text)
        } else {
            self.path.key(&text)
        };
        self.value = Some((value, path.clone()));
        let key_tree = match &key.value {
            TreeValue::Str(_) | TreeValue::Plain(_) => key,
            _ => {
                // A non-string key (from JSON-like sources): present it as text.
                return seed
                    .deserialize(de::value::StringDeserializer::<DeError>::new(text))
                    .map(Some)
                    .map_err(|e| e.at(&path, key.mark));
            }
        };
        seed.deserialize(TreeDeserializer {
            tree: key_tree,
            path,
        })
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (tree, path) = self
            .value
            .take()
            .ok_or_else(|| DeError::custom("value requested before its key"))?;
        seed.deserialize(TreeDeserializer { tree, path })
    }
}

struct EnumAccess<'a, 'de> {
    key: &'de Tree,
    value: &'de Tree,
    path: &'a FieldPath,
}

impl<'a, 'de> de::EnumAccess<'de> for EnumAccess<'a, 'de> {
    type Error = DeError;
    type Variant = VariantAccess<'a, 'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DeError> {
        let name = self.key.as_text().unwrap_or_default().to_string();
        let path = self.path.field(&name);
        let variant = seed.deserialize(TreeDeserializer {
            tree: self.key,
            path: path.clone(),
        })?;
        Ok((
            variant,
            VariantAccess {
                value: self.value,
                path,
                _parent: self.path,
            },
        ))
    }
}

struct VariantAccess<'a, 'de> {
    value: &'de Tree,
    path: FieldPath,
    _parent: &'a FieldPath,
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'_, 'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        de::Deserialize::deserialize(TreeDeserializer {
            tree: self.value,
            path: self.path,
        })
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(TreeDeserializer {
            tree: self.value,
            path: self.path,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(
            TreeDeserializer {
                tree: self.value,
                path: self.path,
            },
            visitor,
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_struct(
            TreeDeserializer {
                tree: self.value,
                path: self.path,
            },
            "",
            fields,
            visitor,
        )
    }
}

/// Builds an unmarked tree from any serde format (used by `Deserialize for Resource`).
impl<'de> de::Deserialize<'de> for Tree {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::unmarked(TreeValue::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::unmarked(TreeValue::Int(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::unmarked(
            i64::try_from(v).map_or(TreeValue::UInt(v), TreeValue::Int),
        ))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
        Ok(Tree::unmarked(TreeValue::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::unmarked(TreeValue::Str(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::unmarked(TreeValue::Str(v)))
    }

    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::unmarked(TreeValue::Null))
    }

    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::unmarked(TreeValue::Null))
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        d.deserialize_any(TreeVisitor)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Tree>()? {
            items.push(item);
        }
        Ok(Tree::unmarked(TreeValue::Seq(items)))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries: Vec<(Tree, Tree)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<Tree>()?;
            if entries.iter().any(|(k, _)| k.as_text() == Some(&key)) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            entries.push((Tree::unmarked(TreeValue::Str(key)), value));
        }
        Ok(Tree::unmarked(TreeValue::Map(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree::parse_stream;
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Inner {
        port: u16,
        #[serde(default)]
        name: String,
        #[serde(default)]
        enabled: Option<bool>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        items: Vec<Inner>,
    }

    fn parse(text: &str) -> Result<Outer, DeError> {
        let docs = parse_stream(text).unwrap();
        let root = docs[0].root.as_ref().unwrap();
        from_tree(root, &FieldPath::root())
    }

    #[test]
    fn plain_scalars_become_numbers_or_text_as_the_type_wants() {
        let outer = parse("items:\n  - port: 80\n    name: 443\n    enabled: yes\n").unwrap();
        assert_eq!(
            outer.items,
            vec![Inner {
                port: 80,
                name: "443".into(),
                enabled: Some(true)
            }]
        );
    }

    #[test]
    fn unknown_fields_name_their_path_and_line() {
        let err = parse("items:\n  - port: 80\n  - port: 81\n    prot: TCP\n").unwrap_err();
        assert_eq!(err.path.as_ref().unwrap().to_string(), "items[1].prot");
        assert_eq!(err.mark.unwrap().line, 4);
        assert!(
            err.message.contains("unknown field `prot`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn type_errors_name_the_innermost_node() {
        let err = parse("items:\n  - port: 70000\n").unwrap_err();
        assert_eq!(err.path.as_ref().unwrap().to_string(), "items[0].port");
        assert_eq!(
            err.mark.unwrap(),
            Mark {
                line: 2,
                column: 11
            }
        );
        let err = parse("items:\n  - port: http\n").unwrap_err();
        assert!(err.message.contains("invalid type"), "{}", err.message);
    }

    #[test]
    fn missing_fields_point_at_the_enclosing_mapping() {
        let err = parse("items:\n  - name: x\n").unwrap_err();
        assert_eq!(err.path.as_ref().unwrap().to_string(), "items[0]");
        assert!(
            err.message.contains("missing field `port`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn null_reads_as_an_empty_list() {
        assert_eq!(parse("items:\n").unwrap().items, vec![]);
    }

    #[test]
    fn trees_round_trip_through_serde_json() {
        let tree: Tree = serde_json::from_str(r#"{"items":[{"port":80,"name":"x"}]}"#).unwrap();
        let outer: Outer = from_tree(&tree, &FieldPath::root()).unwrap();
        assert_eq!(outer.items[0].port, 80);
        assert!(serde_json::from_str::<Tree>(r#"{"a":1,"a":2}"#).is_err());
    }
}
