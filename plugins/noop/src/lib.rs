//! Passes every event on unchanged.

use sluice_sdk::{export_plugin, Event, Outcome, Plugin};

#[derive(Default)]
struct Noop;

impl Plugin for Noop {
    fn process(&mut self, _event: &mut Event) -> Outcome {
        Outcome::Keep
    }
}

export_plugin!(Noop);
