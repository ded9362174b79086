//! Fails events on purpose, for `on_error` tests: an error for rows whose
//! `id` is divisible by `reject_multiples_of`, a trap (panic) for a row whose
//! `email` equals `trap_on`.
use sluice_sdk::{export_plugin, Config, Event, Outcome, Plugin, Value};
#[derive(Default)]
struct Picky {
    multiple: Option<i64>,
    trap_on: Option<String>,
}
impl Plugin for Picky {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.multiple = config
            .string("reject_multiples_of")
            .and_then(|s| s.parse().ok());
        self.trap_on = config.string("trap_on");
        Ok(())
    }
    fn process(&mut self, e: &mut Event) -> Outcome {
        if let (Some(t), Some(Value::Text(v))) = (&self.trap_on, e.get("email")) {
            if v == t {
                panic!("refusing {v}");
            }
        }
        if let (Some(m), Some(Value::Int(id))) = (self.multiple, e.get("id")) {
            if id % m == 0 {
                return Outcome::Error(format!("id {id} is a multiple of {m}"));
            }
        }
        Outcome::Keep
    }
}
export_plugin!(Picky);
