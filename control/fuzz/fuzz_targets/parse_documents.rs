//! Fuzzes manifest reading: any input either fails with an error or yields resources that
//! validate, take defaults, and survive JSON and YAML round trips unchanged. Never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tortie_model::{Resource, parse_documents, read_documents};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = read_documents(text, "fuzz.yaml");
    let Ok(resources) = parse_documents(text, "fuzz.yaml") else {
        return;
    };
    for resource in resources {
        let json = resource.to_json();
        let from_json = Resource::from_json(&json).expect("our JSON reads back");
        assert_eq!(from_json, resource, "JSON round trip");
        let yaml = resource.to_yaml();
        let from_yaml = read_documents(&yaml, "emitted.yaml").expect("our YAML reads back");
        assert_eq!(from_yaml.len(), 1);
        assert_eq!(from_yaml[0].resource, resource, "YAML round trip:\n{yaml}");
        let mut defaulted = resource.clone();
        defaulted.apply_defaults();
        let _ = defaulted.validate();
    }
});
