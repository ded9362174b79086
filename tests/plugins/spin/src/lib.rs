//! Never returns: an endless loop.
use sluice_sdk::{export_plugin, Event, Outcome, Plugin};
#[derive(Default)]
struct Spin;
impl Plugin for Spin {
    fn process(&mut self, _e: &mut Event) -> Outcome {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}
export_plugin!(Spin);
