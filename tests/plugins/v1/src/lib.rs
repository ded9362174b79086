//! A plugin built for contract v1 (sluice:plugin@1.0.0), before row images.
wit_bindgen::generate!({ path: "wit", world: "transform" });

struct V1;

impl Guest for V1 {
    fn contract_version() -> u32 {
        1
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

export!(V1);
