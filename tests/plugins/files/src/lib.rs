//! Tries to read a file of the host: refused (no filesystem is granted).
use sluice_sdk::{export_plugin, Event, Outcome, Plugin};
#[derive(Default)]
struct Files;
impl Plugin for Files {
    fn process(&mut self, _e: &mut Event) -> Outcome {
        match std::fs::read("/etc/passwd") {
            Ok(_) => Outcome::Keep,
            Err(e) => Outcome::Error(format!("cannot open /etc/passwd: {e}")),
        }
    }
}
export_plugin!(Files);
