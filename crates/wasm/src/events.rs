//! A plugin's events as sluice handles them: values, owned. The contract
//! passes rows as byte images in one buffer per batch (see [`crate::rows`]);
//! this is where a plugin's answer becomes values again, checked, since a
//! plugin is untrusted.

use crate::rows::{self, Cell};
use crate::wasm::types::{self, Value};

/// One event as the plugin saw it, or as it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub op: types::Op,
    /// Index into the batch's tables, then the output's new tables.
    pub table: u32,
    pub before: Option<Vec<Value>>,
    pub after: Option<Vec<Value>>,
    pub position: String,
    pub commit_ts_us: i64,
}

/// What became of one input event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Keep,
    Drop,
    Replace(Event),
    FanOut(Vec<Event>),
    Error(String),
}

/// A plugin's answer to a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub outcomes: Vec<Outcome>,
    pub new_tables: Vec<types::Table>,
}

/// A batch of owned events (`sluice plugin test`).
#[derive(Debug, Clone)]
pub struct Batch {
    pub tables: Vec<types::Table>,
    pub events: Vec<Event>,
}

/// The plugin's answer with its images read back into values. Every span
/// and every value is checked: a plugin is untrusted.
pub fn output(out: types::Output) -> Result<Output, String> {
    let data = out.data;
    let event = |e: types::Event| -> Result<Event, String> {
        Ok(Event {
            op: e.op,
            table: e.table,
            before: e.before.map(|i| values(&data, i)).transpose()?,
            after: e.after.map(|i| values(&data, i)).transpose()?,
            position: String::new(),
            commit_ts_us: e.commit_ts_us,
        })
    };
    let outcomes = out
        .outcomes
        .into_iter()
        .map(|o| {
            Ok(match o {
                types::Outcome::Keep => Outcome::Keep,
                types::Outcome::Drop => Outcome::Drop,
                types::Outcome::Error(m) => Outcome::Error(m),
                types::Outcome::Replace(e) => Outcome::Replace(event(e)?),
                types::Outcome::FanOut(es) => {
                    Outcome::FanOut(es.into_iter().map(event).collect::<Result<_, String>>()?)
                }
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Output {
        outcomes,
        new_tables: out.new_tables,
    })
}

/// The values of one image of `data`.
fn values(data: &[u8], image: types::Image) -> Result<Vec<Value>, String> {
    let start = image.offset as usize;
    let bytes = start
        .checked_add(image.len as usize)
        .and_then(|end| data.get(start..end))
        .ok_or_else(|| {
            format!(
                "returned a row image (bytes {start}..+{}) outside its data ({} bytes)",
                image.len,
                data.len()
            )
        })?;
    rows::cells(bytes)
        .map(|c| {
            Ok(match c.map_err(|e| format!("returned a {e}"))? {
                Cell::Null => Value::Null,
                Cell::Int(v) => Value::Int(v),
                Cell::Uint(v) => Value::Uint(v),
                Cell::Float32(v) => Value::Float32(v),
                Cell::Float64(v) => Value::Float64(v),
                Cell::Decimal(v) => Value::Decimal(v.to_string()),
                Cell::Text(v) => Value::Text(v.to_string()),
                Cell::Bytes(v) => Value::Bytes(v.to_vec()),
                Cell::Date(v) => Value::Date(v),
                Cell::Timestamp(v) => Value::Timestamp(v),
                Cell::Time(v) => Value::Time(v),
            })
        })
        .collect()
}

/// One owned value as a cell of an image.
pub fn cell(v: &Value) -> Cell<'_> {
    match v {
        Value::Null => Cell::Null,
        Value::Int(v) => Cell::Int(*v),
        Value::Uint(v) => Cell::Uint(*v),
        Value::Float32(v) => Cell::Float32(*v),
        Value::Float64(v) => Cell::Float64(*v),
        Value::Decimal(v) => Cell::Decimal(v),
        Value::Text(v) => Cell::Text(v),
        Value::Bytes(v) => Cell::Bytes(v),
        Value::Date(v) => Cell::Date(*v),
        Value::Timestamp(v) => Cell::Timestamp(*v),
        Value::Time(v) => Cell::Time(*v),
    }
}

/// Appends `values` to `data` as one image.
pub fn put_image<'a>(
    data: &mut Vec<u8>,
    values: impl IntoIterator<Item = Cell<'a>>,
) -> types::Image {
    let offset = data.len();
    for c in values {
        rows::put(data, c);
    }
    types::Image {
        offset: offset as u32,
        len: (data.len() - offset) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(data: Vec<u8>, image: types::Image) -> types::Output {
        types::Output {
            outcomes: vec![types::Outcome::Replace(types::Event {
                op: types::Op::Insert,
                table: 0,
                before: None,
                after: Some(image),
                position: 0,
                commit_ts_us: 0,
            })],
            new_tables: Vec::new(),
            data,
        }
    }

    #[test]
    fn answers_are_read_back_and_bad_ones_refused_with_a_reason() {
        let values = vec![Value::Int(-1), Value::Text("é".into()), Value::Null];
        let mut data = vec![9, 9]; // not every image starts at 0
        let image = put_image(&mut data, values.iter().map(cell));
        let out = output(answer(data.clone(), image)).unwrap();
        match &out.outcomes[0] {
            Outcome::Replace(e) => assert_eq!(e.after.as_ref(), Some(&values)),
            o => panic!("{o:?}"),
        }

        let past = types::Image {
            offset: image.offset,
            len: image.len + 1,
        };
        let err = output(answer(data.clone(), past)).unwrap_err();
        assert!(err.contains("outside its data"), "{err}");
        let wrap = types::Image {
            offset: u32::MAX,
            len: u32::MAX,
        };
        assert!(output(answer(data.clone(), wrap)).is_err());
        let mut bad = data.clone();
        bad[image.offset as usize] = 77;
        let err = output(answer(bad, image)).unwrap_err();
        assert!(err.contains("unknown value tag"), "{err}");
    }
}
