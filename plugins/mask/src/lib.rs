//! Masks personal data before it leaves the source.
//!
//! ```yaml
//! transforms:
//!   - plugin: mask
//!     config:
//!       salt: ${MASK_SALT}           # for `hash`; keep it in the environment
//!       columns:
//!         email: email               # a***@example.com
//!         phone: phone               # ******1234 (digits masked but the last 4)
//!         full_name: hash            # hex SHA-256 of salt + value
//!         card: { keep_last: 4 }     # ************1234
//!         note: redact               # ***
//!         birth_date: "null"         # NULL
//! ```
//!
//! Column names apply to every table the transform sees (narrow it with
//! `tables:`); a table without the column is left alone. NULL stays NULL.

use sha2::{Digest, Sha256};
use sluice_sdk::{export_plugin, Config, Event, Outcome, Plugin, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Hash,
    Redact,
    KeepLast(usize),
    Email,
    Phone,
    Null,
}

#[derive(Debug, Default)]
pub struct Mask {
    salt: String,
    rules: Vec<(String, Rule)>,
}

fn parse_rule(column: &str, v: &serde_json::Value) -> Result<Rule, String> {
    match v {
        serde_json::Value::String(s) => match s.as_str() {
            "hash" => Ok(Rule::Hash),
            "redact" => Ok(Rule::Redact),
            "email" => Ok(Rule::Email),
            "phone" => Ok(Rule::Phone),
            "null" => Ok(Rule::Null),
            other => Err(format!(
                "column `{column}`: unknown rule `{other}`; use hash, redact, email, phone, null or {{keep_last: N}}"
            )),
        },
        serde_json::Value::Object(o) => match o.get("keep_last").and_then(|n| n.as_u64()) {
            Some(n) => Ok(Rule::KeepLast(n as usize)),
            None => Err(format!("column `{column}`: expected {{keep_last: N}}")),
        },
        _ => Err(format!("column `{column}`: a rule is a name or {{keep_last: N}}")),
    }
}

impl Mask {
    pub fn from_json(json: &str) -> Result<Mask, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("config is not valid: {e}"))?;
        let columns = v
            .get("columns")
            .and_then(|c| c.as_object())
            .ok_or("config needs `columns:`, a map of column name to rule")?;
        let rules = columns
            .iter()
            .map(|(c, r)| parse_rule(c, r).map(|rule| (c.clone(), rule)))
            .collect::<Result<Vec<_>, _>>()?;
        let salt = v
            .get("salt")
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_string();
        if salt.is_empty() && rules.iter().any(|(_, r)| *r == Rule::Hash) {
            return Err(
                "`hash` needs a `salt` (keep it in the environment: salt: ${MASK_SALT})".into(),
            );
        }
        Ok(Mask { salt, rules })
    }

    pub fn apply(&self, rule: &Rule, v: &Value) -> Value {
        let text = match v {
            Value::Null => return Value::Null,
            Value::Text(s) => s.clone(),
            Value::Decimal(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Uint(u) => u.to_string(),
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        };
        match rule {
            Rule::Null => Value::Null,
            Rule::Redact => Value::Text("***".into()),
            Rule::Hash => {
                let mut h = Sha256::new();
                h.update(self.salt.as_bytes());
                h.update(text.as_bytes());
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut hex = String::with_capacity(64);
                for b in h.finalize() {
                    hex.push(HEX[(b >> 4) as usize] as char);
                    hex.push(HEX[(b & 15) as usize] as char);
                }
                Value::Text(hex)
            }
            Rule::KeepLast(n) => {
                let chars: Vec<char> = text.chars().collect();
                let keep = (*n).min(chars.len());
                let masked: String = std::iter::repeat_n('*', chars.len() - keep)
                    .chain(chars[chars.len() - keep..].iter().copied())
                    .collect();
                Value::Text(masked)
            }
            Rule::Email => match text.split_once('@') {
                Some((local, domain)) => {
                    let first: String = local.chars().take(1).collect();
                    Value::Text(format!("{first}***@{domain}"))
                }
                None => Value::Text("***".into()),
            },
            Rule::Phone => {
                let digits = text.chars().filter(|c| c.is_ascii_digit()).count();
                let mut seen = 0;
                Value::Text(
                    text.chars()
                        .map(|c| {
                            if c.is_ascii_digit() {
                                seen += 1;
                                if seen + 4 <= digits {
                                    return '*';
                                }
                            }
                            c
                        })
                        .collect(),
                )
            }
        }
    }
}

impl Plugin for Mask {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        *self = Mask::from_json(config.json())?;
        Ok(())
    }

    fn process(&mut self, event: &mut Event) -> Outcome {
        for (column, rule) in &self.rules {
            event.update(column, |v| self.apply(rule, v));
        }
        Outcome::Keep
    }
}

export_plugin!(Mask);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let m = Mask::from_json(r#"{"salt":"s","columns":{"a":"email"}}"#).unwrap();
        let t = |r: Rule, s: &str| m.apply(&r, &Value::Text(s.into()));
        assert_eq!(
            t(Rule::Email, "ana.silva1@example.com"),
            Value::Text("a***@example.com".into())
        );
        assert_eq!(
            t(Rule::Phone, "+1-555-0123"),
            Value::Text("+*-***-0123".into())
        );
        assert_eq!(
            t(Rule::KeepLast(4), "4111111111111111"),
            Value::Text("************1111".into())
        );
        assert_eq!(t(Rule::Redact, "x"), Value::Text("***".into()));
        assert_eq!(m.apply(&Rule::Hash, &Value::Null), Value::Null);
        assert!(Mask::from_json(r#"{"columns":{"a":"hash"}}"#)
            .unwrap_err()
            .contains("salt"));
        assert!(Mask::from_json(r#"{"columns":{"a":"blur"}}"#)
            .unwrap_err()
            .contains("unknown rule"));
    }
}
