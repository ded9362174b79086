//! Claims to be built for contract v2.
use sluice_sdk::bindings::sluice::plugin::types::{Batch, Output, Table};
struct V2;
impl sluice_sdk::bindings::Guest for V2 {
    fn contract_version() -> u32 {
        2
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
        }
    }
}
sluice_sdk::bindings::__export_transform!(V2 with_types_in sluice_sdk::bindings);
