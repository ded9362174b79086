//! Panics on the first event: a trap.
use sluice_sdk::{export_plugin, Event, Outcome, Plugin};
#[derive(Default)]
struct Trap;
impl Plugin for Trap {
    fn process(&mut self, _e: &mut Event) -> Outcome {
        panic!("boom")
    }
}
export_plugin!(Trap);
