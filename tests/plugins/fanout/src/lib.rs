//! Fans every event out to its own table and to a `<table>_copy` table.
use sluice_sdk::{export_plugin, Event, Outcome, Plugin, Table};
#[derive(Default)]
struct FanOut;
fn copy_of(t: &Table) -> Table {
    t.renamed(&t.database, &format!("{}_copy", t.name))
}
impl Plugin for FanOut {
    fn schema(&mut self, t: &Table) -> Result<Vec<Table>, String> {
        Ok(vec![t.clone(), copy_of(t)])
    }
    fn process(&mut self, e: &mut Event) -> Outcome {
        let mut copy = e.clone();
        copy.move_to(&copy_of(e.table()));
        Outcome::FanOut(vec![e.clone(), copy])
    }
}
export_plugin!(FanOut);
