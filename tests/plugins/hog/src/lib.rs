//! Allocates without end: an allocation bomb.
use sluice_sdk::{export_plugin, Event, Outcome, Plugin};
#[derive(Default)]
struct Hog(Vec<Vec<u8>>);
impl Plugin for Hog {
    fn process(&mut self, _e: &mut Event) -> Outcome {
        loop {
            self.0.push(std::hint::black_box(vec![1u8; 8 << 20]));
        }
    }
}
export_plugin!(Hog);
