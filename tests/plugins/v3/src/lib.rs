//! Claims to be built for a later contract, v3.
use sluice_sdk::bindings::sluice::plugin::types::{Batch, Output, Table};
struct V3;
impl sluice_sdk::bindings::Guest for V3 {
    fn contract_version() -> u32 {
        3
    }
    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }
    fn schema(input: Table) -> Result<Vec<Table>, String> {
        Ok(vec![input])
    }
    fn process(_input: Batch) -> Output {
        Output {
            outcomes: Vec::new(),
            new_tables: Vec::new(),
            data: Vec::new(),
        }
    }
}
sluice_sdk::bindings::__export_transform!(V3 with_types_in sluice_sdk::bindings);
